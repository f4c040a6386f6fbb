"""The ``archive-inpaint`` command line."""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from archive_inpaint import __version__
from archive_inpaint.config import METHODS, PRESETS, preset
from archive_inpaint.jobs_cli import jobs_app
from archive_inpaint.media import MediaError, output_kind_for
from archive_inpaint.media.boxes import parse_box
from archive_inpaint.pipeline import ShotInputs, inpaint_files, qc_path, resolve_device
from archive_inpaint.provenance import shot_provenance, write_provenance_file
from archive_inpaint.training.optical_flow import available_flow_estimators
from archive_inpaint.training.trainer import save_weights as write_weights

if TYPE_CHECKING:
    from archive_inpaint.batch.options import RunOptions
    from archive_inpaint.batch.results import ShotResult

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Remove scratches, logos and objects from film and video shots by per-shot internal learning.",
)
# soft_wrap: no line breaks at 80 columns where stderr is no terminal (job logs, CI): paths stay whole.
console = Console(stderr=True, soft_wrap=True)


# Method settings shared by `inpaint` (one shot) and `submit` (the rows whose method has them).
VggWeightsOption = Annotated[
    str | None,
    typer.Option(
        "--vgg-weights",
        "--vgg19-weights",
        help="VGG weights file (torchvision layout; with submit, a path on the workers) for the method's "
        "feature losses: VGG19 for iivi's contextual loss, VGG16 for the perceptual terms of dip-vid-flow "
        "and lgtsm. Without one those terms use a weight-free fallback or are off (see the README).",
    ),
]
GanWeightOption = Annotated[
    float | None,
    typer.Option(
        help="lgtsm: weight of the TSMGAN fine-tuning in the last quarter of the steps (0: off; LGTSM's authors: 1).",
        min=0,
    ),
]
FlowEstimatorOption = Annotated[
    str | None,
    typer.Option(help="dip-vid-flow: the optical-flow estimator for its flow targets (dis or farneback)."),
]


def _check_flow_estimator(name: str | None) -> None:
    if name is not None and name not in available_flow_estimators():
        raise ValueError(
            f"--flow-estimator: unknown estimator {name!r}; choose one of {', '.join(available_flow_estimators())}"
        )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"archive-inpaint {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more detail.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _parse_fps(text: str | None) -> Fraction | None:
    if text is None:
        return None
    try:
        fps = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise typer.BadParameter(f"{text!r} is not a frame rate (use e.g. 24, 25 or 24000/1001)")
    if fps <= 0:
        raise typer.BadParameter(f"frame rate must be positive, got {text}")
    return fps


def _training_progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    )


@app.command()
def inpaint(
    video: Annotated[Path, typer.Argument(help="Video file (MOV, MP4, MKV, MXF, AVI...) or folder of PNG/TIFF/DPX/JPEG frames.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output: .mkv = lossless FFV1; .mov/.mp4 = the input's ProRes/H.264/H.265, else H.264; "
            "no suffix = image sequence folder of the input's kind (PNG, TIFF, DPX), else PNG.",
        ),
    ],
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask", "-m", help="Mask video, folder of mask images, or one image for every frame."
        ),
    ] = None,
    box: Annotated[
        list[str] | None,
        typer.Option(
            help="Static box x,y,w,h in px added to every frame's mask (burnt-in timestamps, logos); "
            "repeat for several.",
        ),
    ] = None,
    feather: Annotated[
        int, typer.Option(help="Soft edge in px: the fill blends into the picture outside the mask.", min=0)
    ] = 0,
    handles: Annotated[
        int, typer.Option(help="Also process and deliver this many frames on each side of --start/--end.", min=0)
    ] = 0,
    method: Annotated[
        str, typer.Option(help=f"Internal-learning method: {', '.join(METHODS)} (see the README).")
    ] = "iivi",
    preset_name: Annotated[
        str, typer.Option("--preset", help=f"One of: {', '.join(PRESETS)}.")
    ] = "fast",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    start: Annotated[int, typer.Option(help="First frame (inclusive, 0-based).", min=0)] = 0,
    end: Annotated[
        int | None, typer.Option(help="End frame (exclusive); default: the last frame.", min=1)
    ] = None,
    fps: Annotated[
        str | None, typer.Option(help="Frame rate of an image sequence, e.g. 24000/1001; default: the rate a DPX header states, else 24.")
    ] = None,
    dilate: Annotated[int, typer.Option(help="Grow the mask by this many pixels.", min=0)] = 0,
    mask_mode: Annotated[
        str,
        typer.Option(
            help="per-frame: MASK has every frame's mask. single-frame: MASK annotates one frame "
            "(--mask-frame) and the other frames' masks are predicted from it.",
        ),
    ] = "per-frame",
    mask_frame: Annotated[
        int, typer.Option(help="single-frame: the annotated frame, counted from --start.", min=0)
    ] = 0,
    mask_threshold: Annotated[
        int,
        typer.Option(
            help="Mask values above this are holes (0: any non-zero). Raise it for lossy mask videos.",
            min=0,
        ),
    ] = 0,
    iterations: Annotated[int | None, typer.Option(help="Override training steps.", min=1)] = None,
    width: Annotated[
        int | None, typer.Option(help="Override network width (paper: 24).", min=4)
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Override frames per step.", min=1)] = None,
    working_size: Annotated[
        int | None,
        typer.Option(help="Override the working long side in px (larger frames are downscaled).", min=16),
    ] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Override Adam's learning rate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    stages: Annotated[
        int | None,
        typer.Option(
            help="At most this many resolutions (1: whole frames at the working size only; "
            "more: patch stages up to the footage's own resolution).",
            min=1,
        ),
    ] = None,
    patch_iterations: Annotated[
        int | None, typer.Option(help="Override training steps per patch stage.", min=1)
    ] = None,
    patch_size: Annotated[
        int | None, typer.Option(help="Override the patch and tile size in px (multiple of 4).", min=32)
    ] = None,
    propagation: Annotated[
        bool | None,
        typer.Option(
            "--propagation/--no-propagation",
            help="Fill hole pixels with the content other frames show of them, found along optical "
            "flow, where found (and give it to the patch stages); on by default.",
        ),
    ] = None,
    lighting: Annotated[
        bool | None,
        typer.Option(
            "--lighting/--no-lighting",
            help="Bring content taken from other frames to the hole's frame's lighting (a gain "
            "measured around the hole; against film flicker and automatic exposure); on by default.",
        ),
    ] = None,
    blend_sources: Annotated[
        bool | None,
        typer.Option(
            "--blend-sources/--no-blend-sources",
            help="Average the nearest frames before and after that show a hole pixel, with ramps "
            "where the source changes (smoother from frame to frame), in the whole-frame fill and in "
            "what the patch stages are given; off: the nearest frame's pixel as it is (its grain "
            "intact). On by default.",
        ),
    ] = None,
    check_agreement: Annotated[
        bool | None,
        typer.Option(
            "--check-agreement/--no-check-agreement",
            help="Fade blended content from other frames back to the network's fill where the two "
            "disagree once blurred (content moving on its own behind the hole, fetched from the wrong "
            "place); patch stages are not given content their prior contradicts. On by default.",
        ),
    ] = None,
    agreement_between_sources: Annotated[
        bool | None,
        typer.Option(
            "--agreement-between-sources/--no-agreement-between-sources",
            help="Where frames before and after both show a hole pixel, judge the content by how far "
            "they agree with each other, not by the network's fill (which is far off on footage many "
            "times its working size); the network judges pixels one side shows. On by default.",
        ),
    ] = None,
    stabilization: Annotated[
        float | None,
        typer.Option(help="Weight of the stabilization loss (against flicker in never-visible regions; 0: off).", min=0),
    ] = None,
    contextual: Annotated[
        float | None,
        typer.Option(help="Weight of the contextual loss (against blur on moving texture; 0: off).", min=0),
    ] = None,
    vgg_weights: VggWeightsOption = None,
    gan_weight: GanWeightOption = None,
    flow_estimator: FlowEstimatorOption = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Force the output kind: ffv1, prores-422hq, prores-4444, h264, h265, png, tiff or dpx "
            "(default: the input's own kind where the output path allows it).",
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(help="Training checkpoints; a rerun resumes from the latest. Default: beside the output."),
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Checkpoint every N steps.", min=1)
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="Training arithmetic: fp32, bf16 (autocast) or auto (bf16 where the GPU or CPU computes it natively)."),
    ] = None,
    compile_network: Annotated[
        bool | None,
        typer.Option("--compile/--no-compile", help="torch.compile the network (a one-off compile; pays on long runs)."),
    ] = None,
    early_stop: Annotated[
        int | None,
        typer.Option(
            help="Hold out one pseudo-hole on N frames and stop training when its fill stops improving "
            "(the step count becomes a ceiling); 0: off.",
            min=0,
        ),
    ] = None,
    batch_scale: Annotated[
        float | None,
        typer.Option(help="x frames per step for large GPUs: steps / x, learning rate x sqrt(x).", min=0.01),
    ] = None,
    warm_start: Annotated[
        Path | None,
        typer.Option(help="Start from these weights (--save-weights of another shot of the reel)."),
    ] = None,
    save_weights: Annotated[
        Path | None,
        typer.Option(help="Save the trained network's weights here (for --warm-start of later shots)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a network on one shot (IIVI by default) and write the shot with its masked regions filled."""
    try:
        config = preset(preset_name, method).with_overrides(
            iterations=iterations,
            width=width,
            batch_size=batch_size,
            working_long_side=working_size,
            learning_rate=learning_rate,
            seed=seed,
            checkpoint_every=checkpoint_every,
            max_stages=stages,
            patch_iterations=patch_iterations,
            patch_size=patch_size,
            propagation=propagation,
            lighting=lighting,
            blend_sources=blend_sources,
            check_agreement=check_agreement,
            agreement_between_sources=agreement_between_sources,
            stabilization_weight=stabilization,
            contextual_weight=contextual,
            vgg_weights=vgg_weights,
            gan_weight=gan_weight,
            flow_estimator=flow_estimator,
            precision=precision,
            compile=compile_network,
            holdout_frames=early_stop,
            batch_scale=batch_scale,
        )
        _check_flow_estimator(flow_estimator)
        if warm_start is not None and not warm_start.is_file():
            raise ValueError(f"--warm-start: weights file not found: {warm_start}")
        kind = None if output_format is None else output_kind_for(output, output_format)
        boxes = tuple(parse_box(text) for text in box or [])
        torch_device = resolve_device(device)
    except (ValueError, MediaError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2)
    if end is not None and end <= start:
        console.print(f"[red]error:[/red] --end ({end}) must be greater than --start ({start})")
        raise typer.Exit(2)
    try:
        inputs = ShotInputs(
            video=video,
            mask=mask,
            start=start,
            end=end,
            fps=_parse_fps(fps),
            mask_threshold=mask_threshold,
            dilate=dilate,
            mask_mode=mask_mode,
            mask_frame=mask_frame,
            boxes=boxes,
            feather=feather,
            handles=handles,
        )
    except ValueError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2)
    checkpoints = checkpoint_dir or output.with_name(f"{output.stem}.checkpoints")
    with _training_progress(quiet) as progress:
        task = progress.add_task("train", total=config.train.iterations, loss=float("nan"))

        def on_step(iteration: int, total: int, loss: float) -> None:
            progress.update(task, completed=iteration, total=total, loss=loss)

        try:
            began = time.perf_counter()
            outputs, result = inpaint_files(
                inputs, output, config, torch_device, kind, checkpoints, on_step, initial_weights=warm_start
            )
            if save_weights is not None and result.weights is not None:
                write_weights(result.weights, save_weights)
            record = shot_provenance(
                outputs, result, config, preset_name, torch_device, time.perf_counter() - began
            )
            provenance = write_provenance_file(record, qc_path(outputs.video, "provenance.json"))
        except MediaError as error:
            console.print(f"[red]error:[/red] {escape(str(error))}")
            raise typer.Exit(2)
    resumed = f", resumed from step {result.resumed_from}" if result.resumed_from else ""
    if result.stopped_early:
        resumed += ", stopped early: the held-out pixels had stopped improving"
    console.print(
        f"wrote {escape(str(outputs.video))} ({result.shape[0]} frames; {result.iterations} steps{resumed}; "
        f"{result.stages} stage{'s' if result.stages > 1 else ''}"
        f"{f', {result.tiles} tiles' if result.tiles else ''}; "
        f"train {result.train_seconds:.1f}s, fill {result.fill_seconds:.1f}s on {torch_device})"
    )
    console.print(f"contact sheet: {escape(str(outputs.contact_sheet))}")
    console.print(f"difference: {escape(str(outputs.difference))}; preview: {escape(str(outputs.preview))}")
    console.print(f"provenance: {escape(str(provenance))}")
    if outputs.audio_sidecar is not None:
        console.print(f"audio (image sequences hold none): {escape(str(outputs.audio_sidecar))}")
    if outputs.predicted_masks is not None:
        console.print(f"predicted masks: {escape(str(outputs.predicted_masks))}")


# ---- Batch runs (archive_inpaint.batch). Imported inside the commands: Ray and s3fs are slow to
# import and the single-shot `inpaint` command needs neither.

manifest_app = typer.Typer(no_args_is_help=True, help="Create and check batch manifests (Parquet).")
app.add_typer(manifest_app, name="manifest")
app.add_typer(jobs_app, name="jobs")


def _print_problems(problems: list[str], manifest: str) -> None:
    console.print(f"[red]invalid manifest[/red] {escape(manifest)}: {len(problems)} problem(s)")
    for problem in problems:
        console.print(f"  - {escape(problem)}")


@manifest_app.command("validate")
def manifest_validate(
    manifest: Annotated[str, typer.Argument(help="Manifest Parquet file (local path or s3:// URI).")],
    check_uris: Annotated[
        bool, typer.Option(help="Check that every video_uri and mask_uri exists.")
    ] = True,
) -> None:
    """Check a manifest and report every problem at once; exit 1 if there is any."""
    from archive_inpaint.batch.manifest import validate_manifest

    report = validate_manifest(manifest, check_uris=check_uris)
    if not report.ok:
        _print_problems(report.problems, manifest)
        raise typer.Exit(1)
    typer.echo(f"OK: {len(report.shots)} shot(s) in {manifest}")


@manifest_app.command("init")
def manifest_init(
    video_dir: Annotated[str, typer.Argument(help="Folder of videos (local or s3://).")],
    mask_dir: Annotated[
        str, typer.Argument(help="Folder of masks: a file or a folder per video, with the video's stem.")
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="Manifest to write (.parquet).")],
) -> None:
    """Write a manifest pairing each video with the mask of the same file stem."""
    from archive_inpaint.batch.manifest import manifest_table, pair_by_stem, write_table

    pairing = pair_by_stem(video_dir, mask_dir)
    for video in pairing.unpaired_videos:
        console.print(f"[yellow]no mask for[/yellow] {escape(video)}")
    if not pairing.shots:
        console.print("[red]error:[/red] no video has a mask with the same stem; nothing written")
        raise typer.Exit(1)
    write_table(manifest_table(pairing.shots), output)
    typer.echo(
        f"wrote {output}: {len(pairing.shots)} shot(s), {len(pairing.unpaired_videos)} unpaired video(s)"
    )


def _results_table(rows: list[ShotResult]) -> Table:

    table = Table(title="shots")
    for column in ("shot", "status", "frames", "size", "steps", "train s", "total s", "error"):
        table.add_column(column)
    colours = {"succeeded": "green", "skipped": "cyan", "failed": "red"}
    for row in rows:
        table.add_row(
            escape(row.shot_id),
            f"[{colours.get(row.status, 'white')}]{row.status}[/]",
            "" if row.frames is None else str(row.frames),
            "" if row.width is None else f"{row.width}x{row.height}",
            "" if row.iterations is None else str(row.iterations),
            "" if row.train_seconds is None else f"{row.train_seconds:.1f}",
            "" if row.total_seconds is None else f"{row.total_seconds:.1f}",
            escape(row.error or ""),
        )
    return table


@app.command()
def submit(
    manifest: Annotated[str, typer.Argument(help="Manifest Parquet file (local path or s3:// URI).")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Output root: <output>/<shot_id>/ per shot (local or s3://).")
    ],
    results: Annotated[
        str | None, typer.Option(help="Results Parquet; default <output>/results.parquet.")
    ] = None,
    method: Annotated[
        str, typer.Option(help=f"Default method ({', '.join(METHODS)}); a row's method wins.")
    ] = "iivi",
    preset_name: Annotated[
        str, typer.Option("--preset", help=f"Default preset ({', '.join(PRESETS)}); a row's preset wins.")
    ] = "fast",
    device: Annotated[
        str,
        typer.Option(
            help="auto, cpu or cuda. cuda on a cluster with no GPU node yet waits for the autoscaler to add one."
        ),
    ] = "auto",
    num_cpus: Annotated[
        int | None, typer.Option(help="CPUs for the embedded Ray cluster; default: all.", min=1)
    ] = None,
    gpu_memory: Annotated[
        float | None,
        typer.Option(
            help="GiB of one worker GPU: shots whose estimated memory fits several times share a GPU. "
            "Default: read from a GPU worker when one is up, else one GPU per shot.",
            min=1,
        ),
    ] = None,
    max_retries: Annotated[
        int,
        typer.Option(
            help="Retries of a shot after a lost worker or node (e.g. a spot preemption); "
            "each resumes from the shot's last checkpoint.",
            min=0,
        ),
    ] = 3,
    iterations: Annotated[
        int | None, typer.Option(help="Training steps for rows without their own.", min=1)
    ] = None,
    width: Annotated[int | None, typer.Option(help="Override network width.", min=4)] = None,
    vgg_weights: VggWeightsOption = None,
    gan_weight: GanWeightOption = None,
    flow_estimator: FlowEstimatorOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster dashboard, e.g. http://HEAD:8265: submit the run there as a Ray Job."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="RAY_AUTH_TOKEN", help="Token for clusters with token authentication."),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="With --address: follow the job until it ends and print its logs.")
    ] = False,
    runtime_env: Annotated[
        str | None,
        typer.Option(
            help="With --address: a runtime-environment YAML/JSON for clusters without the image "
            "(see jobs/runtime_env.yaml). Secrets are refused: they would show in the dashboard."
        ),
    ] = None,
) -> None:
    """Inpaint every shot of a manifest; shots already done are skipped.

    Without --address, an embedded local Ray cluster runs everything in this process tree; with
    it, the run is submitted to that cluster as a Ray Job."""
    if preset_name not in PRESETS:
        console.print(f"[red]error:[/red] unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}")
        raise typer.Exit(2)
    if method not in METHODS:
        console.print(f"[red]error:[/red] unknown method {method!r}; choose one of {', '.join(METHODS)}")
        raise typer.Exit(2)
    try:
        _check_flow_estimator(flow_estimator)
    except ValueError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2)
    from archive_inpaint.batch.options import RunOptions

    options = RunOptions(
        manifest_uri=manifest,
        output_uri=output,
        results_uri=results,
        method=method,
        preset=preset_name,
        device=device,
        num_cpus=num_cpus,
        iterations=iterations,
        width=width,
        vgg_weights=vgg_weights,
        gan_weight=gan_weight,
        flow_estimator=flow_estimator,
        gpu_memory_gib=gpu_memory,
        max_retries=max_retries,
    )
    if address is not None:
        # Before anything imports Ray: Ray reads its authentication mode once, at import.
        _submit_remote(address, token, wait, options, runtime_env)
        return
    if runtime_env is not None:
        console.print("[red]error:[/red] --runtime-env is for --address (a run submitted to a cluster)")
        raise typer.Exit(2)
    from archive_inpaint.batch.results import FAILED
    from archive_inpaint.batch.runner import ManifestInvalid, run_batch

    progress = Progress(
        TextColumn("[bold]shots"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    )
    with progress:
        task = progress.add_task("shots", total=None, failed=0)
        failures = 0

        def on_start(total: int) -> None:
            progress.update(task, total=total)

        def on_done(row: ShotResult) -> None:
            nonlocal failures
            failures += row.status == FAILED
            progress.update(task, advance=1, failed=failures)

        try:
            summary = run_batch(options, on_start, on_done)
        except ManifestInvalid as invalid:
            progress.stop()
            _print_problems(invalid.report.problems, manifest)
            console.print("nothing was started")
            raise typer.Exit(2)
        except ValueError as error:
            progress.stop()
            console.print(f"[red]error:[/red] {escape(str(error))}")
            raise typer.Exit(2)
    console.print(_results_table(summary.results))
    _print_counts(summary.results)
    console.print(f"results: {escape(summary.results_uri)}")
    if summary.report_uri is not None:
        console.print(f"report: {escape(summary.report_uri)}")
    if summary.failed:
        raise typer.Exit(1)


def _submit_remote(
    address: str, token: str | None, wait: bool, options: RunOptions, runtime_env_file: str | None
) -> None:
    from archive_inpaint.batch import remote

    remote.use_token(token)  # before runtime_env's check imports Ray
    from archive_inpaint.batch.runtime_env import load_runtime_env

    run = remote.RemoteRun(address, options)
    try:
        environment = None if runtime_env_file is None else load_runtime_env(runtime_env_file)
    except (OSError, ValueError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2)
    try:
        job_id = remote.submit_job(run, token, runtime_env=environment)
    except (ConnectionError, RuntimeError, ValueError) as error:
        console.print(f"[red]error:[/red] could not submit to {escape(address)}: {escape(str(error))}")
        raise typer.Exit(2)
    typer.echo(job_id)
    console.print(f"submitted Ray Job {escape(job_id)} to {escape(address)}")
    if not wait:
        return
    try:
        final = remote.wait_for_job(address, job_id, token=token)
        typer.echo(remote.job_logs(address, job_id, token=token))
    except remote.JobError as error:
        console.print(f"[red]error:[/red] following job {escape(job_id)}: {escape(str(error))}")
        raise typer.Exit(2)
    console.print(f"job {escape(job_id)}: {final}")
    if final != "SUCCEEDED":
        raise typer.Exit(1)


def _print_counts(rows: list[ShotResult]) -> None:
    from archive_inpaint.batch.results import counts

    tally = counts(rows)
    console.print(
        f"{tally['succeeded']} succeeded, {tally['skipped']} skipped (already done), {tally['failed']} failed"
    )


@app.command()
def status(
    target: Annotated[
        str, typer.Argument(help="A results Parquet file, or a run's output root (local or s3://).")
    ],
    manifest: Annotated[
        str | None, typer.Option(help="The run's manifest, to count the shots not done yet.")
    ] = None,
) -> None:
    """Summarise a batch run: done, failed (with reasons) and, given the manifest, remaining."""
    from archive_inpaint.batch import storage
    from archive_inpaint.batch.manifest import read_table
    from archive_inpaint.batch.results import FAILED, default_results_uri, read_results
    from archive_inpaint.batch.shot_task import SUCCESS_NAME

    results_uri = target if target.endswith(".parquet") else default_results_uri(target)
    rows = read_results(results_uri) if storage.exists(results_uri) else []
    if not rows:
        console.print(f"no results yet at {escape(results_uri)}")
    done = {row.shot_id for row in rows if row.status != FAILED}
    failed = [row for row in rows if row.status == FAILED]
    if not target.endswith(".parquet"):
        # Shots committed since the results were written (a run still going) count as done too.
        done |= {
            name
            for name in storage.list_names(target)
            if storage.exists(storage.join(target, name, SUCCESS_NAME))
        }
    failed = [row for row in failed if row.shot_id not in done]
    typer.echo(f"done: {len(done)}")
    typer.echo(f"failed: {len(failed)}")
    for row in failed:
        typer.echo(f"  {row.shot_id}: {row.error}")
    if manifest is not None:
        ids = [str(i) for i in read_table(manifest).column("shot_id").to_pylist()]
        failed_ids = {row.shot_id for row in failed}
        remaining = [i for i in ids if i not in done and i not in failed_ids]
        typer.echo(f"remaining: {len(remaining)} of {len(ids)}")
    if failed:
        raise typer.Exit(1)

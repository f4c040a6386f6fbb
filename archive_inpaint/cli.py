"""The ``archive-inpaint`` command line."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Annotated

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

from archive_inpaint import __version__
from archive_inpaint.config import PRESETS, preset
from archive_inpaint.media import MediaError, output_kind_for
from archive_inpaint.pipeline import ShotInputs, inpaint_files, resolve_device

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Remove scratches, logos and objects from film and video shots by per-shot internal learning.",
)
console = Console(stderr=True)


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
    video: Annotated[Path, typer.Argument(help="Video file or folder of PNG/TIFF/JPEG frames.")],
    mask: Annotated[
        Path,
        typer.Option(
            "--mask", "-m", help="Mask video, folder of mask images, or one image for every frame."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output: .mkv = lossless FFV1, .mp4/.mov = H.264 preview, no suffix = PNG sequence folder.",
        ),
    ],
    preset_name: Annotated[
        str, typer.Option("--preset", help=f"One of: {', '.join(PRESETS)}.")
    ] = "fast",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    start: Annotated[int, typer.Option(help="First frame (inclusive, 0-based).", min=0)] = 0,
    end: Annotated[
        int | None, typer.Option(help="End frame (exclusive); default: the last frame.", min=1)
    ] = None,
    fps: Annotated[
        str | None, typer.Option(help="Frame rate of an image sequence, e.g. 24000/1001.")
    ] = None,
    dilate: Annotated[int, typer.Option(help="Grow the mask by this many pixels.", min=0)] = 0,
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
    output_format: Annotated[
        str | None, typer.Option("--format", help="Force the output: ffv1, h264, png or tiff.")
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(help="Training checkpoints; a rerun resumes from the latest. Default: beside the output."),
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Checkpoint every N steps.", min=1)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train the IIVI network on one shot and write the shot with its masked regions filled."""
    try:
        config = preset(preset_name).with_overrides(
            iterations=iterations,
            width=width,
            batch_size=batch_size,
            working_long_side=working_size,
            learning_rate=learning_rate,
            seed=seed,
            checkpoint_every=checkpoint_every,
        )
        kind = output_kind_for(output, output_format)
        torch_device = resolve_device(device)
    except (ValueError, MediaError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2)
    if end is not None and end <= start:
        console.print(f"[red]error:[/red] --end ({end}) must be greater than --start ({start})")
        raise typer.Exit(2)
    inputs = ShotInputs(
        video=video,
        mask=mask,
        start=start,
        end=end,
        fps=_parse_fps(fps),
        mask_threshold=mask_threshold,
        dilate=dilate,
    )
    checkpoints = checkpoint_dir or output.with_name(f"{output.stem}.checkpoints")
    with _training_progress(quiet) as progress:
        task = progress.add_task("train", total=config.train.iterations, loss=float("nan"))

        def on_step(iteration: int, total: int, loss: float) -> None:
            progress.update(task, completed=iteration, total=total, loss=loss)

        try:
            outputs, result = inpaint_files(
                inputs, output, config, torch_device, kind, checkpoints, on_step
            )
        except MediaError as error:
            console.print(f"[red]error:[/red] {escape(str(error))}")
            raise typer.Exit(2)
    resumed = f", resumed from step {result.resumed_from}" if result.resumed_from else ""
    console.print(
        f"wrote {escape(str(outputs.video))} ({len(result.frames)} frames; {result.iterations} steps{resumed}; "
        f"train {result.train_seconds:.1f}s, fill {result.fill_seconds:.1f}s on {torch_device})"
    )
    console.print(f"contact sheet: {escape(str(outputs.contact_sheet))}")

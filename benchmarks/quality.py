"""Fill-quality benchmark: the engine against Telea and a temporal median, scored inside the hole.

    python benchmarks/quality.py [--clips balle,carphone] [--presets fast,standard]
        [--methods iivi,dip-vid-flow,lgtsm] [--budget-seconds S]
        [--iterations-standard N] [--iterations N] [--flicker A] [--footage DIR] [--device auto]
        [--out results.json] [--write-markdown PATH]

``--methods`` runs each preset of each internal-learning method; ``--budget-seconds`` stops every
engine run's training after that many seconds (the preset's iteration count stays the ceiling),
so methods are compared at the same wall-clock budget. Every result also gets a
temporal-consistency figure: the best-match PSNR of hole patches in the next frame.

Clips and their ground truth are built in ``benchmarks/footage.py``, the metrics are in
``benchmarks/metrics.py`` and the classical fills in ``benchmarks/baselines.py``.

Each engine preset runs in a fresh subprocess (this script re-invoked with a hidden flag), so the
peak RSS reported for it is that preset's alone: not the clip loading, the ground-truth medians or
an earlier preset's allocations, which one long-lived process's peak would all include. The peak is
read from VmHWM, which a child does not inherit (``ru_maxrss`` would carry the parent's over).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Run as a script, Python puts benchmarks/ (not the repository root) on sys.path; the root is
# needed for both ``archive_inpaint`` and ``benchmarks.*`` when the package is not installed.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from archive_inpaint.config import METHODS, PRESETS, preset  # noqa: E402
from archive_inpaint.pipeline import inpaint_arrays, resolve_device  # noqa: E402
from archive_inpaint.provenance import library_versions, versions_line  # noqa: E402
from benchmarks.baselines import TELEA_RADIUS, telea_shot, temporal_median_shot  # noqa: E402
from benchmarks.footage import (  # noqa: E402
    CLIP_LOADERS,
    BenchmarkClip,
    check_footage_dir,
    load_clip,
    with_exposure_flicker,
)
from benchmarks.metrics import (  # noqa: E402
    PSNR_CAP_DB,
    HoleScores,
    best_match_psnr,
    peak_rss_mib,
    hole_squared_error,
    psnr_from_mse,
    score_hole,
)

DEFAULT_FOOTAGE = REPO_ROOT.parent / "shared" / "footage"
DEFAULT_CLIPS = "balle,carphone"
DEFAULT_PRESETS = "fast,standard"
TELEA = "telea"
MEDIAN = "temporal-median"
MIB = 1024 * 1024
# Progress lines per engine run: enough to see a long CPU run is alive, few enough to read.
PROGRESS_LINES = 10


# --------------------------------------------------------------------------------------------
# Engine subprocess


@dataclass(frozen=True)
class EngineJob:
    """What a worker process needs: where the inputs are, what to run, where to put the output."""

    preset: str
    iterations: int
    device: str
    method: str
    time_budget_seconds: float | None
    frames_path: str
    holes_path: str
    filled_path: str
    report_path: str
    gan_weight: float = 0.0  # lgtsm only: TSMGAN fine-tuning for the last quarter of the steps
    # Where to save the same trained network's fill without content pasted from other frames
    # (the network's own fill), when the run pasted it; "" for none.
    network_only_path: str = ""
    # Where to save the same network's fill with the content from other frames pasted as it is,
    # without lighting compensation, when the run compensated; "" for none.
    no_lighting_path: str = ""
    # Where to save the same network's fill with each hole pixel the nearest source frame's, not
    # blended from the nearest before and after, when the run blended; "" for none.
    nearest_source_path: str = ""
    # Where to save the same network's fill with the agreement check judged by the network's fill
    # alone (not by the two sides where frames before and after both show a pixel); "" for none.
    network_judged_path: str = ""
    checkpoint_dir: str = ""


def run_engine_worker(job_path: Path) -> None:
    """Body of the hidden ``--engine-worker`` mode: one preset on one clip, then exit."""
    job = EngineJob(**json.loads(job_path.read_text()))
    frames = np.load(job.frames_path)
    holes = np.load(job.holes_path)
    config = preset(job.preset, job.method).with_overrides(
        iterations=job.iterations, gan_weight=job.gan_weight if job.method == "lgtsm" else None
    )
    if job.time_budget_seconds is not None:
        config = dataclasses.replace(
            config, train=dataclasses.replace(config.train, time_budget_seconds=job.time_budget_seconds)
        )
    device = resolve_device(job.device)
    on_gpu = device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    every = max(1, job.iterations // PROGRESS_LINES)
    began = time.perf_counter()

    def progress(iteration: int, ceiling: int, loss: float) -> None:
        if iteration % every == 0 or iteration == ceiling:
            rate = iteration / max(time.perf_counter() - began, 1e-9)
            print(
                f"    [{job.method} {job.preset}] iteration {iteration}/{ceiling} loss {loss:.4f} "
                f"(~{rate:.1f} it/s incl. setup)",
                file=sys.stderr,
                flush=True,
            )

    checkpoints = Path(job.checkpoint_dir) if job.checkpoint_dir else None
    result = inpaint_arrays(frames, holes, config, device, checkpoint_dir=checkpoints, on_step=progress)
    wall = time.perf_counter() - began
    np.save(job.filled_path, result.frames)

    def fill_again(path: str, **overrides: Any) -> float | None:
        """The very same network (resumed at its last step, so nothing more is trained) filled
        with ``overrides``, saved to ``path``: what one fill setting adds, within one run."""
        if not path or checkpoints is None:
            return None
        mark = time.perf_counter()
        again = inpaint_arrays(
            frames, holes, config.with_overrides(iterations=result.iterations, **overrides), device,
            checkpoint_dir=checkpoints,
        )
        if again.train_seconds > 1.0:
            raise SystemExit(f"the fill with {overrides} trained again instead of resuming")
        np.save(path, again.frames)
        return time.perf_counter() - mark

    propagation = config.content_propagation
    # Without the content other frames show (the network's own fill); and that content pasted
    # without lighting compensation.
    network_only_seconds = fill_again(job.network_only_path, propagation=False) if propagation.whole_frame_fill else None
    no_lighting_seconds = (
        fill_again(job.no_lighting_path, lighting=False)
        if propagation.whole_frame_fill and propagation.lighting
        else None
    )
    nearest_source_seconds = (
        fill_again(job.nearest_source_path, blend_sources=False)
        if propagation.whole_frame_fill and propagation.blend_sources
        else None
    )
    network_judged_seconds = (
        fill_again(job.network_judged_path, agreement_between_sources=False)
        if propagation.whole_frame_fill and propagation.blend_sources and propagation.check_agreement
        and propagation.agreement_between_sources
        else None
    )
    report = {
        "iterations": result.iterations,
        "train_seconds": result.train_seconds,
        "fill_seconds": result.fill_seconds,
        "wall_seconds": wall,
        "iterations_per_second": result.iterations / result.train_seconds
        if result.train_seconds > 0
        else None,
        "peak_rss_mib": peak_rss_mib(),
        "peak_cuda_mib": torch.cuda.max_memory_allocated(device) / MIB if on_gpu else None,
        "torch_threads": torch.get_num_threads(),
        "final_loss": result.loss_history[-1] if result.loss_history else None,
        "config": config.to_dict(),
        "method": job.method,
        "method_details": result.provenance,
        "time_budget_seconds": job.time_budget_seconds,
        "network_only_fill_seconds": network_only_seconds,
        "no_lighting_fill_seconds": no_lighting_seconds,
        "nearest_source_fill_seconds": nearest_source_seconds,
        "network_judged_fill_seconds": network_judged_seconds,
    }
    Path(job.report_path).write_text(json.dumps(report, indent=2))


def run_engine(
    clip: BenchmarkClip,
    preset_name: str,
    iterations: int,
    device: str,
    scratch: Path,
    method: str = "iivi",
    time_budget_seconds: float | None = None,
    gan_weight: float = 0.0,
) -> tuple[np.ndarray, dict[str, Any], dict[str, np.ndarray]]:
    """Run one method's preset on ``clip`` in a fresh Python process; (filled frames, its report,
    the same network's other fills: "network-only" without content from other frames,
    "no-lighting" with that content without lighting compensation, "nearest-source" with
    each pixel the nearest source frame's, unblended, and "network-judged" with the agreement
    check judged by the network's fill alone, where they apply)."""
    frames_path = scratch / f"{clip.name}-frames.npy"
    holes_path = scratch / f"{clip.name}-holes.npy"
    if not frames_path.exists():
        np.save(frames_path, clip.frames)
        np.save(holes_path, clip.holes)
    job = EngineJob(
        preset=preset_name,
        iterations=iterations,
        device=device,
        method=method,
        time_budget_seconds=time_budget_seconds,
        frames_path=str(frames_path),
        holes_path=str(holes_path),
        filled_path=str(scratch / f"{clip.name}-{method}-{preset_name}-{gan_weight:g}-filled.npy"),
        report_path=str(scratch / f"{clip.name}-{method}-{preset_name}-{gan_weight:g}-report.json"),
        gan_weight=gan_weight,
        network_only_path=str(scratch / f"{clip.name}-{method}-{preset_name}-{gan_weight:g}-network-only.npy"),
        no_lighting_path=str(scratch / f"{clip.name}-{method}-{preset_name}-{gan_weight:g}-no-lighting.npy"),
        nearest_source_path=str(scratch / f"{clip.name}-{method}-{preset_name}-{gan_weight:g}-nearest-source.npy"),
        network_judged_path=str(scratch / f"{clip.name}-{method}-{preset_name}-{gan_weight:g}-network-judged.npy"),
        checkpoint_dir=str(scratch / f"{clip.name}-{method}-{preset_name}-{gan_weight:g}-checkpoints"),
    )
    job_path = scratch / f"{clip.name}-{method}-{preset_name}-{gan_weight:g}-job.json"
    job_path.write_text(json.dumps(job.__dict__))
    command = [sys.executable, str(Path(__file__).resolve()), "--engine-worker", str(job_path)]
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise SystemExit(
            f"engine {method} preset {preset_name} on {clip.name} failed (exit {completed.returncode})"
        )
    report: dict[str, Any] = json.loads(Path(job.report_path).read_text())
    filled = np.load(job.filled_path)
    # The filled frames are scored from here on; the scratch copy would only fill the disk.
    Path(job.filled_path).unlink()
    others = {}
    for name, path in (
        ("network-only", job.network_only_path),
        ("no-lighting", job.no_lighting_path),
        ("nearest-source", job.nearest_source_path),
        ("network-judged", job.network_judged_path),
    ):
        if Path(path).exists():
            others[name] = np.load(path)
            Path(path).unlink()
    return filled, report, others


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class MethodResult:
    method: str
    label: str
    scores: HoleScores
    seconds: float
    engine: dict[str, Any] | None = None  # the worker's report, for engine presets only
    capped: bool = False
    preset_iterations: int | None = None
    # Temporal consistency: best-match PSNR of hole patches in the next frame (dB).
    best_match_psnr_db: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "label": self.label,
            **self.scores.to_dict(),
            "best_match_psnr_db": self.best_match_psnr_db,
            "seconds": self.seconds,
            "capped": self.capped,
            "preset_iterations": self.preset_iterations,
            "engine": self.engine,
        }


@dataclass
class ClipResult:
    clip: dict[str, Any]
    methods: list[MethodResult] = field(default_factory=list)
    sanity_truth_vs_truth_psnr_db: float = 0.0

    def telea(self) -> MethodResult:
        return next(result for result in self.methods if result.method == TELEA)

    def to_dict(self) -> dict[str, Any]:
        telea = self.telea()
        return {
            "clip": self.clip,
            "sanity_truth_vs_truth_psnr_db": self.sanity_truth_vs_truth_psnr_db,
            "methods": [
                {
                    **result.to_dict(),
                    "psnr_gain_vs_telea_db": result.scores.psnr_mean_db - telea.scores.psnr_mean_db,
                    "psnr_all_hole_gain_vs_telea_db": result.scores.psnr_all_hole_db
                    - telea.scores.psnr_all_hole_db,
                    "ssim_gain_vs_telea": result.scores.ssim_mean - telea.scores.ssim_mean,
                    "time_ratio_vs_telea": result.seconds / telea.seconds
                    if telea.seconds > 0
                    else None,
                }
                for result in self.methods
            ],
        }


def timed(
    function: Callable[[np.ndarray, np.ndarray], np.ndarray], frames: np.ndarray, holes: np.ndarray
) -> tuple[np.ndarray, float]:
    began = time.perf_counter()
    value = function(frames, holes)
    return value, time.perf_counter() - began


def sanity_check(clip: BenchmarkClip) -> float:
    """Ground truth against itself inside the hole must hit the PSNR cap, or the scoring is wrong.

    PSNR only, through the same error path as the real scores: it is cheap on every frame, where
    SSIM of identical frames is 1 by construction and would cost seconds on the large clip.
    """
    total_error, total_values = 0.0, 0
    for index in range(clip.num_frames):
        if clip.holes[index].any():
            error, values = hole_squared_error(
                clip.truth[index], clip.truth[index].copy(), clip.holes[index]
            )
            total_error += error
            total_values += values
    value = psnr_from_mse(total_error / total_values)
    if value != PSNR_CAP_DB:
        raise AssertionError(f"truth vs truth scored {value} dB on {clip.name}, not the cap")
    return value


def benchmark_clip(
    clip: BenchmarkClip,
    presets: list[str],
    iterations_for: dict[str, int],
    device: str,
    scratch: Path,
    methods: tuple[str, ...] = ("iivi",),
    budget_seconds: float | None = None,
    gan_weights: tuple[float, ...] = (0.0,),
) -> ClipResult:
    result = ClipResult(clip=clip.summary(), sanity_truth_vs_truth_psnr_db=sanity_check(clip))
    # The ground truth's own figure: what a perfectly consistent fill of this clip scores.
    result.clip["truth_best_match_psnr_db"] = best_match_psnr(clip.truth, clip.holes)

    filled, seconds = timed(telea_shot, clip.frames, clip.holes)
    label = f"Telea (cv2.inpaint r={TELEA_RADIUS})"
    scores = score_hole(clip.truth, filled, clip.holes)
    result.methods.append(
        MethodResult(TELEA, label, scores, seconds, best_match_psnr_db=best_match_psnr(filled, clip.holes))
    )
    print(f"  {TELEA}: done in {seconds:.1f} s", flush=True)

    filled, seconds = timed(temporal_median_shot, clip.frames, clip.holes)
    label = "temporal median of known pixels"
    scores = score_hole(clip.truth, filled, clip.holes)
    result.methods.append(
        MethodResult(MEDIAN, label, scores, seconds, best_match_psnr_db=best_match_psnr(filled, clip.holes))
    )
    print(f"  {MEDIAN}: done in {seconds:.1f} s", flush=True)

    # LGTSM runs once per TSMGAN weight (0: without the GAN phase), the others once.
    variants = [(method, gan) for method in methods for gan in (gan_weights if method == "lgtsm" else (0.0,))]
    for method, gan in variants:
        for name in presets:
            ceiling = preset(name, method).train.iterations
            iterations = iterations_for.get(name, ceiling)
            capped = iterations < ceiling
            # IIVI keeps the labels of earlier reports ("engine fast"); the others name themselves.
            key = name if method == "iivi" else f"{method} {name}" + (f" gan {gan:g}" if gan else "")
            budget = "" if budget_seconds is None else f", budget {budget_seconds:.0f} s"
            print(
                f"  engine {key}: {iterations} iterations{budget}"
                + (f" (CAPPED from the preset's {ceiling})" if capped else ""),
                flush=True,
            )
            filled, report, others = run_engine(
                clip, name, iterations, device, scratch, method, budget_seconds, gan
            )
            label = f"engine {key}" + (f" (CAPPED {iterations}/{ceiling} it)" if capped else "")
            if budget_seconds is not None:
                label += f" ({report['iterations']} it in {budget_seconds:.0f} s)"
            result.methods.append(
                MethodResult(
                    method=f"engine-{key.replace(' ', '-')}",
                    label=label,
                    scores=score_hole(clip.truth, filled, clip.holes),
                    seconds=report["train_seconds"] + report["fill_seconds"],
                    engine=report,
                    capped=capped,
                    preset_iterations=ceiling,
                    best_match_psnr_db=best_match_psnr(filled, clip.holes),
                )
            )
            other_fills = {
                "network-only": ("network fill only (no content from other frames)", "network_only_fill_seconds"),
                "no-lighting": ("content from other frames without lighting compensation", "no_lighting_fill_seconds"),
                "nearest-source": ("the nearest source frame's content, not blended", "nearest_source_fill_seconds"),
                "network-judged": (
                    "agreement judged by the network's fill alone, not by the two sides",
                    "network_judged_fill_seconds",
                ),
            }
            for other, (description, seconds_key) in other_fills.items():
                if other not in others:
                    continue
                result.methods.append(
                    MethodResult(
                        method=f"engine-{key.replace(' ', '-')}-{other}",
                        label=f"{label}, {description}",
                        scores=score_hole(clip.truth, others[other], clip.holes),
                        seconds=report["train_seconds"] + (report[seconds_key] or 0.0),
                        engine=None,
                        capped=False,  # the note on the run itself says so
                        preset_iterations=ceiling,
                        best_match_psnr_db=best_match_psnr(others[other], clip.holes),
                    )
                )
    return result


# --------------------------------------------------------------------------------------------
# Machine and run description


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: str) -> dict[str, Any]:
    resolved = resolve_device(device)
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        # The cores this process may actually use (a container or taskset can allow fewer).
        "cpu_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "versions": library_versions(),
        "device": str(resolved),
        # Timings from a machine that other jobs are loading are not comparable; the load at the
        # start is kept so that a contended run can be recognised afterwards.
        "load_average_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if resolved.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(resolved)
    return info


def exact_command() -> str:
    # orig_argv is the interpreter's own argv (Python >= 3.10): the command as typed.
    argv = getattr(sys, "orig_argv", [sys.executable, *sys.argv])
    return shlex.join(argv)


# --------------------------------------------------------------------------------------------
# Reporting


def fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def quality_rows(clip: dict[str, Any]) -> list[list[str]]:
    rows = []
    for method in clip["methods"]:
        is_telea = method["method"] == TELEA
        rows.append(
            [
                method["label"],
                fmt(method["psnr_mean_db"]),
                fmt(method["psnr_all_hole_db"]),
                fmt(method["ssim_mean"], 4),
                "(reference)" if is_telea else fmt(method["psnr_gain_vs_telea_db"], signed=True),
                "(reference)" if is_telea else fmt(method["ssim_gain_vs_telea"], 4, signed=True),
                fmt(method["seconds"], 1),
                "1.0x" if is_telea else f"{method['time_ratio_vs_telea']:.1f}x",
                fmt(method.get("best_match_psnr_db")),
            ]
        )
    return rows


QUALITY_HEADER = [
    "method",
    "PSNR hole (dB)",
    "PSNR all-hole (dB)",
    "SSIM hole",
    "dPSNR vs Telea (dB)",
    "dSSIM vs Telea",
    "seconds",
    "time vs Telea",
    "best-match PSNR t->t+1 (dB)",
]
ENGINE_HEADER = [
    "clip",
    "preset",
    "iterations",
    "it/s",
    "train s",
    "fill s",
    "peak RSS (MiB)",
    "peak CUDA (MiB)",
]


def engine_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for clip in results["clips"]:
        for method in clip["methods"]:
            engine = method["engine"]
            if engine is None:
                continue
            iterations = str(engine["iterations"])
            if method["capped"]:
                iterations += f" of {method['preset_iterations']} (CAPPED)"
            rows.append(
                [
                    clip["clip"]["name"],
                    method["method"].removeprefix("engine-"),
                    iterations,
                    fmt(engine["iterations_per_second"]),
                    fmt(engine["train_seconds"], 1),
                    fmt(engine["fill_seconds"], 1),
                    fmt(engine["peak_rss_mib"], 0),
                    fmt(engine["peak_cuda_mib"], 0),
                ]
            )
    return rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def capped_notes(results: dict[str, Any]) -> list[str]:
    notes = []
    for clip in results["clips"]:
        for method in clip["methods"]:
            if method["capped"]:
                name = method["method"].removeprefix("engine-")
                notes.append(
                    f"{clip['clip']['name']}: preset {name} was "
                    f"CAPPED at {method['engine']['iterations']} of its "
                    f"{method['preset_iterations']} iterations; its scores are not the preset's."
                )
    return notes


METHOD_NOTE = (
    "PSNR and SSIM are measured inside the hole only. PSNR hole: per-frame PSNR over the hole "
    "pixels, averaged over the frames that have a hole. PSNR all-hole: one PSNR from the total "
    "squared error over every hole pixel of the shot. SSIM hole: SSIM map (Gaussian 11x11, "
    "sigma 1.5, RGB channels averaged) over the whole frame, averaged over the hole pixels, then "
    f"over frames. PSNR is capped at {PSNR_CAP_DB:.0f} dB. Seconds: engine = train + fill "
    "(working-set setup and process start excluded); baselines = the whole fill. Best-match "
    "PSNR t->t+1 (temporal consistency): each 8x8 block inside frame t's hole against its best "
    "match within +-4 px in frame t+1 of the same result, averaged; the ground truth's own "
    "figure is given per clip."
)


def busy_warning(machine: dict[str, Any]) -> str | None:
    """A warning when the machine was already busy at the start: the seconds and it/s are then
    the share this run got, not what the machine can do."""
    load = machine.get("load_average_1min_at_start")
    cores = machine.get("cpu_usable") or machine.get("cpu_count")
    if load is None or not cores or load < 0.5 * cores:
        return None
    return (
        f"the 1-minute load average was {load:.1f} on {cores} cores when this run started: "
        "timings are contended"
    )


def print_report(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print()
    print("=" * 100)
    print(f"Fill quality inside the hole -- {results['date']}")
    print(f"command: {results['command']}")
    print(
        f"machine: {machine['cpu_model']}, {machine['cpu_count']} cores "
        f"({machine['cpu_usable']} usable), torch {machine['torch']}, device {machine['device']}"
        + (f" ({machine['gpu']})" if "gpu" in machine else "")
    )
    if busy_warning(machine):
        print(f"*** {busy_warning(machine)}")
    for clip in results["clips"]:
        info = clip["clip"]
        print()
        print(f"[{info['name']}] {info['description']}")
        print(
            f"  {info['width']}x{info['height']}, {info['num_frames']} frames, "
            f"{info['frames_with_hole']} with a hole, hole = {100 * info['hole_fraction']:.2f}% "
            f"of pixels; truth vs truth = {clip['sanity_truth_vs_truth_psnr_db']:.0f} dB (cap); "
            f"truth's best-match PSNR t->t+1 = {info.get('truth_best_match_psnr_db', float('nan')):.2f} dB"
        )
        print(text_table(QUALITY_HEADER, quality_rows(clip)))
    rows = engine_rows(results)
    if rows:
        print()
        print("Engine resources (each preset in its own process)")
        print(text_table(ENGINE_HEADER, rows))
    print()
    print(METHOD_NOTE)
    for note in capped_notes(results):
        print(f"*** {note}")
    print("=" * 100)


def markdown_report(results: dict[str, Any]) -> str:
    machine = results["machine"]
    gpu = f" ({machine['gpu']})" if "gpu" in machine else ""
    parts = [
        "## Fill quality inside the hole",
        "",
        f"Measured {results['date']} on {machine['cpu_model']}, {machine['cpu_count']} cores "
        f"({machine['cpu_usable']} usable), torch {machine['torch']}, "
        f"device `{machine['device']}`{gpu}; {versions_line(machine['versions'])}.",
        "",
        f"Command: `{results['command']}`",
        "",
        METHOD_NOTE,
    ]
    notes = capped_notes(results)
    warning = busy_warning(machine)
    if warning:
        notes.insert(0, warning[0].upper() + warning[1:] + ".")
    if notes:
        parts += ["", *[f"**{note}**" for note in notes]]
    for clip in results["clips"]:
        info = clip["clip"]
        parts += [
            "",
            f"### {info['name']}",
            "",
            f"{info['description']}. {info['width']}x{info['height']}, {info['num_frames']} "
            f"frames, {info['frames_with_hole']} with a hole, "
            f"{100 * info['hole_fraction']:.2f}% of pixels in the hole. The ground truth's "
            f"best-match PSNR t->t+1: {info.get('truth_best_match_psnr_db', float('nan')):.2f} dB.",
            "",
            markdown_table(QUALITY_HEADER, quality_rows(clip)),
        ]
    rows = engine_rows(results)
    if rows:
        parts += [
            "",
            "### Engine resources",
            "",
            "Each preset runs in a fresh process; peak RSS is that process's own peak (VmHWM).",
            "",
            markdown_table(ENGINE_HEADER, rows),
        ]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# Command line


def split_names(text: str, allowed: list[str], what: str, allow_none: bool = False) -> list[str]:
    if allow_none and text.strip().lower() in {"", "none"}:
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return names


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clips", default=DEFAULT_CLIPS, help=f"comma list of {', '.join(CLIP_LOADERS)}"
    )
    parser.add_argument(
        "--presets",
        default=DEFAULT_PRESETS,
        help=f"comma list of engine presets ({', '.join(PRESETS)}), or 'none' for baselines only",
    )
    parser.add_argument(
        "--methods",
        default="iivi",
        help=f"comma list of internal-learning methods ({', '.join(METHODS)}); each runs every preset",
    )
    parser.add_argument(
        "--gan-weights",
        default="0",
        help="comma list of TSMGAN weights for lgtsm: each lgtsm preset runs once per weight (0: no GAN phase)",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        help="stop each engine run's training after this many seconds (same wall-clock budget)",
    )
    parser.add_argument(
        "--iterations-standard",
        type=positive,
        help="cap the standard preset's iterations (hours on a small CPU); reported as CAPPED",
    )
    parser.add_argument(
        "--iterations",
        type=positive,
        help="cap every preset's iterations (smoke runs); --iterations-standard wins for standard; "
        "with --budget-seconds, the iteration ceiling (may exceed the preset's)",
    )
    parser.add_argument(
        "--footage",
        type=Path,
        default=DEFAULT_FOOTAGE,
        help="folder holding the clips (default: ../shared/footage from the repository root)",
    )
    parser.add_argument(
        "--flicker",
        type=float,
        help="give every frame (input and truth) its own exposure gain in [1-A, 1+A]: film flicker",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--write-markdown", type=Path, metavar="PATH", help="write a Markdown section here"
    )
    parser.add_argument("--engine-worker", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def iteration_caps(args: argparse.Namespace, presets: list[str]) -> dict[str, int]:
    caps = {}
    for name in presets:
        cap = args.iterations_standard if name == "standard" else None
        cap = cap if cap is not None else args.iterations
        if cap is not None and args.budget_seconds is not None:
            # Under a time budget the count is only a ceiling: the budget ends the run.
            caps[name] = cap
        elif cap is not None:
            # A "cap" above the preset's own count would be a longer run, not a cap; keep the
            # preset's, so the CAPPED flag means exactly "fewer iterations than the preset".
            caps[name] = min(cap, PRESETS[name].train.iterations)
    return caps


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.engine_worker is not None:
        run_engine_worker(args.engine_worker)
        return 0
    clips = split_names(args.clips, list(CLIP_LOADERS), "clip")
    presets = split_names(args.presets, list(PRESETS), "preset", allow_none=True)
    methods = tuple(split_names(args.methods, list(METHODS), "method"))
    footage = args.footage.resolve()
    check_footage_dir(footage, clips)
    caps = iteration_caps(args, presets)
    for name, cap in caps.items():
        ceiling = PRESETS[name].train.iterations
        if cap < ceiling:
            print(f"*** preset {name} is CAPPED at {cap} of its {ceiling} iterations ***")

    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": exact_command(),
        "machine": machine_info(args.device),
        "footage": str(footage),
        "psnr_cap_db": PSNR_CAP_DB,
        "clips": [],
    }
    with tempfile.TemporaryDirectory(prefix="archive-inpaint-bench-") as scratch:
        for name in clips:
            print(f"[{name}] loading clip and ground truth", flush=True)
            clip = load_clip(name, footage)
            if args.flicker is not None:
                clip = with_exposure_flicker(clip, args.flicker)
            clip_result = benchmark_clip(
                clip, presets, caps, args.device, Path(scratch), methods, args.budget_seconds,
                tuple(float(weight) for weight in args.gan_weights.split(",")),
            )
            results["clips"].append(clip_result.to_dict())
            # Written after every clip so a long run that dies late still leaves its results.
            if args.out is not None:
                args.out.write_text(json.dumps(results, indent=2))
    print_report(results)
    if args.out is not None:
        print(f"results written to {args.out}")
    if args.write_markdown is not None:
        args.write_markdown.write_text(markdown_report(results))
        print(f"Markdown section written to {args.write_markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

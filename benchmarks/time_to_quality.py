"""Time to quality per shot: how soon each training speed-up reaches the quality of the baseline
schedule, measured in one run on one fixed shot.

The shot: carphone.mp4 (moving camera and subject) frames [24, 48), with the quality benchmark's
moving elliptical hole; the original frames are the truth. Every variant trains the same network
(the `fast` preset's, at `--width`) on it, holding out the same pixels (one pseudo-hole on each of
`--holdout-frames` frames, never trained on) and scoring their fill every `--eval-every` steps.

- baseline: the fixed schedule (`--iterations` steps), fp32, contiguous (NCHW) layout, Adam's
  default implementation, no compile, no early stopping: the paper's way, at this shot's scale.
- each optimisation alone: bf16 autocast, channels-last, fused Adam, torch.compile, early stopping
  on the held-out pixels, batch x4 with the square-root learning-rate rule and 1/4 the steps, warm
  start from the weights of the reel's previous shot (frames [0, 24), trained first, untimed).
- all together; and together-fp32: all but bf16, batch scaling and compile (the ones that cost
  quality or time on a CPU in this benchmark).

Target: 99% of the held-out PSNR (dB) the baseline reaches at the end of its schedule. Reported
per variant: training seconds until the held-out PSNR first reaches the target (evaluation time
excluded; training time is wall time of the steps, compile included), the whole run's training
seconds (where early stopping ends it), its final held-out PSNR, and the final quality of the
filled shot inside the real hole against the truth (PSNR, SSIM), with ratios to the baseline.

    .venv/bin/python benchmarks/time_to_quality.py                          # CPU, all variants
    .venv/bin/python benchmarks/time_to_quality.py --device cuda --iterations 4000 --width 24
    .venv/bin/python benchmarks/time_to_quality.py --iterations 60 --eval-every 20 --variants baseline,early-stop   # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from archive_inpaint.config import HoldoutConfig, MethodConfig, preset  # noqa: E402
from archive_inpaint.pipeline import inpaint_arrays  # noqa: E402
from archive_inpaint.training.trainer import save_weights  # noqa: E402
from benchmarks.footage import load_carphone  # noqa: E402
from benchmarks.metrics import peak_rss_mib, score_hole  # noqa: E402
from benchmarks.quality import machine_info  # noqa: E402

SHOT = (24, 48)
PREVIOUS_SHOT = (0, 24)
VARIANTS = (
    "baseline", "bf16", "channels-last", "fused-adam", "compile", "early-stop", "batch-x4",
    "warm-start", "all", "together-fp32",
)
TARGET_SHARE = 0.99


@dataclass
class Outcome:
    variant: str
    seconds_to_target: float | None
    train_seconds: float
    iterations: int
    final_holdout_psnr: float
    hole_psnr: float
    hole_ssim: float
    curve: list[tuple[int, float, float]]  # (iteration, train seconds, held-out PSNR)
    peak_gpu_mib: float | None


def variant_config(name: str, args: argparse.Namespace) -> MethodConfig:
    base = preset("fast").with_overrides(
        iterations=args.iterations, width=args.width, working_long_side=args.working, checkpoint_every=10**9
    )
    watch = HoldoutConfig(frames=args.holdout_frames, eval_every=args.eval_every, stop_patience=None)
    train = dataclasses.replace(
        base.train, precision="fp32", channels_last=False, fused_optimizer=False, compile=False, holdout=watch
    )
    stop = dataclasses.replace(watch, stop_patience=args.patience, min_delta_db=args.min_delta)
    changes: dict[str, Any] = {
        "baseline": {},
        "bf16": {"precision": "bf16"},
        "channels-last": {"channels_last": True},
        "fused-adam": {"fused_optimizer": True},
        "compile": {"compile": True},
        "early-stop": {"holdout": stop},
        "batch-x4": {},
        "warm-start": {},
        "all": {"precision": "bf16", "channels_last": True, "fused_optimizer": True, "compile": True, "holdout": stop},
        # What holds the baseline's quality on a CPU: no bf16, no batch scaling, no compile.
        "together-fp32": {"channels_last": True, "fused_optimizer": True, "holdout": stop},
    }[name]
    train = dataclasses.replace(train, **changes)
    if name in ("batch-x4", "all"):
        train = train.scaled(4)
    return dataclasses.replace(base, train=train)


def run_variant(name: str, clip: Any, previous: Any, args: argparse.Namespace, device: torch.device, weights: Path) -> Outcome:
    config = variant_config(name, args)
    warm = name in ("warm-start", "all", "together-fp32")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    began = time.perf_counter()
    result = inpaint_arrays(clip.frames, clip.holes, config, device, initial_weights=weights if warm else None)
    log = logging.getLogger("time_to_quality")
    log.info("%s: %.1f s", name, time.perf_counter() - began)
    curve = [(e.iteration, e.train_seconds, e.psnr) for e in result.evaluations]
    scores = score_hole(clip.truth, result.frames, clip.holes)
    return Outcome(
        variant=name,
        seconds_to_target=None,  # set once the baseline's final PSNR is known
        train_seconds=result.train_seconds,
        iterations=result.iterations,
        final_holdout_psnr=curve[-1][2] if curve else float("nan"),
        hole_psnr=scores.psnr_all_hole_db,
        hole_ssim=scores.ssim_mean,
        curve=curve,
        peak_gpu_mib=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    )


def seconds_to(curve: list[tuple[int, float, float]], target: float) -> float | None:
    return next((seconds for _, seconds, psnr in curve if psnr >= target), None)


def train_previous_shot(previous: Any, args: argparse.Namespace, device: torch.device, path: Path) -> None:
    """The reel's previous shot, trained with the baseline schedule: its weights warm-start."""
    result = inpaint_arrays(previous.frames, previous.holes, variant_config("baseline", args), device)
    assert result.weights is not None
    save_weights(result.weights, path)


def cut(clip: Any, frames: tuple[int, int]) -> Any:
    start, end = frames
    return dataclasses.replace(
        clip,
        frames=clip.frames[start:end],
        holes=clip.holes[start:end],
        truth=np.ascontiguousarray(clip.truth[start:end]),
        frame_range=frames,
    )


def markdown(outcomes: list[Outcome], target: float, args: argparse.Namespace, machine: dict[str, Any], started: dt.datetime) -> str:
    base = outcomes[0]
    rows = [
        "| variant | s to target | speed-up to target | run s (steps) | run speed-up | final held-out PSNR | hole PSNR | hole SSIM | vs baseline (dB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        to_target = "not reached" if o.seconds_to_target is None else f"{o.seconds_to_target:.1f}"
        ratio = (
            "-" if o.seconds_to_target is None or base.seconds_to_target is None
            else f"{base.seconds_to_target / o.seconds_to_target:.2f}x"
        )
        rows.append(
            f"| {o.variant} | {to_target} | {ratio} | {o.train_seconds:.1f} ({o.iterations}) | "
            f"{base.train_seconds / o.train_seconds:.2f}x | {o.final_holdout_psnr:.2f} | {o.hole_psnr:.2f} | "
            f"{o.hole_ssim:.4f} | {o.hole_psnr - base.hole_psnr:+.2f} |"
        )
    command = "benchmarks/time_to_quality.py " + " ".join(sys.argv[1:])
    device = machine.get("gpu") or machine.get("cpu_model")
    return "\n".join(
        [
            "## Time to quality (`benchmarks/time_to_quality.py`)",
            "",
            f"Date: {started:%Y-%m-%d %H:%M} UTC  ",
            f"Command: `{command.strip()}`  ",
            f"Device: {args.device} ({device}); machine: {json.dumps(machine)}",
            "",
            f"Shot: carphone frames [{SHOT[0]}, {SHOT[1]}), {args.working} px working size, `fast` network at width "
            f"{args.width}, baseline schedule {args.iterations} steps of batch 4; held-out pixels on "
            f"{args.holdout_frames} frames, scored every {args.eval_every} steps. Target: {TARGET_SHARE:.0%} of the "
            f"baseline's final held-out PSNR = {target:.2f} dB. Early stopping: patience {args.patience} "
            f"evaluations, {args.min_delta} dB.",
            "",
            *rows,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--footage", type=Path, default=ROOT.parent / "shared" / "footage")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--working", type=int, default=128, help="working long side, px")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--holdout-frames", type=int, default=4)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--min-delta", type=float, default=0.05)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, help="results JSON")
    parser.add_argument("--write-markdown", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    names = [n for n in args.variants.split(",") if n]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown or names[:1] != ["baseline"]:
        parser.error(f"variants must start with baseline and be among {', '.join(VARIANTS)} (unknown: {unknown})")
    device = torch.device(args.device)
    started = dt.datetime.now(dt.timezone.utc)
    machine = machine_info(args.device)
    whole = load_carphone(args.footage)
    clip, previous = cut(whole, SHOT), cut(whole, PREVIOUS_SHOT)
    weights = Path(f"/tmp/time_to_quality_previous_{args.width}.pt")
    if {"warm-start", "all", "together-fp32"} & set(names):
        train_previous_shot(previous, args, device, weights)
    outcomes = [run_variant(name, clip, previous, args, device, weights) for name in names]
    target = TARGET_SHARE * outcomes[0].final_holdout_psnr
    for outcome in outcomes:
        outcome.seconds_to_target = seconds_to(outcome.curve, target)
    section = markdown(outcomes, target, args, machine, started)
    print(section)
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    if args.out:
        args.out.write_text(json.dumps({"target": target, "outcomes": [dataclasses.asdict(o) for o in outcomes]}, indent=1))
    if args.write_markdown:
        args.write_markdown.write_text(section)


if __name__ == "__main__":
    main()

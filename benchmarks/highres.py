"""High-resolution benchmark: progressive learning and grid inference at 1080p and 2160p.

    python benchmarks/highres.py [--resolutions 1080,2160] [--frames 8] [--iterations 300]
        [--patch-iterations 200] [--preset fast] [--width N] [--working N] [--patch-size N]
        [--batch 2] [--device auto]
        [--out results.json] [--write-markdown PATH]

The shot is synthetic with exact ground truth: a real 5312x2988 photograph
(``seeding-5312x2988.jpg``) panned with sub-pixel motion (bicubic warp) into 3840x2160 frames, and
the same frames downscaled (area) to 1920x1080, so both resolutions show the same content. A hole
(an ellipse, 9% of the width) moves across the frame; its pixels are zeroed in the input.

``--shot bikes-street`` (or ``bikes-cars``) runs real footage instead, at its own 640x272: the
first ``--frames`` frames of one shot of ``bikes.mp4`` (a street behind a railing with traffic
passing; a slow pan along parked cars), with the same moving ellipse; the original frames are the
ground truth. Parallax, motion blur, compression noise and content that moves on its own are
all there, which the panned photograph has none of. ``--resolutions`` is ignored then.

For each resolution, in fresh processes (so each peak RSS is that run's own):

1. **progressive**: the engine as shipped through ``inpaint_files`` (decode into frame stores,
   whole-frame stage, patch stages with boundary-aware sampling, tiled fill, FFV1 out), with
   the same settings at both resolutions. Peak RSS (and CUDA memory on a GPU), train and fill
   time; then the tiled fill of one frame timed with mask-only tiles and with every tile.
2. **coarse-only**: the same whole-frame stage (resumed from run 1's checkpoint, so the very same
   network) with the patch stages switched off: its fill upsampled inside the hole.
3. with ``--compare-plain``, **progressive-plain**: the same whole-frame stage, then patch stages
   trained without content propagated from other frames (the coarse prior alone); with
   ``--compare-nearest-source``, **progressive-nearest**: patch stages given the nearest source
   frame's content alone, not the nearest before and after blended; with
   ``--compare-unchecked``, **progressive-unchecked**: patch stages given the content without
   the agreement check (content the prior contradicts is given all the same); with
   ``--compare-network-judged``, **progressive-network-judged**: the check judged by the prior
   alone, also where frames before and after both show a pixel (and, with
   ``--compare-whole-frame``, **whole-frame-network-judged**).
4. with ``--compare-whole-frame``, **whole-frame**: the same whole-frame stage with the patch
   stages off but content propagation on: the coarse fill upsampled, then other frames' pixels
   pasted at full resolution where the flow finds them (what ``max_stages=1`` ships). The patch
   stages are worth their training time only where they beat this. And **whole-frame-unchecked**:
   the same without the agreement check.

PSNR and SSIM are scored inside the hole against the original frames.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from archive_inpaint.config import IIVIConfig, ProgressiveConfig, preset  # noqa: E402
from archive_inpaint.inference.progressive_fill import fill_frame_tiled  # noqa: E402
from archive_inpaint.inference.stage_predictors import PatchStagePredictor  # noqa: E402
from archive_inpaint.media.frame_store import FrameStore  # noqa: E402
from archive_inpaint.training.stage_data import StageData  # noqa: E402
from archive_inpaint.media import read_frames, write_frames  # noqa: E402
from archive_inpaint.pipeline import ShotInputs, inpaint_files, resolve_device  # noqa: E402
from archive_inpaint.provenance import library_versions, versions_line  # noqa: E402
from benchmarks.footage import exposure_flicker  # noqa: E402
from benchmarks.metrics import hole_squared_error, peak_rss_mib, score_hole  # noqa: E402

FOOTAGE = REPO_ROOT.parent / "shared" / "footage"
PHOTO = FOOTAGE / "seeding-5312x2988.jpg"
FPS = Fraction(24)
# Real shots of bikes.mp4 (hard cuts at frames 30, 76, 137, 187 and 242): first and last frame.
REAL_SHOTS = {"bikes-street": (138, 186), "bikes-cars": (31, 75)}
MIB = 1024 * 1024
SIZES = {360: (360, 640), 720: (720, 1280), 1080: (1080, 1920), 2160: (2160, 3840)}


# --------------------------------------------------------------------------------------------
# The synthetic shot


def render_shot(photo: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, 2160, 3840, 3) uint8, holes (T, 2160, 3840) bool)."""
    height, width = SIZES[2160]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    holes = np.zeros((num_frames, height, width), dtype=bool)
    for t in range(num_frames):
        # A slow diagonal pan with sub-pixel steps: every frame is a new resampling.
        dx, dy = 400 + 7.37 * t, 300 + 3.61 * t
        warp = np.float32([[1, 0, -dx], [0, 1, -dy]])
        frames[t] = cv2.warpAffine(photo, warp, (width, height), flags=cv2.INTER_CUBIC)
        holes[t] = moving_ellipse(t, num_frames, height, width)
    return frames, holes


def moving_ellipse(t: int, num_frames: int, height: int, width: int) -> np.ndarray:
    """Frame ``t``'s hole: an ellipse 9% of the width wide, crossing the middle 40% of the frame."""
    centre = (int(width * (0.3 + 0.4 * t / max(num_frames - 1, 1))), int(height * 0.55))
    hole = np.zeros((height, width), dtype=np.uint8)
    cv2.ellipse(hole, centre, (int(width * 0.045), int(height * 0.06)), 20.0, 0, 360, 1, -1)
    return hole > 0


def real_shot(name: str, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``num_frames`` frames of a shot of bikes.mp4 at its own size, with the moving
    ellipse as their hole."""
    first, last = REAL_SHOTS[name]
    if num_frames > last - first + 1:
        raise SystemExit(f"{name} has {last - first + 1} frames; --frames {num_frames} asks for more")
    frames = read_frames(FOOTAGE / "bikes.mp4", start=first, end=first + num_frames).frames
    height, width = frames.shape[1:3]
    holes = np.stack([moving_ellipse(t, num_frames, height, width) for t in range(num_frames)])
    return frames, holes


def downscale(frames: np.ndarray, holes: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    if frames.shape[1:3] == size:
        return frames, holes
    small = np.stack([cv2.resize(f, size[::-1], interpolation=cv2.INTER_AREA) for f in frames])
    small_holes = np.stack(
        [cv2.resize(h.astype(np.float32), size[::-1], interpolation=cv2.INTER_AREA) > 0 for h in holes]
    )
    return small, small_holes


# --------------------------------------------------------------------------------------------
# Worker (a fresh process per run)


def bench_config(
    args: argparse.Namespace, max_stages: int, sampling: dict[str, Any] | None = None
) -> IIVIConfig:
    named = preset(args.preset)
    base = named.with_overrides(
        iterations=args.iterations,
        width=args.width or named.model.width,
        working_long_side=args.working or named.train.working_long_side,
        batch_size=args.batch,
        checkpoint_every=max(args.iterations, args.patch_iterations),
    )
    patch_size = args.patch_size or named.progressive.patch_size
    sampling = dict(sampling or {})
    # Content propagation is a setting of its own, not of the progressive stages.
    propagation = sampling.pop("propagation", True)
    lighting = sampling.pop("lighting", True)
    blend_sources = sampling.pop("blend_sources", True)
    check_agreement = sampling.pop("check_agreement", True)
    between_sources = sampling.pop("agreement_between_sources", True)
    progressive = ProgressiveConfig(
        max_stages=max_stages,
        iterations=args.patch_iterations,
        batch_size=args.batch,
        patch_size=patch_size,
        tile_overlap=patch_size // 4,
        # Both resolutions on scratch disk: the same code path, and the same memory rule.
        in_memory_limit_bytes=0,
        **sampling,
    )
    return dataclasses.replace(base, progressive=progressive).with_overrides(
        propagation=propagation,
        lighting=lighting,
        blend_sources=blend_sources,
        check_agreement=check_agreement,
        agreement_between_sources=between_sources,
    )


def hole_psnr_db(truth: np.ndarray, result: np.ndarray, hole: np.ndarray) -> float:
    error, values = hole_squared_error(truth, result, hole)
    return float(10 * np.log10(255.0**2 / max(error / values, 1e-10)))


def run_worker(job: dict[str, Any]) -> None:
    args = argparse.Namespace(**job["args"])
    device = resolve_device(args.device)
    on_gpu = device.type == "cuda"
    config = bench_config(args, job["max_stages"], job.get("sampling"))
    began = time.perf_counter()
    last = [0.0]

    def progress(iteration: int, ceiling: int, loss: float) -> None:
        if time.perf_counter() - last[0] > 30 or iteration == ceiling:
            last[0] = time.perf_counter()
            print(f"    [{job['name']}] step {iteration}/{ceiling} loss {loss:.4f} "
                  f"({time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)

    _, result = inpaint_files(
        ShotInputs(video=Path(job["video"]), mask=Path(job["mask"])),
        Path(job["output"]),
        config,
        device,
        checkpoint_dir=Path(job["checkpoints"]),
        on_step=progress,
    )
    report: dict[str, Any] = {
        "stages": result.stages,
        "tiles": result.tiles,
        "iterations": result.iterations,
        "resumed_from": result.resumed_from,
        "train_seconds": result.train_seconds,
        "fill_seconds": result.fill_seconds,
        "wall_seconds": time.perf_counter() - began,
        "peak_rss_mib": peak_rss_mib(),
        "peak_cuda_mib": torch.cuda.max_memory_allocated(device) / MIB if on_gpu else None,
        "torch_threads": torch.get_num_threads(),
    }
    # Taken before the tile timing below, whose all-tiles pass is not part of a run.
    if result.final_stage is not None and job.get("time_tiles"):
        # One frame's tiled fill, mask-only tiles against every tile of the grid. The stages
        # read the whole shot (propagation looks into the other frames).
        video = read_frames(job["video"])
        holes = read_frames(job["mask"]).frames[..., :1] > 0
        hole = holes[0, ..., 0]
        timings = {}
        for label, every_tile in (("mask_tiles", False), ("all_tiles", True)):
            # The run's frame stores are closed by now: point every patch stage at this frame
            # (which also drops what a stage had filled, so both timings start cold).
            stage = result.final_stage
            while isinstance(stage, PatchStagePredictor):
                stage.use_data(
                    StageData(FrameStore.from_array(video.frames), FrameStore.from_array(holes), stage.data.stage)
                )
                stage = stage.previous
            mark = time.perf_counter()
            with torch.no_grad():
                _, count = fill_frame_tiled(result.final_stage, 0, video.frames[0], hole, all_tiles=every_tile)
            timings[label] = {"seconds": time.perf_counter() - mark, "tiles": count}
        report["tile_timing"] = timings
    Path(job["report"]).write_text(json.dumps(report, indent=2))


def spawn(job: dict[str, Any], scratch: Path) -> dict[str, Any]:
    job_path = scratch / f"{job['name']}.job.json"
    job_path.write_text(json.dumps(job))
    subprocess.run([sys.executable, __file__, "--worker", str(job_path)], check=True)
    return json.loads(Path(job["report"]).read_text())


# --------------------------------------------------------------------------------------------
# Driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--resolutions", default="1080,2160")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=300, help="whole-frame stage steps")
    parser.add_argument("--patch-iterations", type=int, default=200, help="steps per patch stage")
    parser.add_argument("--preset", default="fast",
                        help="the IIVI preset the settings start from (network, learning rate, regularizers)")
    parser.add_argument("--patch-size", type=int, default=None, help="default: the preset's")
    parser.add_argument("--width", type=int, default=None, help="network width; default: the preset's")
    parser.add_argument("--working", type=int, default=None, help="whole-frame stage long side; default: the preset's")
    parser.add_argument("--batch", type=int, default=2, help="frames (whole-frame stage) and patches per step")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-tile-timing", action="store_true", help="skip the mask-only vs all-tiles timing")
    parser.add_argument("--output-kinds", default="mkv",
                        help="output suffixes for the progressive run: mkv (FFV1), png (a PNG sequence folder), or both")
    parser.add_argument("--bas-probabilities", default="",
                        help="extra progressive runs at the first resolution with these BAS shares, e.g. 0,0.3,0.9")
    parser.add_argument("--band-widths", default="", help="extra runs with these band widths (px), e.g. 8,32")
    parser.add_argument("--compare-plain", action="store_true",
                        help="also train the patch stages without propagated content (same whole-frame network)")
    parser.add_argument("--compare-unchecked", action="store_true",
                        help="also train the patch stages on the content without the agreement check")
    parser.add_argument("--compare-network-judged", action="store_true",
                        help="also run the agreement check with the network's fill as the only judge "
                        "(not the two sides where both show a pixel)")
    parser.add_argument("--compare-lighting", action="store_true",
                        help="also train the patch stages on propagated content without lighting compensation")
    parser.add_argument("--compare-nearest-source", action="store_true",
                        help="also train the patch stages on the nearest source's content alone (not blended)")
    parser.add_argument("--compare-whole-frame", action="store_true",
                        help="also fill with the whole-frame stage and content propagated at full resolution (no patch stages)")
    parser.add_argument("--shot", choices=["pan", *REAL_SHOTS], default="pan",
                        help="the panned photograph (default) or a real shot of bikes.mp4 at its own size")
    parser.add_argument("--flicker", type=float, default=None,
                        help="give every frame (input and truth) its own exposure gain in [1-A, 1+A]: film flicker")
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--write-markdown", type=Path, default=None)
    args = parser.parse_args()
    if args.worker:
        run_worker(json.loads(Path(args.worker).read_text()))
        return
    if args.shot == "pan":
        photo = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
        print(f"rendering {args.frames} frames at 3840x2160 from {PHOTO.name}", file=sys.stderr)
        frames_4k, holes_4k = render_shot(photo, args.frames)
        del photo
        resolutions = [int(r) for r in args.resolutions.split(",")]
    else:
        frames_4k, holes_4k = real_shot(args.shot, args.frames)
        resolutions = [frames_4k.shape[1]]
    if args.flicker is not None:
        frames_4k = exposure_flicker(frames_4k, args.flicker)
    worker_args = {k: v for k, v in vars(args).items() if k in {
        "iterations", "patch_iterations", "patch_size", "width", "working", "device", "preset", "batch"}}
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        # Figures moved between fresh installs of the same code (BENCHMARKS.md, high resolution):
        # every library that decodes, resamples or estimates flow is recorded with them.
        "versions": library_versions(),
        "command": " ".join(["python", "benchmarks/highres.py", *sys.argv[1:]]),
        "settings": worker_args | {"shot": args.shot, "frames": args.frames, "flicker": args.flicker},
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="archive-inpaint-highres-", dir=args.scratch) as tmp:
        scratch = Path(tmp)
        for resolution in resolutions:
            frames, holes = downscale(frames_4k, holes_4k, SIZES.get(resolution, frames_4k.shape[1:3]))
            video, mask = scratch / f"{resolution}p.mkv", scratch / f"{resolution}p-mask.mkv"
            damaged = frames.copy()
            damaged[holes] = 0
            write_frames(damaged, FPS, video)
            write_frames(np.repeat(holes[..., None].astype(np.uint8) * 255, 3, axis=3), FPS, mask)
            del damaged
            run: dict[str, Any] = {"hole_share": float(holes.mean())}
            # coarse-only: the whole-frame network's own fill, upsampled (no content pasted from
            # other frames either): what the patch stages are measured against.
            variants: list[tuple[str, int, dict[str, Any]]] = [
                ("progressive", 4, {}), ("coarse-only", 1, {"propagation": False})
            ]
            if args.compare_whole_frame:
                # The whole-frame stage's fill with other frames' content pasted at full size;
                # and the same without the agreement check, whose judge where only one side
                # shows a pixel is the coarse fill: where that is poor (a whole-frame stage
                # trained too briefly), it rejects right content.
                variants.append(("whole-frame", 1, {}))
                variants.append(("whole-frame-unchecked", 1, {"check_agreement": False}))
            if args.compare_nearest_source:
                # The same stages given the nearest source frame's content, not the blend of the
                # nearest before and after.
                variants.append(("progressive-nearest", 4, {"blend_sources": False}))
            if args.compare_network_judged:
                # The agreement check judged by the network's fill alone, also where frames before
                # and after both show a pixel and could judge it themselves.
                variants.append(("progressive-network-judged", 4, {"agreement_between_sources": False}))
                if args.compare_whole_frame:
                    variants.append(("whole-frame-network-judged", 1, {"agreement_between_sources": False}))
            if args.compare_unchecked:
                # The same stages given the same content, whether or not the prior agrees.
                variants.append(("progressive-unchecked", 4, {"check_agreement": False}))
            if args.compare_lighting:
                # The same stages given the same content, each source's as it was lit.
                variants.append(("progressive-no-lighting", 4, {"lighting": False}))
            if args.compare_plain:
                # The patch stages as they were before propagation: the coarse prior only.
                variants.append(("progressive-plain", 4, {"propagation": False}))
            variants += [(f"progressive-{kind}-out", 4, {}) for kind in args.output_kinds.split(",") if kind != "mkv"]
            if resolution == resolutions[0]:
                variants += [(f"bas-p{p}", 4, {"boundary_probability": float(p)})
                             for p in filter(None, args.bas_probabilities.split(","))]
                variants += [(f"band-{b}px", 4, {"band_width": int(b)})
                             for b in filter(None, args.band_widths.split(","))]
            for name, max_stages, sampling in variants:
                output = scratch / f"{resolution}p-{name}{'' if name.endswith('-out') else '.mkv'}"
                print(f"[{resolution}p] {name}", file=sys.stderr, flush=True)
                report = spawn(
                    {
                        "name": f"{resolution}p-{name}", "args": worker_args, "max_stages": max_stages,
                        "sampling": sampling,
                        "video": str(video), "mask": str(mask), "output": str(output),
                        # Other output kinds train afresh: their peak memory is a whole run's.
                        "checkpoints": str(scratch / f"{resolution}p-{'' if not name.endswith('-out') else name + '-'}checkpoints"),
                        "report": str(scratch / f"{resolution}p-{name}.json"),
                        "time_tiles": name == "progressive" and not args.no_tile_timing,
                    },
                    scratch,
                )
                filled = read_frames(output).frames
                scores = score_hole(frames, filled, holes)
                report["psnr_db"] = scores.psnr_mean_db
                report["ssim"] = scores.ssim_mean
                # Per frame: where a variant wins and loses follows what moves behind the hole.
                report["psnr_per_frame_db"] = [
                    round(hole_psnr_db(frames[t], filled[t], holes[t]), 2) for t in range(len(frames)) if holes[t].any()
                ]
                unmasked_exact = bool((filled[~holes] == frames[~holes]).all())
                report["unmasked_bit_exact"] = unmasked_exact
                run[name] = report
                print(f"    PSNR {scores.psnr_mean_db:.2f} dB, SSIM {scores.ssim_mean:.4f}, "
                      f"peak RSS {report['peak_rss_mib']:.0f} MiB, unmasked exact: {unmasked_exact}",
                      file=sys.stderr, flush=True)
                del filled
            results["runs"][f"{resolution}p"] = run
            if args.out:
                args.out.write_text(json.dumps(results, indent=2))
    markdown = to_markdown(results)
    print(markdown)
    if args.write_markdown:
        args.write_markdown.write_text(markdown)


def to_markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    lines = [
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}; machine: {results['machine']}  ",
        f"Libraries: {versions_line(results['versions'])}  ",
        f"Settings: {json.dumps(results['settings'])}",
        "",
        "| resolution | stages | method | PSNR in hole | SSIM in hole | train s | fill s | peak RSS MiB | peak CUDA MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        # Every variant run, the two always run first; the sampling sweep has its own table.
        methods = ["progressive", "coarse-only"] + [
            m for m, r in run.items() if isinstance(r, dict)
            and m not in ("progressive", "coarse-only") and not m.startswith(("bas-", "band-"))
        ]
        for method in methods:
            r = run[method]
            cuda = "-" if r["peak_cuda_mib"] is None else f"{r['peak_cuda_mib']:.0f}"
            lines.append(
                f"| {name} | {r['stages']} | {method} | {r['psnr_db']:.2f} dB | {r['ssim']:.4f} | "
                f"{r['train_seconds']:.0f} | {r['fill_seconds']:.1f} | {r['peak_rss_mib']:.0f} | {cuda} |"
            )
    lines.append("")
    if "1080p" in runs and "2160p" in runs:
        ratio = runs["2160p"]["progressive"]["peak_rss_mib"] / runs["1080p"]["progressive"]["peak_rss_mib"]
        lines.append(f"Peak RSS 2160p / 1080p (progressive): **{ratio:.2f}x** (target: at most 1.5x)")
        lines.append("")
    sweep = [(res, name, r) for res, run in runs.items() for name, r in run.items()
             if isinstance(r, dict) and name.startswith(("bas-", "band-"))]
    if sweep:
        default = ProgressiveConfig()
        lines.append(f"Boundary-aware sampling (defaults: p = {default.boundary_probability}, "
                     f"band {default.band_width} px; other settings as above):")
        lines.append("")
        lines.append("| resolution | variant | PSNR in hole | SSIM in hole |")
        lines.append("|---|---|---|---|")
        for res, name, r in sweep:
            lines.append(f"| {res} | {name} | {r['psnr_db']:.2f} dB | {r['ssim']:.4f} |")
        lines.append("")
    lines.append("| resolution | mask-only tiles | s/frame | all tiles | s/frame | speed-up |")
    lines.append("|---|---|---|---|---|---|")
    for name, run in runs.items():
        timing = run["progressive"].get("tile_timing")
        if timing:
            m, a = timing["mask_tiles"], timing["all_tiles"]
            lines.append(f"| {name} | {m['tiles']} | {m['seconds']:.1f} | {a['tiles']} | {a['seconds']:.1f} | "
                         f"{a['seconds'] / max(m['seconds'], 1e-9):.1f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

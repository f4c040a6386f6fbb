"""How a batch scales with workers: shots per hour for 1, 2 and 4 simulated worker nodes.

Each run starts a fresh multi-node Ray cluster on this machine with Ray's cluster utilities: a
head that takes no shots (the driver's node, as on a real cluster) and N worker nodes, each with
one CPU and one logical GPU, so every shot is scheduled as a one-GPU task exactly as on a GPU
cluster (the tiny shots then train on that node's CPU). The same manifest of tiny real shots
(FFV1 files written here) runs through `run_batch` on each cluster; the wall time covers the whole
batch: manifest read, planning, worker start-up, every shot, the results table and report.

    shots/hour = shots / wall * 3600;   speed-up = rate(N) / rate(1);   efficiency = speed-up / N

Simulated nodes share this machine's cores: with C cores, N workers can run at most min(N, C)
shots at once, so efficiency above C workers measures the machine, not the scheduler; the table
prints C and the ideal speed-up min(N, C) beside each row.

    .venv/bin/python benchmarks/scaling.py                      # 1, 2, 4 workers x 12 shots
    .venv/bin/python benchmarks/scaling.py --workers 1,2 --shots 4 --iterations 30   # smoke run
    .venv/bin/python benchmarks/scaling.py --write-markdown scaling.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from archive_inpaint.batch.runner import RunOptions, run_batch  # noqa: E402
from archive_inpaint.media import write_frames  # noqa: E402
from benchmarks.batch_overhead import machine  # noqa: E402


@dataclass
class Row:
    workers: int
    shots: int
    wall_seconds: float
    shot_seconds_mean: float  # one shot's own wall time inside its task, averaged

    @property
    def shots_per_hour(self) -> float:
        return self.shots / self.wall_seconds * 3600.0


def write_shots(folder: Path, count: int, frames: int, height: int, width: int) -> Path:
    """``count`` real shots (a textured pan with a drifting box hole) and their manifest."""
    rng = np.random.default_rng(0)
    ids, videos, masks = [], [], []
    for index in range(count):
        texture = rng.integers(0, 256, (height + frames, width + 2 * frames, 3), dtype=np.uint8)
        pixels = np.stack([texture[t : t + height, 2 * t : 2 * t + width] for t in range(frames)])
        holes = np.zeros((frames, height, width, 3), np.uint8)
        for t in range(frames):
            holes[t, height // 3 : height // 2, width // 4 + t : width // 2 + t] = 255
        ids.append(f"shot{index:02d}")
        videos.append(str(write_frames(pixels, Fraction(24), folder / f"{ids[-1]}.mkv")))
        masks.append(str(write_frames(holes, Fraction(24), folder / f"{ids[-1]}_mask.mkv")))
    manifest = folder / "shots.parquet"
    pq.write_table(pa.table({"shot_id": ids, "video_uri": videos, "mask_uri": masks}), manifest)
    return manifest


def run(workers: int, manifest: Path, output: Path, iterations: int) -> Row:
    # The head runs only the driver: shots go to the worker nodes, as with a CPU head node.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "num_gpus": 0})
    try:
        for _ in range(workers):
            cluster.add_node(num_cpus=1, num_gpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING")
        began = time.perf_counter()
        summary = run_batch(RunOptions(str(manifest), str(output), iterations=iterations, width=4))
        wall = time.perf_counter() - began
    finally:
        ray.shutdown()
        cluster.shutdown()
    failed = [row for row in summary.results if row.status != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} shot(s) failed: {failed[0].error}")
    mean = float(np.mean([row.total_seconds or 0.0 for row in summary.results]))
    return Row(workers, len(summary.results), wall, mean)


def table(rows: list[Row], cores: int) -> str:
    base = rows[0]
    lines = [
        "| workers | shots | wall s | shots/hour | speed-up vs 1 | efficiency | ideal speed-up here | mean s per shot |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        speedup = row.shots_per_hour / base.shots_per_hour
        lines.append(
            f"| {row.workers} | {row.shots} | {row.wall_seconds:.1f} | {row.shots_per_hour:.0f} | "
            f"{speedup:.2f} | {speedup / row.workers:.2f} | {min(row.workers, cores)} | {row.shot_seconds_mean:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker node counts")
    parser.add_argument("--shots", type=int, default=12)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", default="64x48", help="WxH of the shots")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--write-markdown", type=Path, help="also write the section as markdown here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    width, height = (int(n) for n in args.size.split("x"))
    counts = [int(n) for n in args.workers.split(",")]
    cores = os.cpu_count() or 1
    started = dt.datetime.now(dt.timezone.utc)
    rows = []
    with tempfile.TemporaryDirectory(prefix="scaling-") as scratch:
        folder = Path(scratch)
        manifest = write_shots(folder, args.shots, args.frames, height, width)
        for workers in counts:
            row = run(workers, manifest, folder / f"out{workers}", args.iterations)
            print(f"{workers} worker(s): {row.wall_seconds:.1f} s, {row.shots_per_hour:.0f} shots/hour", flush=True)
            rows.append(row)
    command = "benchmarks/scaling.py " + " ".join(sys.argv[1:])
    section = "\n".join(
        [
            "## Scaling with workers (`benchmarks/scaling.py`)",
            "",
            f"Date: {started:%Y-%m-%d %H:%M} UTC  ",
            f"Command: `{command.strip()}`  ",
            "Machine: " + "; ".join(f"{key}: {value}" for key, value in machine().items()),
            "",
            f"Shots: {args.shots} x {width}x{height} px, {args.frames} frames, {args.iterations} iterations, "
            "network width 4. Each worker node: 1 CPU, 1 logical GPU (one shot at a time); the head takes no "
            f"shots. This machine has {cores} logical CPUs: the ideal speed-up here is min(workers, {cores}).",
            "",
            table(rows, cores),
            "",
        ]
    )
    print(section)
    if args.write_markdown:
        args.write_markdown.write_text(section)


if __name__ == "__main__":
    main()

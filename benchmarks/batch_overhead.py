"""What the batch layer costs on top of the engine: Ray and storage overhead per shot.

For N tiny shots (default 1, 4 and 16) and each store (local filesystem; S3 served by moto's
ThreadedMotoServer in this process), runs the real command line, `archive-inpaint submit`, in a
fresh process and measures

    overhead per shot = (wall seconds of the whole submit - sum over shots of the engine's own
                         train + fill seconds, from each shot's provenance.json) / N

so it contains everything that is not training or filling: the interpreter and imports, Ray's
start and stop, manifest validation and reading (Ray Data), task scheduling, inputs' download,
encoding, contact sheets, checkpoint/output upload, `_SUCCESS.json`, the results table. The ratio
column compares it with the 1-shot case: Ray's fixed start-up cost is spread over more shots, so
it falls as N grows; what remains is the per-shot cost.

Shots run one at a time by default (`--num-cpus 1`), so the engine seconds of different shots do
not overlap and the subtraction above is exact. With `--num-cpus 2` shots overlap and the
engine's seconds sum to more than the time they took; the overhead is then understated (it may
even be negative) and the row says so.

    .venv/bin/python benchmarks/batch_overhead.py                          # 1, 4, 16 shots x local, s3
    .venv/bin/python benchmarks/batch_overhead.py --shots 1,4 --stores local   # smoke run
    .venv/bin/python benchmarks/batch_overhead.py --write-markdown benchmarks/batch-overhead.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from archive_inpaint.media import write_frames  # noqa: E402
from archive_inpaint.provenance import library_versions, versions_line  # noqa: E402

BUCKET = "batch-overhead"
# Benchmark-only credentials for the in-process moto server; nothing real.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIABENCHMARK0000001",
    "AWS_SECRET_ACCESS_KEY": "batch-overhead-benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class Row:
    store: str
    shots: int
    wall: float
    engine: float  # sum of train + fill seconds over shots
    storage: float  # sum of download + upload seconds over shots (from provenance)
    overlapped: bool

    @property
    def overhead_per_shot(self) -> float:
        return (self.wall - self.engine) / self.shots


def shot_media(folder: Path, name: str, frames: int, height: int, width: int, seed: int) -> tuple[Path, Path]:
    """A panning random texture and a drifting box hole, both lossless FFV1."""
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, (height + frames + 4, width + 2 * frames + 4, 3), dtype=np.uint8)
    pixels = np.stack([big[t : t + height, 2 * t : 2 * t + width] for t in range(frames)])
    holes = np.zeros((frames, height, width, 3), np.uint8)
    for t in range(frames):
        holes[t, height // 3 : height // 2, width // 5 + t : width // 5 + t + width // 4] = 255
    fps = Fraction(24)
    return (
        write_frames(pixels, fps, folder / f"{name}.mkv"),
        write_frames(holes, fps, folder / f"{name}_mask.mkv"),
    )


def make_inputs(folder: Path, count: int, args: argparse.Namespace) -> list[tuple[str, Path, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    for index in range(count):
        name = f"shot{index:03d}"
        video, mask = shot_media(folder, name, args.frames, args.height, args.width, seed=index)
        shots.append((name, video, mask))
    return shots


def write_manifest(path: Path, rows: list[tuple[str, str, str]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "shot_id": [r[0] for r in rows],
                "video_uri": [r[1] for r in rows],
                "mask_uri": [r[2] for r in rows],
            }
        ),
        path,
    )


def submit(manifest: str, output: str, env: dict[str, str], args: argparse.Namespace) -> float:
    script = Path(sys.executable).parent / "archive-inpaint"
    launcher = [str(script)] if script.is_file() else [sys.executable, "-m", "archive_inpaint.cli"]
    command = [
        *launcher,
        "submit",
        manifest,
        "--output",
        output,
        "--iterations",
        str(args.iterations),
        "--width",
        str(args.net_width),
        "--device",
        "cpu",
        "--num-cpus",
        str(args.num_cpus),
        "--quiet",
    ]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"submit failed ({done.returncode}):\n{done.stderr}\n{done.stdout}")
    return wall


def timings(read_json, output: str, names: list[str]) -> tuple[float, float]:
    engine = storage = 0.0
    for name in names:
        document = read_json(f"{output}/{name}/provenance.json")
        t = document["timings"]
        engine += t["train_seconds"] + t["fill_seconds"]
        storage += t.get("download_seconds", 0.0) + t.get("upload_seconds", 0.0)
    return engine, storage


def run_local(count: int, work: Path, args: argparse.Namespace) -> Row:
    shots = make_inputs(work / "in", count, args)
    manifest = work / "manifest.parquet"
    write_manifest(manifest, [(n, str(v), str(m)) for n, v, m in shots])
    output = work / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    wall = submit(str(manifest), str(output), env, args)

    def read_json(path: str) -> dict:
        return json.loads(Path(path).read_text())

    engine, storage = timings(read_json, str(output), [n for n, _, _ in shots])
    return Row("local", count, wall, engine, storage, overlapped=args.num_cpus > 1 and count > 1)


def run_s3(count: int, work: Path, args: argparse.Namespace, endpoint: str) -> Row:
    import s3fs

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **S3_ENV}
    env["AWS_ENDPOINT_URL"] = endpoint
    fs = s3fs.S3FileSystem(
        key=S3_ENV["AWS_ACCESS_KEY_ID"],
        secret=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=endpoint,
        use_listings_cache=False,
        skip_instance_cache=True,
    )
    prefix = f"{BUCKET}/run{count:03d}-{time.monotonic_ns()}"
    shots = make_inputs(work / "in", count, args)
    rows = []
    for name, video, mask in shots:
        fs.put_file(str(video), f"{prefix}/in/{video.name}")
        fs.put_file(str(mask), f"{prefix}/in/{mask.name}")
        rows.append((name, f"s3://{prefix}/in/{video.name}", f"s3://{prefix}/in/{mask.name}"))
    manifest = work / "manifest.parquet"
    write_manifest(manifest, rows)
    fs.put_file(str(manifest), f"{prefix}/manifest.parquet")
    output = f"s3://{prefix}/out"
    wall = submit(f"s3://{prefix}/manifest.parquet", output, env, args)

    def read_json(uri: str) -> dict:
        return json.loads(fs.cat_file(uri[len("s3://") :]))

    engine, storage = timings(read_json, output, [n for n, _, _ in shots])
    return Row("s3 (moto)", count, wall, engine, storage, overlapped=args.num_cpus > 1 and count > 1)


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical CPUs",
        "memory": memory,
        "os": platform.platform(),
        # Python, torch, Ray and the media libraries, as the shots' provenance records them.
        "libraries": versions_line(library_versions()),
        "load average (1/5/15 min, at start)": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def render(rows: list[Row], args: argparse.Namespace, info: dict[str, str], command: str, date: str) -> str:
    lines = [
        "## Batch overhead per shot (Ray + storage)",
        "",
        f"Date: {date}  ",
        f"Command: `{command}`  ",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()),
        "",
        f"Shots: {args.width}x{args.height} px, {args.frames} frames, {args.iterations} iterations, "
        f"network width {args.net_width}, CPU, `--num-cpus {args.num_cpus}`. "
        "overhead/shot = (wall - engine) / shots, engine = sum of train + fill seconds (provenance); "
        "ratio = overhead/shot relative to the 1-shot run of the same store; storage = sum of "
        "download + upload seconds inside the tasks (part of the overhead).",
        "",
        "| store | shots | wall s | engine s | storage s | overhead s/shot | ratio vs 1 shot |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    base = {r.store: r.overhead_per_shot for r in rows if r.shots == 1}
    for r in rows:
        ratio = f"{r.overhead_per_shot / base[r.store]:.2f}" if base.get(r.store) else "n/a"
        flag = " (shots overlapped: understated)" if r.overlapped else ""
        lines.append(
            f"| {r.store} | {r.shots} | {r.wall:.1f} | {r.engine:.1f} | {r.storage:.2f} | "
            f"{r.overhead_per_shot:.2f}{flag} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", default="1,4,16", help="comma-separated shot counts (include 1 for ratios)")
    parser.add_argument("--stores", default="local,s3", help="local, s3 (moto in-process) or both")
    parser.add_argument("--width", type=int, default=64, help="frame width, px")
    parser.add_argument("--height", type=int, default=48, help="frame height, px")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--net-width", type=int, default=4, help="network width (--width of submit)")
    parser.add_argument("--num-cpus", type=int, default=1, help="Ray CPUs; 1 runs shots one at a time")
    parser.add_argument("--write-markdown", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.shots.split(",")]
    stores = [s.strip() for s in args.stores.split(",")]
    unknown = set(stores) - {"local", "s3"}
    if unknown:
        parser.error(f"unknown store(s): {', '.join(sorted(unknown))}")

    command = shlex.join([Path(sys.argv[0]).as_posix(), *(sys.argv[1:] if argv is None else argv)])
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    rows: list[Row] = []
    server = None
    try:
        if "s3" in stores:
            import s3fs
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            s3fs.S3FileSystem(
                key=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret=S3_ENV["AWS_SECRET_ACCESS_KEY"],
                endpoint_url=endpoint,
                skip_instance_cache=True,
            ).mkdir(BUCKET)
        for store in stores:
            for count in counts:
                with tempfile.TemporaryDirectory(prefix="batch-overhead-") as work:
                    if store == "local":
                        row = run_local(count, Path(work), args)
                    else:
                        row = run_s3(count, Path(work), args, endpoint)
                rows.append(row)
                print(
                    f"{row.store:10s} {row.shots:3d} shots: wall {row.wall:6.1f} s, engine "
                    f"{row.engine:6.1f} s, overhead {row.overhead_per_shot:5.2f} s/shot",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if server is not None:
            server.stop()
    table = render(rows, args, info, command, date)
    print(table)
    if args.write_markdown:
        args.write_markdown.parent.mkdir(parents=True, exist_ok=True)
        args.write_markdown.write_text(table)


if __name__ == "__main__":
    main()

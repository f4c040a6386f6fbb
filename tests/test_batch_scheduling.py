"""Scheduling of a batch: shot sizes read from headers, longest shots first, GPU shares sized from a
measured memory estimate, and small shots sharing one GPU on a real local Ray cluster (logical
GPUs: the shots train on the CPU, Ray schedules them as GPU tasks)."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
import s3fs
from batch_fixtures import BUCKET, bucket, mask_video, s3_endpoint  # noqa: F401  (fixtures by name)
from engine_fixtures import moving_texture

from archive_inpaint.batch.runner import RunOptions, make_job, run_batch
from archive_inpaint.batch.manifest import ShotSpec
from archive_inpaint.batch.scheduling import (
    MAX_SHOTS_PER_GPU,
    estimate_gpu_bytes,
    gpu_fraction,
    longest_first,
    shot_cost,
)
from archive_inpaint.batch.shot_size import ShotSize, probe_shot_size
from archive_inpaint.config import preset
from archive_inpaint.media import write_frames

ITERATIONS = 60
SHARED_ITERATIONS = 400


def shot(folder: Path, name: str, frames: int, height: int = 24, width: int = 32) -> tuple[Path, Path]:
    pixels = moving_texture(frames, height, width, seed=frames)
    holes = np.zeros((frames, height, width), bool)
    holes[:, height // 3 : height // 2, width // 4 : width // 2] = True
    video = write_frames(pixels, Fraction(24), folder / f"{name}.mkv")
    return video, mask_video(folder / f"{name}_mask.mkv", holes)


def manifest(folder: Path, shots: dict[str, tuple[Path, Path]]) -> Path:
    path = folder / "shots.parquet"
    pq.write_table(
        pa.table(
            {
                "shot_id": list(shots),
                "video_uri": [str(video) for video, _ in shots.values()],
                "mask_uri": [str(mask) for _, mask in shots.values()],
            }
        ),
        path,
    )
    return path


def test_shot_size_is_read_from_headers_locally_and_in_object_storage(
    tmp_path: Path, bucket: s3fs.S3FileSystem  # noqa: F811  (fixture)
) -> None:
    # FFV1 in Matroska stores no frame count: the size comes from duration x rate.
    video, _ = shot(tmp_path, "v", frames=12, height=40, width=56)
    assert probe_shot_size(str(video)) == ShotSize(12, 40, 56)
    assert probe_shot_size(str(video), start=3, end=9) == ShotSize(6, 40, 56)
    assert probe_shot_size(str(video), start=5) == ShotSize(7, 40, 56)
    folder = tmp_path / "seq"
    folder.mkdir()
    for index in range(4):
        import cv2

        cv2.imwrite(str(folder / f"f_{index:03d}.png"), np.zeros((30, 20, 3), np.uint8))
    assert probe_shot_size(str(folder)) == ShotSize(4, 30, 20)
    bucket.put_file(str(video), f"{BUCKET}/v.mkv")
    bucket.put(str(folder), f"{BUCKET}/seq", recursive=True)
    assert probe_shot_size(f"s3://{BUCKET}/v.mkv") == ShotSize(12, 40, 56)
    assert probe_shot_size(f"s3://{BUCKET}/seq") == ShotSize(4, 30, 20)
    # Unreadable or missing: unknown, not an error (the shot's own task reports it).
    (tmp_path / "junk.mkv").write_bytes(b"not a video")
    assert probe_shot_size(str(tmp_path / "junk.mkv")) is None
    assert probe_shot_size(str(tmp_path / "missing.mkv")) is None


def test_cost_and_memory_grow_with_what_drives_them() -> None:
    config = preset("fast")
    small, long = ShotSize(20, 240, 320), ShotSize(200, 240, 320)
    assert shot_cost(long, config) > shot_cost(small, config)
    # With progressive learning, 4K adds patch stages and tiles over 1080p at the same working size.
    progressive = preset("standard")
    assert shot_cost(ShotSize(20, 2160, 3840), progressive) > shot_cost(ShotSize(20, 1080, 1920), progressive)
    estimate = estimate_gpu_bytes(small, config)
    assert estimate_gpu_bytes(long, config) > estimate  # more frames resident
    wider = config.with_overrides(width=24)
    assert estimate_gpu_bytes(small, wider) > estimate
    bigger_batch = config.with_overrides(batch_size=8)
    larger_work = config.with_overrides(working_long_side=640)
    assert estimate_gpu_bytes(small, bigger_batch) > estimate
    assert estimate_gpu_bytes(ShotSize(20, 480, 640), larger_work) > estimate_gpu_bytes(ShotSize(20, 480, 640), config)
    # Activations double with the batch: the measured part of the estimate is no constant.
    base = estimate_gpu_bytes(ShotSize(1, 480, 640), larger_work)
    doubled = estimate_gpu_bytes(ShotSize(1, 480, 640), larger_work.with_overrides(batch_size=8))
    assert doubled - base > 0.5 * (base - estimate_gpu_bytes(ShotSize(1, 16, 16), larger_work))


def test_gpu_fraction_packs_whole_shots_into_one_gpu() -> None:
    gib = 1 << 30
    assert gpu_fraction(3 * gib, None) == 1.0  # unknown GPU: a whole one
    assert gpu_fraction(50 * gib, 80 * gib) == 1.0
    assert gpu_fraction(30 * gib, 80 * gib) == 0.5
    assert gpu_fraction(20 * gib, 80 * gib) == 0.25
    assert gpu_fraction(1 * gib, 80 * gib) == 1 / MAX_SHOTS_PER_GPU
    assert longest_first([3.0, 9.0, 1.0, 9.0]) == [1, 3, 0, 2]


@pytest.fixture
def one_gpu_cluster():
    """Four CPUs and one logical GPU (no CUDA: the shots train on the CPU)."""
    ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def overlapping(rows: list) -> bool:
    (a, b) = sorted(rows, key=lambda row: row.started_at)
    return b.started_at < a.finished_at


@pytest.mark.usefixtures("one_gpu_cluster")
def test_small_shots_share_a_gpu_when_its_memory_is_given(tmp_path: Path) -> None:
    shots = {name: shot(tmp_path, name, frames=6) for name in ("p", "q")}
    options = RunOptions(str(manifest(tmp_path, shots)), str(tmp_path / "whole"), iterations=ITERATIONS, width=4)
    job = make_job(ShotSpec("p", str(shots["p"][0]), str(shots["p"][1])), options)
    estimate = estimate_gpu_bytes(ShotSize(6, 24, 32), job.config)

    # Without the GPU's memory: one whole GPU per shot, so the two run one after the other.
    whole = run_batch(options).results
    assert [row.status for row in whole] == ["succeeded"] * 2
    assert {row.gpu_fraction for row in whole} == {1.0}
    assert not overlapping(whole)

    # With room for two estimates (not three): half a GPU each, and both run at once on it. The
    # shots train long enough (seconds) that a worker process starting for the second one (torch
    # import) cannot miss the first.
    sharing = dataclasses.replace(
        options,
        output_uri=str(tmp_path / "shared"),
        gpu_memory_gib=2.5 * estimate / (1 << 30),
        iterations=SHARED_ITERATIONS,
    )
    shared = run_batch(sharing).results
    assert [row.status for row in shared] == ["succeeded"] * 2
    assert {row.gpu_fraction for row in shared} == {0.5}
    assert {row.estimated_gpu_bytes for row in shared} == {estimate}
    assert overlapping(shared)


@pytest.mark.usefixtures("one_gpu_cluster")
def test_longest_shots_start_first(tmp_path: Path) -> None:
    # Manifest order: short, long, middle. One GPU, one shot at a time.
    lengths = {"short": 4, "long": 14, "middle": 9}
    shots = {name: shot(tmp_path, name, frames=frames) for name, frames in lengths.items()}
    summary = run_batch(
        RunOptions(str(manifest(tmp_path, shots)), str(tmp_path / "out"), iterations=20, width=4)
    )
    assert {row.status for row in summary.results} == {"succeeded"}
    started = [row.shot_id for row in sorted(summary.results, key=lambda row: row.started_at)]
    assert started == ["long", "middle", "short"]

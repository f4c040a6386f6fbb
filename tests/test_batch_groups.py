"""Warm start across the shots of a reel (manifest column ``group``) on a real local Ray cluster:
the group's longest shot trains first and saves its weights; the group's other shots wait for it
(without holding a worker) and start from those weights; other shots are untouched."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from batch_fixtures import mask_video, ray_cluster, s3_endpoint  # noqa: F401  (fixtures by name)
from engine_fixtures import moving_texture

from archive_inpaint.batch.runner import RunOptions, run_batch
from archive_inpaint.media import write_frames

pytestmark = pytest.mark.usefixtures("ray_cluster")


def shot(folder: Path, name: str, frames: int) -> tuple[str, str]:
    pixels = moving_texture(frames, 24, 32, seed=1)  # one reel: the same scene, other frames
    holes = np.zeros((frames, 24, 32), bool)
    holes[:, 8:14, 10:18] = True
    video = write_frames(pixels[::-1].copy() if name.endswith("b") else pixels, Fraction(24), folder / f"{name}.mkv")
    return str(video), str(mask_video(folder / f"{name}_mask.mkv", holes))


def test_a_group_warm_starts_from_its_longest_shot(tmp_path: Path) -> None:
    lengths = {"reel1-b": 5, "reel1-a": 9, "solo": 6}  # reel1-a is the group's longest
    files = {name: shot(tmp_path, name, frames) for name, frames in lengths.items()}
    manifest = tmp_path / "shots.parquet"
    pq.write_table(
        pa.table(
            {
                "shot_id": list(files),
                "video_uri": [video for video, _ in files.values()],
                "mask_uri": [mask for _, mask in files.values()],
                "group": ["reel1", "reel1", None],
            }
        ),
        manifest,
    )
    output = tmp_path / "out"
    options = RunOptions(str(manifest), str(output), iterations=15, width=4, device="cpu")
    rows = {row.shot_id: row for row in run_batch(options).results}
    assert {row.status for row in rows.values()} == {"succeeded"}

    seed_weights = output / "reel1-a" / "weights.pt"
    assert seed_weights.is_file()
    assert set(torch.load(seed_weights, weights_only=True))  # a state dict of the trained network
    assert rows["reel1-a"].warm_start is None
    assert rows["reel1-b"].warm_start == str(seed_weights)
    assert rows["solo"].warm_start is None and not (output / "solo" / "weights.pt").exists()
    assert not (output / "reel1-b" / "weights.pt").exists()
    # The follower started only once its seed had finished.
    assert rows["reel1-b"].started_at >= rows["reel1-a"].finished_at
    provenance = (output / "reel1-b" / "provenance.json").read_text()
    assert str(seed_weights) in provenance

    # A rerun skips every done shot; a follower redone later warm-starts from the done seed.
    again = {row.shot_id: row.status for row in run_batch(options).results}
    assert again == {"reel1-a": "skipped", "reel1-b": "skipped", "solo": "skipped"}
    shutil.rmtree(output / "reel1-b")
    redo = {row.shot_id: row for row in run_batch(options).results}
    assert redo["reel1-b"].status == "succeeded" and redo["reel1-a"].status == "skipped"
    assert redo["reel1-b"].warm_start == str(seed_weights)


def test_a_failed_seed_leaves_its_group_to_train_from_scratch(tmp_path: Path) -> None:
    video, mask = shot(tmp_path, "good", 4)
    long_video, _ = shot(tmp_path, "long", 9)
    bad_mask = tmp_path / "wrong_size.png"
    import cv2

    cv2.imwrite(str(bad_mask), np.zeros((12, 16), np.uint8))
    manifest = tmp_path / "shots.parquet"
    pq.write_table(
        pa.table(
            {
                "shot_id": ["long", "good"],
                "video_uri": [long_video, video],
                "mask_uri": [str(bad_mask), mask],  # the seed (longest) has a mask of the wrong size
                "group": ["reel2", "reel2"],
            }
        ),
        manifest,
    )
    rows = {
        row.shot_id: row
        for row in run_batch(RunOptions(str(manifest), str(tmp_path / "out"), iterations=5, width=4, device="cpu")).results
    }
    assert rows["long"].status == "failed" and "long" in (rows["long"].error or "")
    assert rows["good"].status == "succeeded" and rows["good"].warm_start is None

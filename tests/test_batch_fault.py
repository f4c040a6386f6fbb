"""A worker killed mid-training (SIGKILL, as by the OOM killer or a lost node) on a real local Ray
cluster against a real S3 API (moto on 127.0.0.1): Ray retries the task, which resumes from the
checkpoint the dead attempt uploaded, and the shot is committed exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from batch_fixtures import (  # noqa: F401  (fixtures are used by name)
    BUCKET,
    T,
    bucket,
    mask_video,
    ray_cluster,
    s3_endpoint,
    tiny_shot,
)

from archive_inpaint.batch.runner import RunOptions, run_batch
from archive_inpaint.media import read_frames

pytestmark = [
    pytest.mark.usefixtures("ray_cluster"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker through /proc"),
]

# ~40-60 ms a step for a 32x24 shot at width 4 on one CPU: tens of seconds of training, so the kill
# lands mid-training whatever the machine's load, and a checkpoint every 20 steps.
ITERATIONS = 400
EVERY = 20
KEEP = 2  # the fast preset's keep_checkpoints


def task_pids(name: str) -> list[int]:
    """Processes running the Ray task ``name``: a worker's title is ``ray::<task name>`` while it
    executes a task (``ray::IDLE`` otherwise)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith(f"ray::{name}") and title[len(f"ray::{name}") :][:1] in ("", " ", "("):
            pids.append(int(entry.name))
    return pids


def checkpoint_steps(fs: s3fs.S3FileSystem, folder: str) -> list[int]:
    try:
        names = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return []
    return sorted(int(n[-len("00000000.pt") : -len(".pt")]) for n in names if n.endswith(".pt"))


class Killer(threading.Thread):
    """Waits for the first checkpoint in the store, then SIGKILLs the worker running the shot."""

    def __init__(self, fs: s3fs.S3FileSystem, folder: str, task_name: str) -> None:
        super().__init__(daemon=True)
        self.fs, self.folder, self.task_name = fs, folder, task_name
        self.killed: int | None = None
        self.steps_at_kill: list[int] = []
        self.error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if checkpoint_steps(self.fs, self.folder):
                break
            time.sleep(0.2)
        else:
            self.error = "no checkpoint appeared"
            return
        pids = task_pids(self.task_name)
        if len(pids) != 1:
            self.error = f"expected one worker running {self.task_name}, found {pids}"
            return
        os.kill(pids[0], signal.SIGKILL)
        self.killed = pids[0]
        # What a retry can resume from: nothing new is uploaded until a new worker has started,
        # imported torch, fetched the inputs and resumed.
        self.steps_at_kill = checkpoint_steps(self.fs, self.folder)


def test_a_killed_worker_is_retried_and_resumes_from_the_stored_checkpoint(
    tmp_path: Path, bucket: s3fs.S3FileSystem  # noqa: F811  (fixture)
) -> None:
    video, holes = tiny_shot(tmp_path, "k", seed=3)
    bucket.put_file(str(video), f"{BUCKET}/in/k.mkv")
    bucket.put_file(str(mask_video(tmp_path / "k_mask.mkv", holes)), f"{BUCKET}/in/k_mask.mkv")
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(
        pa.table(
            {
                "shot_id": ["k"],
                "video_uri": [f"s3://{BUCKET}/in/k.mkv"],
                "mask_uri": [f"s3://{BUCKET}/in/k_mask.mkv"],
            }
        ),
        manifest,
    )
    output = f"s3://{BUCKET}/out"
    killer = Killer(bucket, f"{BUCKET}/out/k/checkpoints", "shot:k")
    killer.start()
    began = time.monotonic()
    summary = run_batch(
        RunOptions(
            str(manifest),
            output,
            iterations=ITERATIONS,
            width=4,
            device="cpu",
            checkpoint_every=EVERY,
        )
    )
    killer.join(timeout=10)
    assert killer.error is None, killer.error
    assert killer.killed is not None and killer.steps_at_kill, "the worker was never killed"
    print(f"killed pid {killer.killed} at checkpoints {killer.steps_at_kill}; run {time.monotonic() - began:.1f}s")

    # The retried attempt succeeded, resuming from the latest checkpoint the dead one uploaded.
    [row] = summary.results
    assert row.status == "succeeded", row.error
    assert row.iterations == ITERATIONS
    assert row.resumed_from == killer.steps_at_kill[-1]
    assert 0 < row.resumed_from < ITERATIONS and row.resumed_from % EVERY == 0
    with bucket.open(f"{BUCKET}/out/results.parquet", "rb") as stream:
        [stored] = pq.read_table(stream).to_pylist()
    assert stored["resumed_from"] == row.resumed_from and stored["iterations"] == ITERATIONS
    provenance = json.loads(bucket.cat_file(f"{BUCKET}/out/k/provenance.json"))
    assert provenance["resumed_from"] == row.resumed_from
    assert provenance["parameters"]["config"]["train"]["checkpoint_every"] == EVERY
    success = json.loads(bucket.cat_file(f"{BUCKET}/out/k/_SUCCESS.json"))
    assert success["result"]["resumed_from"] == row.resumed_from

    # Exactly the committed outputs, once each: no second video, no temporary or partial object,
    # and the checkpoints pruned to the last KEEP, ending at the final step.
    found = sorted(p[len(f"{BUCKET}/out/") :] for p in bucket.find(f"{BUCKET}/out"))
    checkpoints = [p for p in found if p.startswith("k/checkpoints/")]
    assert [p for p in found if p not in checkpoints] == [
        "k/_SUCCESS.json",
        "k/k.contact.png",
        "k/k.diff.png",
        "k/k.mkv",
        "k/k.preview.mp4",
        "k/k.thumb.png",
        "k/provenance.json",
        "report.html",
        "results.parquet",
    ]
    assert checkpoint_steps(bucket, f"{BUCKET}/out/k/checkpoints") == [
        ITERATIONS - EVERY * i for i in reversed(range(KEEP))
    ]
    assert all(p.rsplit("/", 1)[-1].startswith("ckpt_") for p in checkpoints)

    # The video is complete: every frame, and every unmasked pixel as in the input.
    bucket.get_file(f"{BUCKET}/out/k/k.mkv", str(tmp_path / "out.mkv"))
    result = read_frames(tmp_path / "out.mkv").frames
    source = read_frames(video).frames
    assert result.shape == source.shape and result.shape[0] == T
    assert np.array_equal(result[~holes], source[~holes])

    # The dead worker's scratch folder (its TemporaryDirectory never got cleaned) was removed by
    # the retry; no scratch of this shot is left at all.
    assert not list(Path(tempfile.gettempdir()).glob("archive-inpaint-k-p*"))


def test_a_retry_clears_what_a_dead_attempt_left_behind(tmp_path: Path) -> None:
    """A local output is written in place through hidden temporaries, and scratch lives in $TMPDIR:
    a worker killed mid-write leaves both behind. The next attempt (run in-process here: it is the
    task body) removes them, and leaves a live worker's scratch alone."""
    import subprocess

    from archive_inpaint.batch.manifest import ShotSpec
    from archive_inpaint.batch.runner import make_job
    from archive_inpaint.batch.shot_task import run_shot

    video, holes = tiny_shot(tmp_path, "d")
    mask = mask_video(tmp_path / "d_mask.mkv", holes)
    shot_dir = tmp_path / "out" / "d"
    (shot_dir / "checkpoints").mkdir(parents=True)
    (shot_dir / "checkpoints" / ".tmp-ckpt-x1y2z3").write_bytes(b"half a checkpoint")
    (shot_dir / ".d.mkv.tmp-0a1b2c3d.mkv").write_bytes(b"half a video")
    (shot_dir / ".tmp-provenance.json").write_bytes(b"{")
    dead = subprocess.Popen(["true"])
    dead.wait()
    dead_scratch = Path(tempfile.gettempdir()) / f"archive-inpaint-d-p{dead.pid}-zz9q"
    (dead_scratch / "out").mkdir(parents=True)
    live_scratch = Path(tempfile.mkdtemp(prefix=f"archive-inpaint-d-p{os.getpid()}-"))
    try:
        row = run_shot(
            make_job(
                ShotSpec("d", str(video), str(mask)),
                RunOptions("unused", str(tmp_path / "out"), iterations=3, width=4, device="cpu"),
            )
        )
        assert row.status == "succeeded" and row.resumed_from == 0, row.error
        assert not dead_scratch.exists() and live_scratch.exists()
    finally:
        for folder in (dead_scratch, live_scratch):
            shutil.rmtree(folder, ignore_errors=True)
    names = sorted(str(p.relative_to(shot_dir)) for p in shot_dir.rglob("*"))
    assert [n for n in names if not n.startswith("checkpoints/ckpt_")] == [
        "_SUCCESS.json",
        "checkpoints",
        "d.contact.png",
        "d.diff.png",
        "d.mkv",
        "d.preview.mp4",
        "d.thumb.png",
        "provenance.json",
    ]

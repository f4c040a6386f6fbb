"""A multi-node Ray cluster on one machine (Ray's cluster utilities: a head and three worker nodes,
each with one logical GPU) runs a 6-shot batch against a real S3 API (moto on 127.0.0.1), and one
worker node dies mid-run: its raylet, its agents and the workers running shots are all killed, as
when a machine is lost or a spot instance is reclaimed.

Every shot must still finish; the shot that was training on the dead node must resume on another
node from the checkpoint it had uploaded (its ``resumed_from`` proves it), and nothing may be
duplicated or left half-written in the store."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
import s3fs
from batch_fixtures import BUCKET, T, bucket, mask_video, s3_endpoint, tiny_shot  # noqa: F401
from ray.cluster_utils import Cluster

from archive_inpaint.batch.runner import RunOptions, run_batch
from archive_inpaint.media import read_frames
from test_batch_fault import checkpoint_steps, task_pids

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes through /proc")

SHOTS = [f"s{index}" for index in range(6)]
# Long enough that the node dies mid-training under any load, with a checkpoint every 20 steps.
ITERATIONS = 300
EVERY = 20


@pytest.fixture
def cluster(s3_endpoint: str):  # noqa: F811  (fixture: the nodes inherit the S3 environment)
    # Fast failure detection: the head declares a silent node dead after ~3 s instead of ~30 s.
    head = {
        "num_cpus": 1,
        "num_gpus": 0,
        "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3},
    }
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(3):
        cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING")
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descends_from(pid: int, ancestor: int) -> bool:
    while pid and pid != 1:
        if pid == ancestor:
            return True
        pid = parent(pid) or 0
    return False


class NodeKiller(threading.Thread):
    """Once some shot has a checkpoint in the store, kills the worker node that trains it."""

    def __init__(self, cluster: Cluster, fs: s3fs.S3FileSystem) -> None:
        super().__init__(daemon=True)
        self.cluster, self.fs = cluster, fs
        self.node_id: str | None = None
        self.victims: list[str] = []  # shots that were running on the node
        self.steps_at_kill: dict[str, list[int]] = {}
        self.error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            for shot_id in SHOTS:
                if checkpoint_steps(self.fs, f"{BUCKET}/out/{shot_id}/checkpoints") and self.kill(shot_id):
                    return
            time.sleep(0.2)
        self.error = "no shot had a checkpoint on a live worker"

    def kill(self, shot_id: str) -> bool:
        pids = task_pids(f"shot:{shot_id}")
        if len(pids) != 1:
            return False  # between attempts, or finishing: try another shot
        for node in self.cluster.worker_nodes:
            raylet = node.all_processes["raylet"][0].process.pid
            if not descends_from(pids[0], raylet):
                continue
            running = {s: task_pids(f"shot:{s}") for s in SHOTS}
            self.victims = [s for s, ps in running.items() if any(descends_from(p, raylet) for p in ps)]
            # The whole node goes at once: its shot workers, then its raylet and agents.
            for shot_pids in running.values():
                for pid in shot_pids:
                    if descends_from(pid, raylet):
                        os.kill(pid, signal.SIGKILL)
            self.steps_at_kill = {
                s: checkpoint_steps(self.fs, f"{BUCKET}/out/{s}/checkpoints") for s in self.victims
            }
            self.node_id = node.node_id
            self.cluster.remove_node(node, allow_graceful=False)
            return True
        return False


def test_a_six_shot_run_survives_the_death_of_a_node(
    tmp_path: Path, cluster: Cluster, bucket: s3fs.S3FileSystem  # noqa: F811  (fixture)
) -> None:
    holes = {}
    for index, shot_id in enumerate(SHOTS):
        video, holes[shot_id] = tiny_shot(tmp_path, shot_id, seed=index)
        bucket.put_file(str(video), f"{BUCKET}/in/{shot_id}.mkv")
        bucket.put_file(str(mask_video(tmp_path / f"{shot_id}_m.mkv", holes[shot_id])), f"{BUCKET}/in/{shot_id}_m.mkv")
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(
        pa.table(
            {
                "shot_id": SHOTS,
                "video_uri": [f"s3://{BUCKET}/in/{s}.mkv" for s in SHOTS],
                "mask_uri": [f"s3://{BUCKET}/in/{s}_m.mkv" for s in SHOTS],
            }
        ),
        manifest,
    )
    killer = NodeKiller(cluster, bucket)
    killer.start()
    summary = run_batch(
        RunOptions(
            str(manifest),
            f"s3://{BUCKET}/out",
            iterations=ITERATIONS,
            width=4,
            checkpoint_every=EVERY,
        )
    )
    killer.join(timeout=5)
    assert killer.error is None, killer.error
    assert killer.node_id is not None and killer.victims

    rows = {row.shot_id: row for row in summary.results}
    assert sorted(rows) == SHOTS and len(summary.results) == len(SHOTS)
    assert {row.status for row in rows.values()} == {"succeeded"}, [r.error for r in rows.values()]
    for shot_id, row in rows.items():
        assert row.iterations == ITERATIONS
        assert row.node_id != killer.node_id  # the last attempt ran on a live node
        if shot_id in killer.victims:
            # Resumed from a checkpoint the dead attempt had uploaded, not from scratch.
            assert row.resumed_from in killer.steps_at_kill[shot_id], (row.resumed_from, killer.steps_at_kill)
            assert row.resumed_from > 0
        else:
            assert row.resumed_from == 0

    # One committed output per shot, nothing half-written anywhere in the store.
    everything = bucket.find(f"{BUCKET}/out")
    assert not [name for name in everything if ".tmp-" in name]
    for shot_id in SHOTS:
        folder = f"{BUCKET}/out/{shot_id}"
        videos = [n for n in bucket.ls(folder, detail=False) if n.endswith(".mkv")]
        assert videos == [f"{folder}/{shot_id}.mkv"]
        assert bucket.exists(f"{folder}/_SUCCESS.json")
    for shot_id in killer.victims:
        restored = tmp_path / f"{shot_id}_restored.mkv"
        bucket.get_file(f"{BUCKET}/out/{shot_id}/{shot_id}.mkv", str(restored))
        out, original = read_frames(restored).frames, read_frames(tmp_path / f"{shot_id}.mkv").frames
        assert out.shape[0] == T
        assert np.array_equal(out[~holes[shot_id]], original[~holes[shot_id]])

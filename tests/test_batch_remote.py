"""`archive-inpaint submit --address`: the run goes to a running Ray cluster as a Ray Job.

A real head node (`ray start --head`) on 127.0.0.1, a real Jobs API, a real job running the batch
on that cluster; the test follows the job to completion and reads the outputs it wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from archive_inpaint.media import read_frames
from batch_fixtures import mask_video, tiny_shot

VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    ray_exe = shutil.which("ray", path=str(VENV_BIN)) or shutil.which("ray")
    if ray_exe is None:
        pytest.fail("the `ray` command is not installed")
    gcs_port, dashboard_port = _free_port(), _free_port()
    # Every port the head's agents open, not only the two above: their defaults (e.g. 52365 for
    # the job agent) are taken by any other Ray on this machine, whose agent would then answer
    # for ours or leave it without one ("No available agent to submit job").
    agent_ports = [
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--dashboard-agent-grpc-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}",
    ]
    # A short temp dir: Ray's Unix socket paths must stay under the OS limit.
    temp_dir = tempfile.mkdtemp(prefix="rh-", dir="/tmp")
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    head = subprocess.Popen(
        [
            ray_exe, "start", "--head", "--block",
            "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
            "--include-dashboard=true", "--num-cpus=2", "--num-gpus=0",
            f"--temp-dir={temp_dir}", "--disable-usage-stats", *agent_ports,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                # Any HTTP answer means the dashboard is up (it may demand a token: 401).
                if requests.get(f"{address}/api/version", timeout=2).status_code < 500:
                    break
            except requests.RequestException:
                pass
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Ray head did not start")
            time.sleep(1)
        yield address
    finally:
        # --block ties the cluster's processes to this one: stopping it stops that cluster only.
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_submit_to_a_cluster_as_a_ray_job_and_follow_it(ray_head: str, tmp_path: Path) -> None:
    video, holes = tiny_shot(tmp_path, "remote")
    mask = mask_video(tmp_path / "remote_mask.mkv", holes)
    manifest = tmp_path / "shots.parquet"
    pq.write_table(
        pa.table({"shot_id": ["remote"], "video_uri": [str(video)], "mask_uri": [str(mask)]}),
        manifest,
    )
    output = tmp_path / "out"
    completed = subprocess.run(
        [
            str(VENV_BIN / "archive-inpaint"), "submit", str(manifest), "--output", str(output),
            "--address", ray_head, "--wait", "--iterations", "3", "--width", "4", "--device", "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    job_id = completed.stdout.splitlines()[0]
    assert job_id.startswith("archive-inpaint-")
    assert "SUCCEEDED" in completed.stderr
    # The job ran the batch on the cluster and committed the shot.
    assert (output / "remote" / "_SUCCESS.json").is_file()
    restored = read_frames(output / "remote" / "remote.mkv")
    original = read_frames(video)
    assert (restored.frames[~holes] == original.frames[~holes]).all()
    rows = pq.read_table(output / "results.parquet").to_pylist()
    assert [(row["shot_id"], row["status"]) for row in rows] == [("remote", "succeeded")]
    # The job's metadata names the run but carries no environment (no secrets travel with it).
    # Asked from a fresh process: Ray fixes its authentication mode when first imported, and this
    # test process imported it before the cluster (and its token) existed.
    query = (
        "import json, sys; from archive_inpaint.batch.remote import use_token; use_token(None);"
        "from ray.job_submission import JobSubmissionClient;"
        "info = JobSubmissionClient(sys.argv[1]).get_job_info(sys.argv[2]);"
        "print(json.dumps({'metadata': info.metadata, 'runtime_env': info.runtime_env}))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", query, ray_head, job_id], capture_output=True, text=True, timeout=60
    )
    assert answer.returncode == 0, answer.stderr
    details = json.loads(answer.stdout.strip().splitlines()[-1])
    assert details["metadata"]["manifest"] == str(manifest)
    assert not (details["runtime_env"] or {}).get("env_vars")


def test_submit_to_an_unreachable_cluster_is_a_clear_error(tmp_path: Path) -> None:
    manifest = tmp_path / "shots.parquet"
    pq.write_table(pa.table({"shot_id": ["x"], "video_uri": ["v"], "mask_uri": ["m"]}), manifest)
    completed = subprocess.run(
        [
            str(VENV_BIN / "archive-inpaint"), "submit", str(manifest), "--output", str(tmp_path),
            "--address", f"http://127.0.0.1:{_free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "could not submit" in completed.stderr

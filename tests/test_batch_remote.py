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
    details = _job_details(ray_head, job_id)
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


# ---- Runtime environments (no cluster needed)

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_runtime_env_passes_the_checks() -> None:
    from archive_inpaint.batch.runtime_env import load_runtime_env

    environment = load_runtime_env(str(ROOT / "jobs" / "runtime_env.yaml"))
    assert any(str(spec).startswith("archive-inpaint") for spec in environment["pip"])
    assert "working_dir" not in environment
    assert environment["env_vars"]["PYTHONUNBUFFERED"] == "1"


@pytest.mark.parametrize(
    ("name", "text", "key"),
    [
        (
            "env.yaml",
            "env_vars:\n  PYTHONUNBUFFERED: '1'\n  AWS_SECRET_ACCESS_KEY: abc\n",
            "AWS_SECRET_ACCESS_KEY",
        ),
        ("env.json", json.dumps({"env_vars": {"RAY_AUTH_TOKEN": "abc"}}), "RAY_AUTH_TOKEN"),
        ("camel.yaml", "env_vars:\n  awsSessionToken: abc\n", "awsSessionToken"),
    ],
)
def test_a_secret_env_var_is_refused(tmp_path: Path, name: str, text: str, key: str) -> None:
    from archive_inpaint.batch.runtime_env import load_runtime_env

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError) as refused:
        load_runtime_env(str(path))
    message = str(refused.value)
    assert str(path) in message
    assert "looks like a secret" in message
    assert f"env_vars.{key}" in message
    assert "abc" not in message  # the error does not print the secret either


def test_harmless_names_and_a_password_in_a_url(tmp_path: Path) -> None:
    from archive_inpaint.batch.runtime_env import load_runtime_env

    harmless = tmp_path / "harmless.yaml"
    harmless.write_text("env_vars:\n  TOKENIZERS_PARALLELISM: 'false'\n  OMP_NUM_THREADS: '2'\n")
    assert load_runtime_env(str(harmless))["env_vars"]["TOKENIZERS_PARALLELISM"] == "false"
    index = tmp_path / "index.yaml"
    index.write_text(
        "pip:\n  - --index-url=https://me:hunter2@pypi.example.com/simple\n  - archive-inpaint\n"
    )
    with pytest.raises(ValueError, match=r"pip\[0\] holds a credential") as refused:
        load_runtime_env(str(index))
    assert str(index) in str(refused.value)


def test_a_big_local_working_dir_is_refused_a_remote_one_is_fine(tmp_path: Path) -> None:
    from archive_inpaint.batch.runtime_env import load_runtime_env

    media = tmp_path / "media"
    media.mkdir()
    (media / "shot.mkv").write_bytes(b"\0" * (2 * 1024 * 1024))
    local = tmp_path / "local.yaml"
    local.write_text(f"working_dir: {media}\n")
    with pytest.raises(ValueError, match="working_dir") as refused:
        load_runtime_env(str(local))
    assert str(local) in str(refused.value)
    assert "object storage" in str(refused.value)
    modules = tmp_path / "modules.yaml"
    modules.write_text(f"py_modules:\n  - {media}\n")
    with pytest.raises(ValueError, match=r"py_modules\[0\]"):
        load_runtime_env(str(modules))
    remote_zip = tmp_path / "remote.yaml"
    remote_zip.write_text("working_dir: s3://bucket/code/archive_inpaint.zip\n")
    assert load_runtime_env(str(remote_zip))["working_dir"].startswith("s3://")


def test_unknown_fields_and_bad_types_are_clear_errors(tmp_path: Path) -> None:
    from archive_inpaint.batch.runtime_env import load_runtime_env

    typo = tmp_path / "typo.yaml"
    typo.write_text("workingdir: s3://bucket/code.zip\n")
    with pytest.raises(ValueError) as refused:
        load_runtime_env(str(typo))
    assert str(typo) in str(refused.value)
    assert "unknown runtime-environment field 'workingdir'" in str(refused.value)
    assert "did you mean 'working_dir'" in str(refused.value)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"env_vars": {"OMP_NUM_THREADS": 1}}))
    with pytest.raises(ValueError, match="env_vars") as refused:
        load_runtime_env(str(wrong))
    assert str(wrong) in str(refused.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("pip: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_runtime_env(str(broken))


def test_the_entrypoint_forwards_run_wide_options_that_differ_from_the_defaults() -> None:
    from archive_inpaint.batch.options import RunOptions
    from archive_inpaint.batch.remote import RemoteRun, entrypoint

    plain = entrypoint(RemoteRun("http://head:8265", RunOptions("s3://b/m.parquet", "s3://b/out")))
    assert plain.startswith("archive-inpaint submit s3://b/m.parquet --output s3://b/out ")
    assert "--gpu-memory" not in plain and "--max-retries" not in plain
    tuned = RunOptions("s3://b/m.parquet", "s3://b/out", gpu_memory_gib=79.5, max_retries=8)
    command = entrypoint(RemoteRun("http://head:8265", tuned))
    assert "--gpu-memory 79.5" in command
    assert "--max-retries 8" in command
    assert "--vgg-weights" not in command and "--gan-weight" not in command and "--flow-estimator" not in command
    methods = RunOptions(
        "s3://b/m.parquet", "s3://b/out", vgg_weights="/models/vgg 16.pth", gan_weight=0.5, flow_estimator="farneback"
    )
    command = entrypoint(RemoteRun("http://head:8265", methods))
    assert "--vgg-weights '/models/vgg 16.pth'" in command  # quoted for the job's shell
    assert "--gan-weight 0.5" in command and "--flow-estimator farneback" in command


def test_submit_refuses_a_secret_before_contacting_the_cluster(tmp_path: Path) -> None:
    manifest = tmp_path / "shots.parquet"
    pq.write_table(pa.table({"shot_id": ["x"], "video_uri": ["v"], "mask_uri": ["m"]}), manifest)
    environment = tmp_path / "env.yaml"
    environment.write_text("env_vars:\n  AWS_SECRET_ACCESS_KEY: abc\n")
    completed = subprocess.run(
        [
            str(VENV_BIN / "archive-inpaint"), "submit", str(manifest), "--output", str(tmp_path),
            "--address", f"http://127.0.0.1:{_free_port()}", "--runtime-env", str(environment),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "AWS_SECRET_ACCESS_KEY" in completed.stderr
    assert "could not submit" not in completed.stderr  # refused before any request


# ---- Following jobs on the real head: `archive-inpaint jobs status|logs|stop|list`


def _cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    # Only what a test sets: the commands take the address from --address or this variable.
    env.pop("ARCHIVE_INPAINT_ADDRESS", None)
    return {**env, **extra}


def _jobs_command() -> list[str]:
    return [str(VENV_BIN / "archive-inpaint"), "jobs"]


def _jobs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_jobs_command(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or _cli_env(),
    )


def _submit(tmp_path: Path, name: str, address: str, *extra: str) -> str:
    """Submit a one-shot run without --wait; returns the job id (the first line of stdout)."""
    video, holes = tiny_shot(tmp_path, name)
    mask = mask_video(tmp_path / f"{name}_mask.mkv", holes)
    manifest = tmp_path / f"{name}.parquet"
    pq.write_table(
        pa.table({"shot_id": [name], "video_uri": [str(video)], "mask_uri": [str(mask)]}), manifest
    )
    completed = subprocess.run(
        [
            str(VENV_BIN / "archive-inpaint"), "submit", str(manifest),
            "--output", str(tmp_path / f"{name}_out"), "--address", address,
            "--width", "4", "--device", "cpu", *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_cli_env(),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    job_id = completed.stdout.splitlines()[0]
    assert job_id.startswith("archive-inpaint-")
    return job_id


def _status_until(
    address: str, job_id: str, wanted: set[str], seconds: float
) -> subprocess.CompletedProcess[str]:
    """Poll `jobs status` until it prints one of ``wanted``."""
    deadline = time.monotonic() + seconds
    while True:
        answer = _jobs("status", job_id, "--address", address)
        assert answer.returncode in (0, 1), answer.stderr
        status = answer.stdout.splitlines()[0]
        if status in wanted:
            return answer
        assert time.monotonic() < deadline, f"job {job_id} still {status} after {seconds} s"
        time.sleep(2)


def _job_details(address: str, job_id: str) -> dict:
    # From a fresh process: Ray fixes its authentication mode when first imported, and this test
    # process imported it before the cluster (and its token) existed.
    query = (
        "import json, sys; from archive_inpaint.batch.remote import use_token; use_token(None);"
        "from ray.job_submission import JobSubmissionClient;"
        "info = JobSubmissionClient(sys.argv[1]).get_job_info(sys.argv[2]);"
        "print(json.dumps({'metadata': info.metadata, 'runtime_env': info.runtime_env}))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", query, address, job_id], capture_output=True, text=True, timeout=60
    )
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout.strip().splitlines()[-1])


def test_follow_a_job_with_the_jobs_commands(ray_head: str, tmp_path: Path) -> None:
    environment = tmp_path / "env.yaml"
    environment.write_text("env_vars:\n  ARCHIVE_INPAINT_TEST_MARK: follow\n  PYTHONUNBUFFERED: '1'\n")
    job_id = _submit(tmp_path, "follow", ray_head, "--iterations", "3", "--runtime-env", str(environment))
    # The runtime environment reached the job as written, and nothing else did.
    details = _job_details(ray_head, job_id)
    assert details["runtime_env"]["env_vars"] == {
        "ARCHIVE_INPAINT_TEST_MARK": "follow",
        "PYTHONUNBUFFERED": "1",
    }
    assert "working_dir" not in details["runtime_env"]

    done = _status_until(ray_head, job_id, {"SUCCEEDED", "FAILED", "STOPPED"}, seconds=240)
    logs = _jobs("logs", job_id, "--address", ray_head)
    assert done.stdout.splitlines()[0] == "SUCCEEDED", done.stderr + logs.stdout
    assert done.returncode == 0
    assert "finished successfully" in done.stderr
    assert logs.returncode == 0, logs.stderr
    assert "1 succeeded" in logs.stdout
    # The path is whole on one line: the console does not wrap where its output is no terminal.
    assert f"results: {tmp_path / 'follow_out' / 'results.parquet'}" in logs.stdout.splitlines()
    assert (tmp_path / "follow_out" / "follow" / "_SUCCESS.json").is_file()
    # --follow on an ended job prints the whole log and ends with the job's status.
    followed = _jobs("logs", job_id, "--address", ray_head, "--follow")
    assert followed.returncode == 0, followed.stderr
    assert "1 succeeded" in followed.stdout
    assert "SUCCEEDED" in followed.stderr
    # The address from ARCHIVE_INPAINT_ADDRESS; a RAY_ADDRESS elsewhere does not override it.
    listed = _jobs(
        "list", env=_cli_env(ARCHIVE_INPAINT_ADDRESS=ray_head, RAY_ADDRESS=f"http://127.0.0.1:{_free_port()}")
    )
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [job_id, "SUCCEEDED"] in [row[:2] for row in rows]
    assert all(row[0].startswith("archive-inpaint-") for row in rows)


def test_stop_a_running_job(ray_head: str, tmp_path: Path) -> None:
    job_id = _submit(tmp_path, "long", ray_head, "--iterations", "100000")
    _status_until(ray_head, job_id, {"RUNNING"}, seconds=120)
    # A follower streams the running job's log and ends when the job does.
    follower = subprocess.Popen(
        [*_jobs_command(), "logs", job_id, "--address", ray_head, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_cli_env(),
    )
    try:
        time.sleep(3)
        assert follower.poll() is None, follower.communicate()
        stopped = _jobs("stop", job_id, "--address", ray_head, "--wait", "--timeout", "120")
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.splitlines()[0] == "STOPPED"
        assert "stop sent" in stopped.stderr
        followed_out, followed_err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 1, followed_err
    assert f"Running entrypoint for job {job_id}" in followed_out
    assert f"job {job_id}: STOPPED" in followed_err
    answer = _jobs("status", job_id, "--address", ray_head)
    assert answer.returncode == 1
    assert answer.stdout.splitlines()[0] == "STOPPED"
    # Stopping an ended job sends nothing and says so.
    again = _jobs("stop", job_id, "--address", ray_head)
    assert again.returncode == 0
    assert "was not running" in again.stderr


def test_an_unknown_job_or_an_unreachable_cluster_is_a_clear_error(ray_head: str) -> None:
    for command in ("status", "logs", "stop"):
        answer = _jobs(command, "archive-inpaint-no-such-job", "--address", ray_head)
        assert answer.returncode == 2, (command, answer.stdout, answer.stderr)
        assert "no job 'archive-inpaint-no-such-job'" in answer.stderr
        assert "Traceback" not in answer.stderr
    refused = _jobs("list", "--address", ray_head, "--token", "not-the-token")
    assert refused.returncode == 2
    assert f"{ray_head} refused the request" in refused.stderr
    assert "Traceback" not in refused.stderr
    unreachable = _jobs("list", "--address", f"http://127.0.0.1:{_free_port()}")
    assert unreachable.returncode == 2
    assert "cannot reach the Ray dashboard" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr

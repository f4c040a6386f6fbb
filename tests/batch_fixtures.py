"""Fixtures for the batch tests: a real S3 API (moto's threaded server on 127.0.0.1), a real local
Ray cluster, and tiny real media written with archive_inpaint.media.

Imported into the test modules (pytest finds fixtures in module globals), like engine_fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import re

import cv2
import numpy as np
import pytest
import ray
import requests
import s3fs
from engine_fixtures import moving_texture
from typer.testing import CliRunner, Result

from archive_inpaint.cli import app
from archive_inpaint.media import write_frames

T, H, W = 5, 24, 32
FPS = Fraction(24)
# Distinctive test credentials, so the tests can prove they never leak into outputs.
ACCESS_KEY = "AKIATESTKEYARCHIVE01"
SECRET_KEY = "archive-inpaint-test-secret-9f3c1d"
BUCKET = "archive-inpaint-test"
TINY = ["--iterations", "3", "--width", "4", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # The standard AWS environment: the product passes nothing explicitly, and Ray workers
    # started after this inherit it.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        yield endpoint
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> Iterator[s3fs.S3FileSystem]:
    """A fresh, empty bucket (moto's reset wipes all state) and an uncached client for it."""
    requests.post(f"{s3_endpoint}/moto-api/reset", timeout=10)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(use_listings_cache=False, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    yield fs


@pytest.fixture(scope="module")
def ray_cluster(s3_endpoint: str) -> Iterator[None]:
    """One local cluster for the module (starting Ray costs seconds); the runner reuses it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def tiny_shot(folder: Path, name: str, *, seed: int = 0) -> tuple[Path, np.ndarray]:
    """A 5-frame 32x24 FFV1 shot and its (T, H, W) hole: a box drifting right."""
    frames = moving_texture(T, H, W, seed=seed)
    holes = np.zeros((T, H, W), bool)
    for t in range(T):
        holes[t, 8:14, 6 + 2 * t : 14 + 2 * t] = True
    return write_frames(frames, FPS, folder / f"{name}.mkv"), holes


def mask_video(path: Path, holes: np.ndarray) -> Path:
    pixels = np.repeat(holes[..., None], 3, axis=3).astype(np.uint8) * 255
    return write_frames(pixels, FPS, path)


def mask_folder(folder: Path, holes: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t, hole in enumerate(holes):
        cv2.imwrite(str(folder / f"mask_{t:04d}.png"), hole.astype(np.uint8) * 255)
    return folder


def mask_image(path: Path, height: int = H, width: int = W) -> Path:
    hole = np.zeros((height, width), np.uint8)
    hole[height // 3 : height // 2, width // 4 : width // 2] = 255
    cv2.imwrite(str(path), hole)
    return path


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def invoke(*args: object) -> Result:
    """Run the CLI in-process with a wide, colourless terminal (no wrapping in assertions)."""
    return CliRunner().invoke(
        app, [str(a) for a in args], env={"COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
    )


def text(result: Result) -> str:
    return " ".join(_ANSI.sub("", result.output).split())

"""Media fixtures: small real files encoded with PyAV/OpenCV in tmp_path.

The encoders here deliberately use PyAV directly rather than
archive_inpaint.media.write_frames, so reader tests do not depend on the
writer being correct.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import av.video.stream
import cv2
import numpy as np
import pytest

HEIGHT, WIDTH = 24, 32

EncodeVideo = Callable[..., Path]


def _encode(
    path: Path,
    frames: np.ndarray,
    fps: Fraction,
    *,
    codec: str,
    pix_fmt: str,
    in_format: str,
    options: dict[str, str] | None = None,
    container_format: str | None = None,
) -> Path:
    height, width = frames.shape[1:3]
    time_base = Fraction(fps.denominator, fps.numerator)
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = time_base
        stream.options = dict(options or {})
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=in_format)
            frame.pts, frame.time_base = index, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture
def make_ffv1_video() -> EncodeVideo:
    """Lossless RGB FFV1/MKV from (T, H, W, 3) uint8 frames."""

    def make(path: Path, frames: np.ndarray, fps: Fraction = Fraction(25)) -> Path:
        return _encode(path, frames, fps, codec="ffv1", pix_fmt="bgr0", in_format="rgb24")

    return make


@pytest.fixture
def make_gray_video() -> EncodeVideo:
    """Lossless single-channel FFV1/MKV mask video from (T, H, W) uint8 frames."""

    def make(path: Path, frames: np.ndarray, fps: Fraction = Fraction(25)) -> Path:
        return _encode(path, frames, fps, codec="ffv1", pix_fmt="gray", in_format="gray")

    return make


@pytest.fixture
def make_h264_video() -> EncodeVideo:
    """Lossy H.264 MP4 (what a typical delivered clip looks like)."""

    def make(path: Path, frames: np.ndarray, fps: Fraction = Fraction(25)) -> Path:
        return _encode(path, frames, fps, codec="libx264", pix_fmt="yuv420p", in_format="rgb24")

    return make


@pytest.fixture
def make_10bit_video() -> EncodeVideo:
    """FFV1 in 10-bit YUV 4:4:4, to check that >8-bit sources decode to uint16."""

    def make(path: Path, frames: np.ndarray, fps: Fraction = Fraction(25)) -> Path:
        return _encode(
            path, frames, fps, codec="ffv1", pix_fmt="yuv444p10le", in_format="rgb48le"
        )

    return make


@pytest.fixture
def ramp_frames() -> Callable[[int], np.ndarray]:
    """Frames whose every pixel of frame i equals i: identifies frames after decoding."""

    def make(count: int) -> np.ndarray:
        values = np.arange(count, dtype=np.uint8)[:, None, None, None]
        return np.broadcast_to(values, (count, HEIGHT, WIDTH, 3)).copy()

    return make


@pytest.fixture
def write_images() -> Callable[[Path, np.ndarray, str], list[Path]]:
    """Write RGB (or 2-D gray) images as name_<i><suffix> files with OpenCV."""

    def make(folder: Path, images: np.ndarray, suffix: str = ".png") -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, image in enumerate(images):
            path = folder / f"frame{index}{suffix}"
            stored = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            assert cv2.imwrite(str(path), stored)
            paths.append(path)
        return paths

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ---- Process exit -------------------------------------------------------------------------------
# The suite loads Ray's core worker, PyTorch's OpenMP pool and FFmpeg's codec threads into one
# process. After a full run, the interpreter's own teardown of those native libraries crashed once
# (SIGSEGV after "306 passed"), turning a green run red. Nothing is left to check by then, so the
# process ends right after pytest's summary with pytest's own exit status.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _EXIT_STATUS and not hasattr(config, "workerinput"):
        import os
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])

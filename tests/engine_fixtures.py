"""Helpers and fixtures shared by the engine and CLI tests (model, training, inference, CLI).

Kept apart from conftest.py (the media layer's fixtures) so the two suites can evolve separately.
Test modules import what they need from here; fixtures are re-exported into a module's namespace by
importing them (pytest discovers fixtures in module globals).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from archive_inpaint.config import (
    IIVIConfig,
    InferenceConfig,
    MaskPropagationConfig,
    ProgressiveConfig,
    TrainConfig,
)
from archive_inpaint.models.iivi_net import IIVINetConfig
from archive_inpaint.models.mask_net import MaskNetConfig

FOOTAGE = Path(__file__).resolve().parents[1].parent / "shared" / "footage"
CPU = torch.device("cpu")


@pytest.fixture
def single_thread() -> Iterator[None]:
    """One intra-op thread: deterministic and cheap on a loaded 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def tiny_config(
    iterations: int,
    *,
    width: int = 4,
    batch_size: int = 2,
    seed: int = 0,
    learning_rate: float = 2e-4,
    working_long_side: int = 320,
    checkpoint_every: int = 1000,
    keep_checkpoints: int = 2,
    use_refine: bool = True,
    progressive: ProgressiveConfig | None = None,
) -> IIVIConfig:
    """A CPU-seconds config; whole-frame only unless a ``progressive`` config is given."""
    return IIVIConfig(
        mask_propagation=MaskPropagationConfig(model=MaskNetConfig(width=4, depth=2), iterations=20),
        progressive=progressive if progressive is not None else ProgressiveConfig(max_stages=1),
        model=IIVINetConfig(width=width, use_refine=use_refine),
        train=TrainConfig(
            iterations=iterations,
            batch_size=batch_size,
            learning_rate=learning_rate,
            working_long_side=working_long_side,
            seed=seed,
            checkpoint_every=checkpoint_every,
            keep_checkpoints=keep_checkpoints,
        ),
        inference=InferenceConfig(batch_size=4),
    )


def moving_texture(
    num_frames: int,
    height: int,
    width: int,
    *,
    dtype: type = np.uint8,
    seed: int = 0,
    velocity: tuple[int, int] = (1, 2),
) -> np.ndarray:
    """(T, H, W, 3) frames of a smooth random texture panning by ``velocity`` px per frame,
    with some fine grain: content recurs across frames, as in a real camera pan."""
    rng = np.random.default_rng(seed)
    dy, dx = velocity
    big_h = height + abs(dy) * num_frames + 4
    big_w = width + abs(dx) * num_frames + 4
    coarse = rng.random((big_h // 4 + 2, big_w // 4 + 2, 3)).astype(np.float32)
    texture = cv2.resize(coarse, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    texture = 0.85 * np.clip(texture, 0.0, 1.0) + 0.15 * rng.random(texture.shape)
    frames = []
    for t in range(num_frames):
        y0 = t * dy if dy >= 0 else big_h - height + t * dy
        x0 = t * dx if dx >= 0 else big_w - width + t * dx
        frames.append(texture[y0 : y0 + height, x0 : x0 + width])
    peak = np.iinfo(dtype).max
    return np.round(np.stack(frames) * peak).astype(dtype)


def moving_box_holes(
    num_frames: int,
    height: int,
    width: int,
    box: tuple[int, int] = (6, 8),
    empty: tuple[int, ...] = (),
) -> np.ndarray:
    """(T, H, W) bool: a box hole that moves a little every frame; frames in ``empty`` have none."""
    holes = np.zeros((num_frames, height, width), dtype=bool)
    box_h, box_w = box
    for t in range(num_frames):
        if t in empty:
            continue
        y = (3 + t) % (height - box_h)
        x = (4 + 2 * t) % (width - box_w)
        holes[t, y : y + box_h, x : x + box_w] = True
    return holes


def carphone_clip(num_frames: int = 8, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    """The first frames of ../shared/footage/carphone.mp4 downscaled to ``size`` (w, h); skips
    the test when the shared footage is not there."""
    path = FOOTAGE / "carphone.mp4"
    if not path.is_file():
        pytest.skip(f"shared footage not available ({path})")
    from archive_inpaint.media import read_frames

    video = read_frames(path, end=num_frames)
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in video.frames])


def write_gray_video(path: Path, masks: np.ndarray, fps: Fraction) -> Path:
    """Lossless single-channel FFV1/MKV from (T, H, W) bool or uint8 masks, via PyAV directly."""
    frames = masks.astype(np.uint8) * 255 if masks.dtype == bool else masks
    time_base = Fraction(fps.denominator, fps.numerator)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "gray"
        stream.time_base = time_base
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="gray")
            frame.pts, frame.time_base = index, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_empty_video(path: Path, height: int, width: int, fps: Fraction) -> Path:
    """A well-formed container with an FFV1 video stream and no frames at all.

    Use an .avi path: an empty Matroska file cannot even be reopened by FFmpeg (EOF at open),
    whereas an empty AVI opens and declares its video stream, so it tests "no frames" proper.
    """
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        # PyAV writes the header lazily at the first packet; with none, force it.
        container.start_encoding()
        for packet in stream.encode(None):
            container.mux(packet)
    with av.open(str(path)) as check:
        assert len(check.streams.video) == 1
    return path


def state_dicts_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

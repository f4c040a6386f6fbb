"""Side-by-side preview: a small H.264 MP4 of before | after for quick review.

The lossless masters are too large to scrub through in a browser or a
review tool; this preview plays anywhere and shows both versions in sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from archive_inpaint.media.atomic import atomic_file
from archive_inpaint.media.encoders import encode_video
from archive_inpaint.media.errors import MediaError, quote
from archive_inpaint.media.frame_store import Frames
from archive_inpaint.media.pixels import to_uint8
from archive_inpaint.media.rates import require_fps


def write_side_by_side_preview(
    before: Frames,
    after: Frames,
    fps: Fraction,
    path: str | Path,
    max_height: int = 360,
    max_frames: int = 240,
) -> Path:
    """Write an MP4 of the first `max_frames` frames, before on the left, after on the right.

    Each side is scaled down (never up) to at most `max_height` rows, with
    even dimensions so the video can use 4:2:0 chroma, which every player
    decodes.  Frames are converted one at a time as the encoder asks for them.
    """
    rate = require_fps(fps)
    if before.ndim != 4 or before.shape[3] != 3 or before.shape[0] == 0:
        raise ValueError(f"before must have shape (T, H, W, 3) with T > 0, got {before.shape}")
    if after.shape != before.shape:
        raise ValueError(f"after has shape {after.shape} but before has {before.shape}")
    if max_height < 2 or max_frames < 1:
        raise ValueError("max_height must be at least 2 and max_frames at least 1")
    frames = SideBySide(before, after, preview_size(before.shape[1:3], max_height), max_frames)
    target = Path(path)
    with atomic_file(target) as temp:
        try:
            encode_video(frames, rate, temp, container_format="mp4", lossless=False)
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"could not write preview {quote(target)}: {exc}") from exc
    return target


def preview_size(frame_hw: tuple[int, int], max_height: int) -> tuple[int, int]:
    """(width, height) of one side: scaled to fit `max_height`, both even and >= 2."""
    height, width = frame_hw
    scale = min(1.0, max_height / height)
    return _even(width * scale), _even(height * scale)


def _even(length: float) -> int:
    # Round down to even: rounding up could exceed max_height by one row.
    return max(2, int(round(length)) // 2 * 2)


class SideBySide:
    """A lazy (T, H, 2W, 3) uint8 clip: just what encode_video reads (shape, dtype, iteration)."""

    def __init__(
        self, before: Frames, after: Frames, side_size: tuple[int, int], max_frames: int
    ) -> None:
        self._before, self._after = before, after
        self._size = side_size
        count = min(max_frames, before.shape[0])
        self.shape = (count, side_size[1], 2 * side_size[0], 3)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(self.shape[0]):
            yield np.hstack([self._side(self._before[index]), self._side(self._after[index])])

    def _side(self, frame: np.ndarray) -> np.ndarray:
        image = np.ascontiguousarray(to_uint8(np.asarray(frame)))
        if (image.shape[1], image.shape[0]) == self._size:
            return image
        # INTER_AREA for downscaling (no aliasing); the odd-to-even trim of an
        # unscaled side is a sub-pixel change either way.
        return cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)

"""Reading frames from a video container or a folder of still images."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .decode import RGB_FORMATS, decode_range, open_video, stream_rate
from .errors import MediaError, quote
from .images import is_image_file, list_images, read_image_raw, to_rgb
from .masks import read_masks
from .ranges import check_range_args, check_range_in_file
from .rates import require_fps

__all__ = ["DEFAULT_IMAGE_FPS", "FrameSequence", "read_frames", "read_masks"]

# Still images carry no timing; 24 is the film rate most scanned archives use.
DEFAULT_IMAGE_FPS = Fraction(24)


# eq=False: the generated __eq__ would compare ndarrays with `==` and raise
# "truth value of an array is ambiguous"; identity semantics are what we want.
@dataclass(frozen=True, eq=False)
class FrameSequence:
    """Decoded frames (T, H, W, 3) RGB, uint8 (bit_depth 8) or uint16 (bit_depth 16)."""

    frames: np.ndarray
    fps: Fraction
    path: str
    bit_depth: int

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[3] != 3:
            raise ValueError(f"frames must have shape (T, H, W, 3), got {self.frames.shape}")
        expected = {8: np.uint8, 16: np.uint16}.get(self.bit_depth)
        if expected is None or self.frames.dtype != expected:
            raise ValueError(
                f"bit_depth {self.bit_depth} does not match frames dtype {self.frames.dtype}"
            )
        require_fps(self.fps)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


def read_frames(
    path: str | Path,
    start: int = 0,
    end: int | None = None,
    fps: Fraction | None = None,
) -> FrameSequence:
    """Read frames [start, end) of a video file, an image folder or a single image.

    For videos `fps` is optional and, when given, must equal the file's rate;
    for images (which have no timing) it sets the rate, default 24.
    """
    label = f"video {quote(path)}"
    check_range_args(start, end, label)
    requested = require_fps(fps) if fps is not None else None
    source = Path(path)
    if not source.exists():
        raise MediaError(f"file not found: {quote(path)}")
    if source.is_dir():
        files = list_images(source)
        if not files:
            raise MediaError(f"{label} contains no frames (no PNG, TIFF or JPEG images)")
    elif is_image_file(source):
        files = [source]
    else:
        return _read_video(source, str(path), label, start, end, requested)
    check_range_in_file(len(files), start, end, label)
    frames = _read_images(files[start:end], label)
    bit_depth = 16 if frames.dtype == np.uint16 else 8
    rate = requested if requested is not None else DEFAULT_IMAGE_FPS
    return FrameSequence(frames=frames, fps=rate, path=str(path), bit_depth=bit_depth)


def _read_video(
    source: Path,
    path: str,
    label: str,
    start: int,
    end: int | None,
    requested: Fraction | None,
) -> FrameSequence:
    with open_video(source, label) as (container, stream):
        rate = stream_rate(stream, label)
        if requested is not None and requested != rate:
            raise MediaError(f"{label} has fps {rate} but fps {requested} was requested")
        decoded = decode_range(
            container, stream, label=label, start=start, end=end, formats=RGB_FORMATS
        )
    # frames_seen is the file's length whenever the file ended before `end`,
    # which is exactly when the range checks below can fail.
    check_range_in_file(decoded.frames_seen, start, end, label)
    frames = np.stack(decoded.arrays)
    return FrameSequence(frames=frames, fps=rate, path=path, bit_depth=decoded.bit_depth)


def _read_images(files: list[Path], label: str) -> np.ndarray:
    """Read same-sized, same-depth images into one preallocated (T, H, W, 3) array."""
    first = to_rgb(read_image_raw(files[0], "image"))
    # Preallocating avoids holding every frame twice (list + stacked copy).
    frames = np.empty((len(files), *first.shape), dtype=first.dtype)
    frames[0] = first
    for index, file in enumerate(files[1:], start=1):
        image = to_rgb(read_image_raw(file, "image"))
        if image.shape != first.shape:
            raise MediaError(
                f"image {quote(file)} in {label} is {image.shape[1]}x{image.shape[0]} "
                f"but {quote(files[0])} is {first.shape[1]}x{first.shape[0]}"
            )
        if image.dtype != first.dtype:
            raise MediaError(
                f"image {quote(file)} in {label} is {_depth(image)}-bit "
                f"but {quote(files[0])} is {_depth(first)}-bit"
            )
        frames[index] = image
    return frames


def _depth(image: np.ndarray) -> int:
    return 16 if image.dtype == np.uint16 else 8

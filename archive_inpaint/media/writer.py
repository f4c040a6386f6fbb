"""Writing frames as lossless masters, previews or image sequences."""

from __future__ import annotations

from enum import Enum
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .atomic import atomic_directory, atomic_file
from .encoders import encode_video, write_image_sequence
from .errors import MediaError, quote
from .frame_store import Frames, FrameStore
from .rates import require_fps


class OutputKind(str, Enum):
    FFV1_MKV = "ffv1"  # lossless archival master
    H264 = "h264"  # lossy, small, plays anywhere: for review only
    PNG_SEQUENCE = "png"
    TIFF_SEQUENCE = "tiff"


_KIND_BY_SUFFIX = {
    ".mkv": OutputKind.FFV1_MKV,
    ".mp4": OutputKind.H264,
    ".mov": OutputKind.H264,
}
_CONTAINER_BY_SUFFIX = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov"}
_SEQUENCE_SUFFIX = {OutputKind.PNG_SEQUENCE: ".png", OutputKind.TIFF_SEQUENCE: ".tiff"}


def output_kind_for(path: str | Path, explicit: str | None = None) -> OutputKind:
    """Choose the output kind: `explicit` if given, else from the path's suffix.

    .mkv -> FFV1, .mp4/.mov -> H.264, no suffix -> PNG sequence directory.
    """
    if explicit is not None:
        try:
            return OutputKind(explicit)
        except ValueError:
            choices = ", ".join(kind.value for kind in OutputKind)
            raise MediaError(
                f"unknown output kind {explicit!r} for {quote(path)}; choose one of {choices}"
            ) from None
    suffix = Path(path).suffix.lower()
    if not suffix:
        return OutputKind.PNG_SEQUENCE
    kind = _KIND_BY_SUFFIX.get(suffix)
    if kind is None:
        raise MediaError(
            f"cannot tell the output kind of {quote(path)} from its suffix {suffix!r}: "
            "use .mkv (lossless FFV1), .mp4/.mov (H.264 preview), "
            "or a path without suffix (PNG sequence directory)"
        )
    return kind


def write_frames(
    frames: Frames,
    fps: Fraction,
    path: str | Path,
    kind: OutputKind | None = None,
) -> Path:
    """Write (T, H, W, 3) RGB uint8/uint16 frames atomically; return the output path.

    `frames` is an array or a FrameStore; a store is encoded one frame at a
    time, so writing a shot never needs it all in memory.

    Video outputs keep the frame count and exact rational `fps`.  Image
    sequences carry no timing, so `fps` is only validated for them.
    """
    target = Path(path)
    rate = require_fps(fps)
    # OutputKind is a str enum, so a plain 'ffv1' from a CLI works here too.
    chosen = output_kind_for(target, kind)
    _check_frames(frames, target)
    if chosen in _SEQUENCE_SUFFIX:
        with atomic_directory(target) as temp_dir:
            write_image_sequence(frames, temp_dir, _SEQUENCE_SUFFIX[chosen])
        return target
    container_format = _CONTAINER_BY_SUFFIX.get(target.suffix.lower())
    if container_format is None:
        raise MediaError(
            f"cannot write {chosen.value} video to {quote(target)}: "
            "the path needs a .mkv, .mp4 or .mov suffix"
        )
    with atomic_file(target) as temp_file:
        try:
            encode_video(
                frames,
                rate,
                temp_file,
                container_format=container_format,
                lossless=chosen is OutputKind.FFV1_MKV,
            )
        except (av.FFmpegError, ValueError) as exc:
            if isinstance(exc, MediaError):
                raise
            raise MediaError(f"could not write {quote(target)} as {chosen.value}: {exc}") from exc
    return target


def _check_frames(frames: Frames, target: Path) -> None:
    if not isinstance(frames, (np.ndarray, FrameStore)):
        raise MediaError(
            f"cannot write {quote(target)}: frames must be a numpy array or a FrameStore"
        )
    if frames.ndim != 4 or frames.shape[3] != 3 or 0 in frames.shape:
        raise MediaError(
            f"cannot write {quote(target)}: frames must have shape (T, H, W, 3) "
            f"with T, H, W > 0, got {frames.shape}"
        )
    if frames.dtype not in (np.uint8, np.uint16):
        raise MediaError(
            f"cannot write {quote(target)}: frames must be uint8 or uint16, got {frames.dtype}"
        )

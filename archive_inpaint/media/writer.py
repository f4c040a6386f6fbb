"""Writing RGB frames as lossless masters, proxies or image sequences (no source to copy from).

This is the path for frames the tool makes itself (predicted masks, benchmark renders); a shot's
output goes through master.write_master, which also carries the source's untouched samples,
audio, timecode and colour tags.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import MediaError, quote
from .frame_store import Frames, FrameStore
from .kinds import OutputKind, output_kind_for
from .master import Timing, write_master
from .rates import require_fps

__all__ = ["OutputKind", "output_kind_for", "write_frames"]


def write_frames(
    frames: Frames,
    fps: Fraction,
    path: str | Path,
    kind: OutputKind | str | None = None,
) -> Path:
    """Write (T, H, W, 3) RGB uint8/uint16 frames atomically; return the output path.

    `frames` is an array or a FrameStore; a store is encoded one frame at a
    time, so writing a shot never needs it all in memory.  The kind is `kind`
    if given, else the path's suffix (.mkv FFV1, .mp4/.mov H.264, none: PNG
    sequence folder).

    Video outputs keep the frame count and exact rational `fps`.  Image
    sequences carry no timing, so `fps` is only validated for them.
    """
    target = Path(path)
    rate = require_fps(fps)
    chosen = output_kind_for(target, kind)
    _check_frames(frames, target)
    return write_master(frames, Timing(rate), target, chosen).path


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

"""Media I/O: decode videos/image folders and masks, encode outputs atomically.

Conventions shared with the rest of archive-inpaint: frames are (T, H, W, 3)
RGB uint8/uint16, masks are (T, H, W) bool with True = hole, fps is an exact
fractions.Fraction, and frame ranges are [start, end) in file numbering.

Shots too large for memory are read into a FrameStore instead
(read_frames_to_store, read_masks_to_store: masks there are (T, H, W, 1)),
which write_frames accepts in place of an array.
"""

from .errors import MediaError
from .frame_store import DEFAULT_IN_MEMORY_LIMIT, FrameStore
from .reader import (
    FrameSequence,
    StoredFrames,
    read_frames,
    read_frames_to_store,
    read_masks,
    read_masks_to_store,
)
from .writer import OutputKind, output_kind_for, write_frames

__all__ = [
    "DEFAULT_IN_MEMORY_LIMIT",
    "FrameSequence",
    "FrameStore",
    "MediaError",
    "OutputKind",
    "StoredFrames",
    "output_kind_for",
    "read_frames",
    "read_frames_to_store",
    "read_masks",
    "read_masks_to_store",
    "write_frames",
]

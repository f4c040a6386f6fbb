"""Media I/O: decode videos/image folders and masks, encode outputs atomically.

Conventions shared with the rest of archive-inpaint: frames are (T, H, W, 3)
RGB uint8/uint16, masks are (T, H, W) bool with True = hole, fps is an exact
fractions.Fraction, and frame ranges are [start, end) in file numbering.
"""

from .errors import MediaError
from .reader import FrameSequence, read_frames, read_masks
from .writer import OutputKind, output_kind_for, write_frames

__all__ = [
    "FrameSequence",
    "MediaError",
    "OutputKind",
    "output_kind_for",
    "read_frames",
    "read_masks",
    "write_frames",
]

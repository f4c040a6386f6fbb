"""Static box masks: rectangles that are a hole in every frame of a shot.

Dashcam and surveillance footage carries burnt-in timestamps and logos at a fixed place, so
the hole is a few rectangles given on the command line ("x,y,w,h;x,y,w,h") rather than a mask
file. Coordinates are pixels of the frame, (x, y) its top-left corner, width and height > 0.
A box must lie wholly inside the frame: clipping one that does not would silently hide a typo
(e.g. a box meant for a 1920-wide frame used on a 1280-wide one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .errors import MediaError

# One box field: an unsigned or signed decimal integer (a sign is accepted only so that a
# negative value gets its own message instead of a generic "not a number").
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FIELDS = ("x", "y", "width", "height")


def _range_problem(x: int, y: int, width: int, height: int) -> str | None:
    """Why these values are no box, or None."""
    if x < 0 or y < 0:
        return f"x and y must be >= 0 (got x={x}, y={y})"
    if width <= 0 or height <= 0:
        return f"width and height must be > 0 (got width={width}, height={height})"
    return None


@dataclass(frozen=True)
class Box:
    """A rectangle in frame pixels: columns [x, x + width), rows [y, y + height)."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        problem = _range_problem(self.x, self.y, self.width, self.height)
        if problem:
            raise ValueError(f"box {self}: {problem}")

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def __str__(self) -> str:
        # The same text parse_box reads, so messages show what the user typed.
        return f"{self.x},{self.y},{self.width},{self.height}"


def parse_box(text: str) -> Box:
    """``"x,y,w,h"`` (whitespace around the numbers tolerated) -> Box; ValueError quoting the
    text when it is not four integers with x, y >= 0 and w, h > 0."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != len(_FIELDS):
        raise ValueError(f"box {text!r}: expected 4 integers 'x,y,width,height', got {len(parts)} field(s)")
    values = []
    for name, part in zip(_FIELDS, parts):
        if not _INTEGER.fullmatch(part):
            raise ValueError(f"box {text!r}: {name} {part!r} is not an integer (expected 'x,y,width,height')")
        values.append(int(part))
    problem = _range_problem(*values)
    if problem:
        raise ValueError(f"box {text!r}: {problem}")
    return Box(*values)


def parse_boxes(text: str | None) -> tuple[Box, ...]:
    """Several boxes separated by ';' -> Boxes in order; None or blank text -> (). Empty
    segments (a trailing ';') are ignored, as a shell-quoted list often ends with one."""
    if text is None:
        return ()
    return tuple(parse_box(part) for part in text.split(";") if part.strip())


def format_boxes(boxes: Iterable[Box]) -> str:
    """The text ``parse_boxes`` reads back as the same boxes."""
    return ";".join(str(box) for box in boxes)


def check_boxes_fit(boxes: Iterable[Box], height: int, width: int, label: str) -> None:
    """MediaError naming ``label`` (e.g. "video 'a.mkv'") and the box when a box is not wholly
    inside a ``width`` x ``height`` frame."""
    for box in boxes:
        overhang = []
        if box.right > width:
            overhang.append(f"its right edge x+width={box.right} is past the width {width}")
        if box.bottom > height:
            overhang.append(f"its bottom edge y+height={box.bottom} is past the height {height}")
        if overhang:
            raise MediaError(
                f"box {box} (x,y,width,height) does not fit the {width}x{height} frames of "
                f"{label}: {' and '.join(overhang)}"
            )


def box_mask(boxes: Iterable[Box], height: int, width: int) -> np.ndarray:
    """(height, width) bool, True inside any of ``boxes``. Boxes must fit the frame (MediaError
    otherwise): slicing would clip them silently."""
    boxes = tuple(boxes)
    check_boxes_fit(boxes, height, width, label=f"a {width}x{height} mask")
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        mask[box.y : box.bottom, box.x : box.right] = True
    return mask

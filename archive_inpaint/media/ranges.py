"""Validation of [start, end) frame ranges, shared by frame and mask readers."""

from __future__ import annotations

import numbers

from .errors import MediaError


def check_range_args(start: int, end: int | None, label: str) -> None:
    """Reject ranges that cannot select anything, before touching the file."""
    if isinstance(start, bool) or not isinstance(start, numbers.Integral) or start < 0:
        raise MediaError(f"invalid range start {start!r} for {label}: must be an int >= 0")
    if end is None:
        return
    if isinstance(end, bool) or not isinstance(end, numbers.Integral) or end <= start:
        raise MediaError(
            f"invalid range {start}..{end!r} for {label}: end must be an int > start"
        )


def check_range_in_file(total: int, start: int, end: int | None, label: str) -> None:
    """Reject ranges that reach past the last frame of a file with `total` frames.

    An end past the file is an error rather than being clipped: silently
    returning fewer frames than requested would shift everything downstream.
    """
    if total == 0:
        raise MediaError(f"{label} contains no frames")
    if start >= total:
        raise MediaError(
            f"{label} has {total} frames; range start {start} is beyond its last frame"
        )
    if end is not None and end > total:
        raise MediaError(f"{label} has {total} frames; range end {end} is beyond its end")

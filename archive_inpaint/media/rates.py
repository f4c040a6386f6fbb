"""Frame-rate handling: exact Fractions in, exact Fractions out.

Frame rates are kept as Fractions end to end because 30000/1001 as a float
drifts by a frame within minutes, which breaks mask/video alignment.
"""

from __future__ import annotations

import numbers
from fractions import Fraction

# Matroska stores frame durations in nanoseconds and FFmpeg's demuxer turns them
# back into a rate with numerator and denominator capped at 30000, so e.g.
# 60000/1001 written to MKV reads back as 19001/317.  Our writer stores the exact
# rate in this stream tag; the reader trusts it only if it agrees with the
# container's own rate (a remuxed file could carry a stale tag).
FPS_TAG = "ARCHIVE_INPAINT_FPS"

# The NTSC-family rates that millisecond/nanosecond time bases cannot represent.
# A rate that a container could only store approximately and that lies within
# RATE_TOLERANCE of one of these is taken to be that rate; no real footage runs
# at 19001/317 fps.
_NTSC_RATES: tuple[Fraction, ...] = tuple(
    Fraction(base * 1000, 1001) for base in (24, 30, 48, 60, 120, 240)
)
RATE_TOLERANCE = Fraction(1, 100_000)


def require_fps(fps: object, what: str = "fps") -> Fraction:
    """Validate a caller-supplied rate: an exact positive rational, never a float."""
    if isinstance(fps, bool) or not isinstance(fps, (Fraction, numbers.Integral)):
        raise TypeError(f"{what} must be a fractions.Fraction (or int), got {fps!r}")
    value = Fraction(fps)
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {value}")
    return value


def _close(a: Fraction, b: Fraction) -> bool:
    return abs(a - b) <= RATE_TOLERANCE * b


def refine_rate(
    container_rate: Fraction, tagged: str | None, time_base: Fraction | None
) -> Fraction:
    """Recover the exact rate from what a container could store.

    `tagged` is our writer's exact-rate tag, if any.  Snapping to an NTSC rate
    only happens when the container rate is not a whole number of `time_base`
    ticks per frame: then it is a rounded approximation (MKV's 1 ms ticks),
    whereas e.g. an MP4 at exactly 2997/125 fps states its rate exactly and
    must not be turned into 24000/1001.
    """
    if tagged is not None:
        try:
            exact = Fraction(tagged)
        except (ValueError, ZeroDivisionError):
            exact = None
        if exact is not None and exact > 0 and _close(container_rate, exact):
            return exact
    if time_base is not None and (1 / (container_rate * time_base)).denominator == 1:
        return container_rate
    for candidate in _NTSC_RATES:
        if _close(container_rate, candidate):
            return candidate
    return container_rate


# A rate a file states as a decimal (a DPX header's 32-bit float, often rounded by the tool that
# wrote it: "23.98", "29.97") within this share of a whole or NTSC rate is that rate.
STATED_RATE_TOLERANCE = Fraction(1, 2000)


def stated_rate(value: Fraction) -> Fraction:
    """The exact rate behind a decimal one: 23.976 or 23.98 -> 24000/1001, 25.0 -> 25; a rate
    near neither is kept as it is."""
    for candidate in (Fraction(round(value)), *_NTSC_RATES):
        if candidate > 0 and abs(value - candidate) <= STATED_RATE_TOLERANCE * candidate:
            return candidate
    return value

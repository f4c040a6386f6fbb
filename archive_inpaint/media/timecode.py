"""SMPTE start timecodes: read from a container, moved by a frame offset, written back.

A shot cut from a reel starts at the reel's timecode plus the range's first frame, so an output
of frames [start, end) must carry ``timecode + start``, or the conform in the edit suite lands on
the wrong frames.  Drop-frame timecode (``;`` before the frames, the 30000/1001 and 60000/1001
broadcast rates) skips frame numbers 0 and 1 (0-3 at 60) of every minute except each tenth, so
it is converted through a plain frame count rather than added field by field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_PATTERN = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


@dataclass(frozen=True)
class Timecode:
    hours: int
    minutes: int
    seconds: int
    frames: int
    drop_frame: bool

    def __str__(self) -> str:
        separator = ";" if self.drop_frame else ":"
        return f"{self.hours:02d}:{self.minutes:02d}:{self.seconds:02d}{separator}{self.frames:02d}"


def parse_timecode(text: str) -> Timecode:
    match = _PATTERN.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a timecode (HH:MM:SS:FF or HH:MM:SS;FF)")
    hours, minutes, seconds, separator, frames = match.groups()
    return Timecode(int(hours), int(minutes), int(seconds), int(frames), separator in ";,")


def timecode_base(fps: Fraction) -> int:
    """Frames per timecode second: the nominal rate (24 for 24000/1001, 30 for 30000/1001)."""
    return max(1, round(fps))


def _drop_per_minute(base: int) -> int:
    return 2 * (base // 30)  # 2 at 30 fps, 4 at 60 fps


def to_frame_count(code: Timecode, fps: Fraction) -> int:
    """The frame number a timecode labels, counted from 00:00:00:00."""
    base = timecode_base(fps)
    if code.frames >= base:
        raise ValueError(f"timecode {code} has frame {code.frames} but runs at {base} frames/s")
    total_minutes = 60 * code.hours + code.minutes
    count = (3600 * code.hours + 60 * code.minutes + code.seconds) * base + code.frames
    if code.drop_frame:
        count -= _drop_per_minute(base) * (total_minutes - total_minutes // 10)
    return count


def from_frame_count(count: int, fps: Fraction, drop_frame: bool) -> Timecode:
    """The timecode labelling frame ``count`` (wrapping at 24 hours, as timecode does)."""
    base = timecode_base(fps)
    drop = _drop_per_minute(base) if drop_frame else 0
    if drop:
        per_ten_minutes = 600 * base - 9 * drop
        per_minute = 60 * base - drop
        tens, rest = divmod(count, per_ten_minutes)
        # The first minute of every ten keeps all its frame numbers; the nine others lose `drop`.
        if rest >= drop:
            count += 9 * drop * tens + drop * ((rest - drop) // per_minute)
        else:
            count += 9 * drop * tens
    frames = count % base
    seconds = (count // base) % 60
    minutes = (count // (60 * base)) % 60
    hours = (count // (3600 * base)) % 24
    return Timecode(hours, minutes, seconds, frames, drop_frame and bool(drop))


def offset_timecode(text: str, frames: int, fps: Fraction) -> str:
    """``text`` moved ``frames`` frames later, in the same (drop or non-drop) notation."""
    code = parse_timecode(text)
    return str(from_frame_count(to_frame_count(code, fps) + frames, fps, code.drop_frame))

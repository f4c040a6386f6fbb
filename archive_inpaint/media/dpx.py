"""DPX frame rate and timecode: the film-scan format keeps them in each file's industry headers.

SMPTE 268M lays a DPX header out as the file (768 bytes) and image (640) headers, then the
orientation (256), film (256) and television (128) industry headers, 2,048 bytes in all; the film
and TV headers hold the frame rate, the TV header each frame's SMPTE timecode. FFmpeg's DPX
*decoder* reads both (the rate into the codec context, the timecode into the frame's
``timecode`` metadata), but its *encoder* stops after the orientation header (1,664 bytes) and so
writes neither: a scan restored through it would lose the rate and the timecode the conform
depends on. ``with_industry_headers`` appends the film and TV headers to such a file, undefined
except for the frame rate and (when there is one) the frame's timecode, and moves the image data
behind them.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

from .timecode import parse_timecode

# Offsets (bytes) in the generic and industry headers.
_IMAGE_OFFSET = 4  # file header: offset to the image data
_FILE_SIZE = 16
_GENERIC_SIZE = 24
_INDUSTRY_SIZE = 28
_ELEMENT_DATA_OFFSET = 808  # image element 1: offset to its data
_FILM_HEADER = 1664
_FILM_FRAME_RATE = 1724
_TV_HEADER = 1920
_TV_TIMECODE = 1920
_TV_FRAME_RATE = 1940
HEADER_SIZE = 2048
# Industry headers: film 256 bytes + TV 128 bytes.
_INDUSTRY_LENGTH = HEADER_SIZE - _FILM_HEADER
_UNDEFINED_32 = b"\xff\xff\xff\xff"


def smpte_timecode_bits(timecode: str) -> int:
    """The 32-bit SMPTE 12M form of ``HH:MM:SS:FF`` (``;`` for drop frame) that DPX stores:
    BCD hours, minutes, seconds and frames from the high byte down, drop-frame flag at bit 6."""
    code = parse_timecode(timecode)

    def bcd(value: int) -> int:
        return (value // 10) << 4 | value % 10

    return bcd(code.hours) << 24 | bcd(code.minutes) << 16 | bcd(code.seconds) << 8 | bcd(code.frames) | (
        0x40 if code.drop_frame else 0
    )


def with_industry_headers(dpx: bytes, fps: Fraction, timecode: str | None = None) -> bytes:
    """``dpx`` (one file as FFmpeg's encoder writes it) with film and TV headers carrying the
    frame rate and ``timecode`` (None: left undefined)."""
    magic = dpx[:4]
    if magic not in (b"SDPX", b"XPDS"):
        raise ValueError(f"not a DPX file (magic {magic!r})")
    order = ">" if magic == b"SDPX" else "<"
    (data_offset,) = struct.unpack_from(order + "I", dpx, _IMAGE_OFFSET)
    if data_offset != _FILM_HEADER:
        raise ValueError(f"expected the image data at {_FILM_HEADER} (no industry headers), found {data_offset}")
    industry = bytearray(_INDUSTRY_LENGTH)
    # Film header: text fields empty (zero), numbers undefined (all ones) but the frame rate.
    for offset in range(_FILM_HEADER + 48, _FILM_HEADER + 68, 4):  # frame position .. shutter angle
        industry[offset - _FILM_HEADER : offset - _FILM_HEADER + 4] = _UNDEFINED_32
    struct.pack_into(order + "f", industry, _FILM_FRAME_RATE - _FILM_HEADER, float(fps))
    # TV header: undefined throughout (a float's all-ones pattern is a NaN, the standard's
    # "undefined"), but the timecode (when given) and the frame rate.
    industry[_TV_HEADER - _FILM_HEADER : _TV_HEADER - _FILM_HEADER + 52] = b"\xff" * 52
    if timecode is not None:
        struct.pack_into(order + "I", industry, _TV_TIMECODE - _FILM_HEADER, smpte_timecode_bits(timecode))
    struct.pack_into(order + "f", industry, _TV_FRAME_RATE - _FILM_HEADER, float(fps))
    header = bytearray(dpx[:_FILM_HEADER])
    size = HEADER_SIZE + len(dpx) - _FILM_HEADER
    struct.pack_into(order + "I", header, _IMAGE_OFFSET, HEADER_SIZE)
    struct.pack_into(order + "I", header, _FILE_SIZE, size)
    struct.pack_into(order + "I", header, _GENERIC_SIZE, _FILM_HEADER)
    struct.pack_into(order + "I", header, _INDUSTRY_SIZE, _INDUSTRY_LENGTH)
    struct.pack_into(order + "I", header, _ELEMENT_DATA_OFFSET, HEADER_SIZE)
    return bytes(header) + bytes(industry) + dpx[_FILM_HEADER:]


def states_timecode(path: Path) -> bool:
    """Whether a DPX file's TV header holds a timecode. FFmpeg's decoder reports one whenever the
    header is there, and an undefined one (all ones, as SMPTE 268M marks "undefined") comes out
    as 00:00:00;00, a drop-frame timecode nobody wrote."""
    with open(path, "rb") as file:
        header = file.read(_TV_TIMECODE + 4)
    if len(header) < _TV_TIMECODE + 4 or header[:4] not in (b"SDPX", b"XPDS"):
        return False
    order = ">" if header[:4] == b"SDPX" else "<"
    (data_offset,) = struct.unpack_from(order + "I", header, _IMAGE_OFFSET)
    if data_offset < _TV_TIMECODE + 4:
        return False
    return header[_TV_TIMECODE : _TV_TIMECODE + 4] != _UNDEFINED_32

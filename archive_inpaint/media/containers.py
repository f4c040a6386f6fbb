"""What each output container can carry, and what it would silently drop or fail on halfway.

FFmpeg's muxers do not always say: an MXF drops variable frame timing without a word, and colour
tags it has no label for; its audio check fails only when the header is written, after the video
has started. So the writer asks here first and refuses, before encoding, what a container cannot
hold. Measured with FFmpeg 8: MXF takes every FFV1 pixel format we write and ProRes 422 HQ /
4444, only the edit rates in ``MXF_RATES``, PCM audio (16/24-bit, 48 kHz), and the colour tags in
``_MXF_COLOUR``; it always carries a start timecode (00:00:00:00 when none is given). AVI takes
any constant rate and FFV1 pixel format, a timecode in its INFO list (ISMP), and no colour tags at
all: those are left out (the report says so) rather than refused, since an AVI source never has
any to lose. MKV and MOV hold everything we write.
"""

from __future__ import annotations

from fractions import Fraction

from .probe import ColourTags, SourceInfo

# Edit rates FFmpeg's MXF muxer accepts (12, 15, 16, 18, 23, 240 and 2997/125 fps are refused).
# 120000/1001 is accepted but reads back as 120 fps, so it is left out.
MXF_RATES = frozenset(
    Fraction(rate)
    for rate in ("24000/1001", "24", "25", "30000/1001", "30", "48000/1001", "48", "50",
                 "60000/1001", "60", "100", "120")
)
# The only audio the MXF muxer takes: PCM, 16 or 24 bits, at 48 kHz (AAC, 32-bit or float PCM,
# 44.1 and 96 kHz are refused when the header is written, i.e. after the video started).
MXF_AUDIO_CODECS = ("pcm_s16le", "pcm_s24le")
MXF_AUDIO_RATE = 48000
# The colour tags an MXF descriptor has a label for, and the code each reads back as: some codes
# share a label with an equivalent one (SMPTE 240M primaries are SMPTE 170M's; BT.601's transfer
# is BT.709's; BT.2020 12-bit's is 10-bit's; the 170M matrix is 470BG's).  A code missing here
# would come back unspecified (e.g. sRGB or log transfer, BT.2020 constant-luminance matrix).
_MXF_COLOUR = {
    "primaries": {1: 1, 5: 5, 6: 6, 7: 6, 9: 9, 10: 10, 11: 11, 12: 12},
    "transfer": {1: 1, 4: 4, 6: 1, 7: 7, 8: 8, 11: 11, 12: 12, 14: 14, 15: 14, 16: 16, 17: 17, 18: 18},
    "matrix": {0: 0, 1: 1, 5: 5, 6: 5, 7: 7, 8: 8, 9: 9},
}
FULL_RANGE = 2


def container_problem(
    container_format: str,
    fps: Fraction,
    variable_rate: bool,
    source: SourceInfo | None,
    colour: ColourTags,
    prores: bool,
) -> str | None:
    """Why ``container_format`` cannot carry this output, or None when it can."""
    if container_format == "mxf":
        problem = _mxf_problem(fps, variable_rate, source, colour)
    elif container_format == "avi" and variable_rate:
        # AVI would declare the time base's rate (1000 fps) and fill the gaps with empty frames.
        problem = "the source has a variable frame rate and AVI holds one constant rate"
    else:
        problem = None
    if problem is None and prores and colour.range == FULL_RANGE:
        # ProRes has no range flag and its files read back as limited range in MOV, MXF and MKV
        # alike: full-range samples would be shown with crushed blacks and clipped whites.
        problem = "ProRes cannot say the source is full range (it reads back as limited range)"
    return problem


def _mxf_problem(fps: Fraction, variable_rate: bool, source: SourceInfo | None, colour: ColourTags) -> str | None:
    if variable_rate:
        # The muxer would silently give every frame the same duration.
        return "the source has a variable frame rate and MXF holds one edit rate"
    if fps not in MXF_RATES:
        rates = ", ".join(str(rate) for rate in sorted(MXF_RATES))
        return f"{fps} fps is not an MXF edit rate ({rates})"
    for track in source.audio if source is not None else ():
        if track.codec not in MXF_AUDIO_CODECS or track.sample_rate != MXF_AUDIO_RATE:
            return (f"its audio ({track.codec}, {track.sample_rate} Hz) cannot be copied into MXF, "
                    f"which takes only {' or '.join(MXF_AUDIO_CODECS)} at {MXF_AUDIO_RATE} Hz")
    for name, value in colour.to_dict().items():
        if name != "range" and value is not None and value not in _MXF_COLOUR[name]:
            return f"MXF has no label for the source's colour {name} (code {value})"
    return None


def stored_colour(container_format: str, colour: ColourTags) -> ColourTags:
    """The colour tags the written file will carry (for the report): AVI has no field for any;
    MXF reads some codes back as an equivalent one."""
    if container_format == "avi":
        return ColourTags()
    if container_format == "mxf":
        table = _MXF_COLOUR
        return ColourTags(
            primaries=None if colour.primaries is None else table["primaries"][colour.primaries],
            transfer=None if colour.transfer is None else table["transfer"][colour.transfer],
            matrix=None if colour.matrix is None else table["matrix"][colour.matrix],
            range=colour.range,
        )
    return colour

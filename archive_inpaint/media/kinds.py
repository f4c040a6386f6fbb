"""Output kinds: which codec and container (or image sequence) a shot is written as.

The default is the kind of the input (a ProRes master comes back as ProRes at its profile, a DPX
scan as DPX, an FFV1 master as FFV1); inputs in a codec we do not write (MPEG-2, DNxHD, MJPEG...)
come back as the lossless FFV1 master, never as a lossy re-encode the user did not ask for.

Containers: .mkv holds FFV1, ProRes, H.264 and H.265; .mov ProRes and H.264/H.265; .mp4 H.264/H.265;
.mxf FFV1 and ProRes; .avi FFV1 only.  The default output goes back into the input's own container
where it is one of these: an MXF master stays MXF (ProRes stays ProRes, any other codec becomes
FFV1), an AVI stays AVI (as FFV1).  What a container cannot carry (MXF: only the broadcast edit
rates, constant rate, PCM audio at 48 kHz, a subset of the colour tags; AVI: constant rate, no
colour tags) is refused by master.py before anything is encoded, with a pointer to .mkv.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from .errors import MediaError, quote
from .probe import SourceInfo


class OutputKind(str, Enum):
    FFV1_MKV = "ffv1"  # lossless archival master (in .mkv, .mxf or .avi, despite the name)
    PRORES_422HQ = "prores-422hq"  # 10-bit 4:2:2 mezzanine for the edit suite
    PRORES_4444 = "prores-4444"  # 10-bit 4:4:4 (with alpha where the source has it)
    H264 = "h264"  # lossy, small, plays anywhere: for review only
    H265 = "h265"  # lossy proxy, 10-bit for deep sources
    PNG_SEQUENCE = "png"
    TIFF_SEQUENCE = "tiff"
    DPX_SEQUENCE = "dpx"  # the film-scan format, 10-bit (or 16-bit) RGB


CONTAINER_BY_SUFFIX = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".mxf": "mxf", ".avi": "avi"}
SEQUENCE_SUFFIX = {
    OutputKind.PNG_SEQUENCE: ".png",
    OutputKind.TIFF_SEQUENCE: ".tiff",
    OutputKind.DPX_SEQUENCE: ".dpx",
}
# Containers each video kind may go in, the usual one first (MP4 has no ProRes or FFV1 mapping in
# FFmpeg; AVI is kept to FFV1, the one codec archives put in it that we write).
_CONTAINERS = {
    OutputKind.FFV1_MKV: (".mkv", ".mxf", ".avi"),
    OutputKind.PRORES_422HQ: (".mov", ".mkv", ".mxf"),
    OutputKind.PRORES_4444: (".mov", ".mkv", ".mxf"),
    OutputKind.H264: (".mp4", ".mov", ".mkv"),
    OutputKind.H265: (".mp4", ".mov", ".mkv"),
}
_KIND_BY_SUFFIX = {
    ".mkv": OutputKind.FFV1_MKV,
    ".mxf": OutputKind.FFV1_MKV,
    ".avi": OutputKind.FFV1_MKV,
    ".mp4": OutputKind.H264,
    ".mov": OutputKind.H264,
}
# Suffixes where the source's own kind wins over the suffix's kind when it fits (a ProRes source
# written to .mxf stays ProRes); .mkv always means the lossless FFV1 master.
_SOURCE_KIND_WINS = (".mov", ".mp4", ".mxf")
_SEQUENCE_BY_CODEC = {
    "png": OutputKind.PNG_SEQUENCE,
    "tiff": OutputKind.TIFF_SEQUENCE,
    "dpx": OutputKind.DPX_SEQUENCE,
}


def parse_kind(text: str, path: str | Path) -> OutputKind:
    try:
        return OutputKind(text)
    except ValueError:
        choices = ", ".join(kind.value for kind in OutputKind)
        raise MediaError(f"unknown output kind {text!r} for {quote(path)}; choose one of {choices}") from None


def default_output_kind(source: SourceInfo) -> OutputKind:
    """The same kind as the input, where we write that kind; else the lossless FFV1 master.

    The input's container counts too: where it is one we write but the codec's kind does not fit
    in it (H.264 in MXF or AVI), FFV1 does, so the output stays in the input's container.
    """
    if source.is_sequence:
        return _SEQUENCE_BY_CODEC.get(source.codec, OutputKind.PNG_SEQUENCE)  # JPEG -> PNG
    kind = _codec_kind(source)
    container = source.suffix
    if container in CONTAINER_BY_SUFFIX and container not in _CONTAINERS[kind]:
        if container in _CONTAINERS[OutputKind.FFV1_MKV]:
            return OutputKind.FFV1_MKV
    return kind


def _codec_kind(source: SourceInfo) -> OutputKind:
    if source.codec == "prores":
        four = "4444" in (source.profile or "") or source.pix_fmt.startswith(("yuv444", "yuva444"))
        return OutputKind.PRORES_4444 if four else OutputKind.PRORES_422HQ
    return {"h264": OutputKind.H264, "hevc": OutputKind.H265}.get(source.codec, OutputKind.FFV1_MKV)


def output_suffix(kind: OutputKind, source: SourceInfo | None = None) -> str:
    """The file suffix for a kind ('' for sequences, which are folders): the source's own
    container where the kind fits in it, so a .mov stays a .mov and an .mxf an .mxf. Matroska is
    kept only for FFV1: ProRes or H.264 made from an MKV master go where edit suites and players
    expect them (.mov, .mp4), though MKV could hold them."""
    if kind in SEQUENCE_SUFFIX:
        return ""
    allowed = _CONTAINERS[kind]
    if source is not None and not source.is_sequence and source.suffix in allowed:
        if source.suffix != ".mkv" or kind is OutputKind.FFV1_MKV:
            return source.suffix
    return allowed[0]


def output_kind_for(
    path: str | Path, explicit: str | OutputKind | None = None, source: SourceInfo | None = None
) -> OutputKind:
    """The kind to write at ``path``: ``explicit`` if given (checked against the path), else
    from the path's suffix, preferring the source's own kind where the suffix allows it.

    .mkv -> FFV1 (the lossless master, always); .avi -> FFV1; .mxf -> the source's ProRes where
    it has one, else FFV1; .mov/.mp4 -> the source's ProRes/H.264/H.265 where it fits, else
    H.264; no suffix -> an image sequence of the source's kind (PNG, TIFF,
    DPX), else PNG.
    """
    suffix = Path(path).suffix.lower()
    if explicit is not None:
        kind = explicit if isinstance(explicit, OutputKind) else parse_kind(explicit, path)
        _check_fits(kind, path, suffix)
        return kind
    if not suffix:
        if source is not None and source.is_sequence:
            return default_output_kind(source)
        return OutputKind.PNG_SEQUENCE
    kind = _KIND_BY_SUFFIX.get(suffix)
    if kind is None:
        raise MediaError(
            f"cannot tell the output kind of {quote(path)} from its suffix {suffix!r}: "
            "use .mkv (lossless FFV1), .mxf (FFV1 or ProRes), .avi (FFV1), .mov (ProRes or H.264), "
            ".mp4 (H.264/H.265), or a path without suffix (image sequence folder)"
        )
    if suffix in _SOURCE_KIND_WINS and source is not None:
        preferred = default_output_kind(source)
        if preferred not in SEQUENCE_SUFFIX and suffix in _CONTAINERS[preferred]:
            return preferred
    return kind


def _check_fits(kind: OutputKind, path: str | Path, suffix: str) -> None:
    if kind in SEQUENCE_SUFFIX:
        return  # a folder: any name will do
    if suffix not in _CONTAINERS[kind]:
        raise MediaError(
            f"cannot write {quote(path)} as {kind.value}: that needs a "
            f"{' or '.join(_CONTAINERS[kind])} path"
        )

"""What a shot's source is, beyond its pixels: codec, pixel format, colour tags, timecode, audio.

The output is made to match it (same kind of file, same bit depth, the same tags), so these are
read once, before any work, from the container's headers and the first decoded frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import av

from .decode import open_video
from .errors import MediaError, quote
from .dpx import states_timecode
from .images import DPX_SUFFIXES, is_image_file, list_images

# Codec names of image files, by suffix (image sequences are decoded as stills).
_IMAGE_CODECS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "mjpeg", ".jpeg": "mjpeg"}
_IMAGE_CODECS.update({suffix: "dpx" for suffix in DPX_SUFFIXES})

# FFmpeg's "unspecified" value of each colour property: not worth carrying over.
_UNSPECIFIED = {"color_primaries": 2, "color_trc": 2, "colorspace": 2, "color_range": 0}


@dataclass(frozen=True)
class ColourTags:
    """FFmpeg's numeric colour properties (ITU-T H.273 code points; range: 1 limited, 2 full).

    None where the source leaves a property unspecified: an untagged output is better than one
    that claims what nobody measured.
    """

    primaries: int | None = None
    transfer: int | None = None
    matrix: int | None = None
    range: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return asdict(self)


@dataclass(frozen=True)
class AudioTrack:
    index: int  # the stream's index in the container
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class SourceInfo:
    path: str
    is_sequence: bool  # an image folder or a single image (no timing, no audio)
    codec: str  # 'ffv1', 'prores', 'h264', 'hevc', 'png', 'tiff', 'dpx', ...
    pix_fmt: str  # the decoder's native pixel format, e.g. 'yuv422p10le', 'gbrp10le', 'rgb48le'
    component_bits: int  # bits per sample in the source: 8, 10, 12, 16
    container: str | None = None  # FFmpeg demuxer name, e.g. 'mov,mp4,m4a,3gp,3g2,mj2'
    profile: str | None = None  # e.g. 'HQ' or '4444' for ProRes
    colour: ColourTags = field(default_factory=ColourTags)
    timecode: str | None = None
    audio: tuple[AudioTrack, ...] = ()

    @property
    def suffix(self) -> str:
        path = Path(self.path)
        if path.is_dir():
            files = list_images(path)
            return files[0].suffix.lower() if files else ""
        return path.suffix.lower()

    def to_dict(self) -> dict:
        document = asdict(self)
        document["colour"] = self.colour.to_dict()
        document["audio"] = [asdict(track) for track in self.audio]
        return document


def probe_source(path: str | Path) -> SourceInfo:
    """Describe a video file, image folder or single image (its first frame is decoded)."""
    source = Path(path)
    if not source.exists():
        raise MediaError(f"file not found: {quote(path)}")
    if source.is_dir() or is_image_file(source):
        files = list_images(source) if source.is_dir() else [source]
        if not files:
            raise MediaError(f"video {quote(path)} contains no frames (no PNG, TIFF, DPX or JPEG images)")
        return _probe_image(str(source), files[0])
    label = f"video {quote(path)}"
    with open_video(source, label) as (container, stream):
        try:
            frame = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise MediaError(f"{label} is not a readable video: {exc}") from exc
        if frame is None:
            raise MediaError(f"{label} contains no frames")
        context = stream.codec_context
        return SourceInfo(
            path=str(source),
            is_sequence=False,
            codec=context.name,
            pix_fmt=frame.format.name,
            component_bits=max(component.bits for component in frame.format.components),
            container=container.format.name,
            profile=getattr(context, "profile", None) or None,
            colour=_colour(context, frame),
            timecode=_timecode(container),
            audio=tuple(
                AudioTrack(s.index, s.codec_context.name, s.codec_context.sample_rate or 0,
                           s.codec_context.channels or 0)
                for s in container.streams.audio
            ),
        )


def _probe_image(path: str, first: Path) -> SourceInfo:
    codec = _IMAGE_CODECS.get(first.suffix.lower(), first.suffix.lower().lstrip("."))
    try:
        with av.open(str(first)) as container:
            frame = next(container.decode(video=0))
    except (av.FFmpegError, OSError, StopIteration) as exc:
        raise MediaError(f"image {quote(first)} in video {quote(path)} is not a readable image: {exc}") from exc
    return SourceInfo(
        path=path,
        is_sequence=True,
        codec=codec,
        pix_fmt=frame.format.name,
        component_bits=max(component.bits for component in frame.format.components),
        colour=_colour(None, frame),
        # FFmpeg reads a DPX file's TV-header timecode into the frame's metadata (an undefined
        # one too: see dpx.states_timecode).
        timecode=(frame.metadata.get("timecode") or None) if codec != "dpx" or states_timecode(first) else None,
    )


def _colour(context: object | None, frame: av.VideoFrame) -> ColourTags:
    """Tags from the stream (MOV keeps them in the header, not in each decoded frame), else the frame."""
    values = {}
    for name in ("color_primaries", "color_trc", "colorspace", "color_range"):
        value = None
        for holder in (context, frame):
            candidate = getattr(holder, name, None) if holder is not None else None
            if candidate is not None and int(candidate) != _UNSPECIFIED[name]:
                value = int(candidate)
                break
        values[name] = value
    return ColourTags(
        primaries=values["color_primaries"],
        transfer=values["color_trc"],
        matrix=values["colorspace"],
        range=values["color_range"],
    )


def _timecode(container: av.container.InputContainer) -> str | None:
    """The start timecode: on the video stream (MOV, MKV's TIMECODE tag), a timecode data
    track (MOV's tmcd) or the container (MXF's timecode component; AVI's INFO list, ISMP).
    FFmpeg's MXF muxer always writes one, so an MXF it made says 00:00:00:00 when nobody set it."""
    holders = [container.streams.video[0].metadata]
    holders += [stream.metadata for stream in container.streams if stream.type == "data"]
    holders.append(container.metadata)
    for metadata in holders:
        for key, value in metadata.items():
            if key.lower() == "timecode" and value:
                return str(value)
    return None

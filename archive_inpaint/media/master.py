"""Writing a shot's output so that it keeps everything the inpainting did not touch.

``write_master`` takes the filled RGB frames and, when it knows the source file, builds each
output frame from the *decoded source frame* in the output's pixel format (native.py), so a
lossless output equals the source sample for sample outside the touched pixels, whatever the
source's pixel format and bit depth.  Around the pictures it carries over what archivists check
first: the exact frame rate (and each frame's own timestamp for variable-rate sources), audio
packets copied untouched, the start timecode (moved by the range's first frame), and the colour
tags (primaries, transfer, matrix, range).

MXF and AVI hold less than MKV/MOV: what they cannot carry is refused before anything is
encoded (``containers.container_problem``), naming the file and pointing to .mkv.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import numpy as np

from .atomic import atomic_directory, atomic_file
from .containers import container_problem, stored_colour
from .decode import open_video
from .dpx import with_industry_headers
from .encoders import FFV1_OPTIONS, H264_OPTIONS, SEQUENCE_PATTERN, ffv1_rgb_format, write_image_sequence
from .errors import MediaError, quote
from .frame_store import Frames, FrameStore
from .images import list_images
from .kinds import CONTAINER_BY_SUFFIX, SEQUENCE_SUFFIX, OutputKind
from .native import BT709, LIMITED_RANGE, composite_region, convert, is_rgb_format, rgb_frame, touched_box
from .probe import ColourTags, SourceInfo
from .rates import FPS_TAG, require_fps
from .timecode import offset_timecode

# ProRes through FFmpeg's prores_ks: profile 3 is 422 HQ, 4 is 4444; 'apl0' is the vendor code
# Apple's decoders expect.
_PRORES = {
    OutputKind.PRORES_422HQ: ({"profile": "3", "vendor": "apl0"}, ("yuv422p10le",)),
    OutputKind.PRORES_4444: ({"profile": "4", "vendor": "apl0"}, ("yuv444p10le", "yuva444p10le")),
}
# Rows per band when a filled frame is compared with the original (see ``_touched``).
_COMPARE_ROWS = 256
H265_OPTIONS = {"crf": "20", "x265-params": "log-level=error"}
_CODEC = {
    OutputKind.FFV1_MKV: "ffv1",
    OutputKind.PRORES_422HQ: "prores_ks",
    OutputKind.PRORES_4444: "prores_ks",
    OutputKind.H264: "libx264",
    OutputKind.H265: "libx265",
}


@dataclass(frozen=True)
class Timing:
    """Frame timing of the output: a constant ``fps``, or each frame's source timestamp.

    ``timestamps`` (presentation times in ``time_base`` units, one per frame) is set only for
    variable-frame-rate sources; a constant-rate output gets exact ``pts = index`` at 1/fps.
    """

    fps: Fraction
    timestamps: tuple[int, ...] | None = None
    time_base: Fraction | None = None
    # When the output's first frame is shown in the source, in seconds (the reader has it): where
    # a range's audio starts. None: ``start / fps``.
    first_time: Fraction | None = None


@dataclass
class MasterReport:
    """What was written, for provenance."""

    path: Path
    kind: OutputKind
    pix_fmt: str | None = None
    native_composite: bool = False  # untouched samples copied from the decoded source frames
    audio_streams: int = 0
    audio_sidecar: Path | None = None
    timecode: str | None = None
    colour: ColourTags = field(default_factory=ColourTags)
    variable_frame_rate: bool = False
    # Pixels (over all frames) the composite changed outside the holes: the feather band, and
    # nothing else. None when the writer was not given the original frames and holes.
    changed_outside_holes: int | None = None

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "kind": self.kind.value,
            "pix_fmt": self.pix_fmt,
            "native_composite": self.native_composite,
            "audio_streams": self.audio_streams,
            "audio_sidecar": None if self.audio_sidecar is None else self.audio_sidecar.name,
            "timecode": self.timecode,
            "colour": self.colour.to_dict(),
            "variable_frame_rate": self.variable_frame_rate,
            "changed_outside_holes": self.changed_outside_holes,
        }


def is_variable_rate(timestamps: tuple[int, ...], time_base: Fraction, fps: Fraction) -> bool:
    """Whether frame times stray from a constant rate by more than a time-base tick (containers
    with millisecond ticks round a 24000/1001 cadence to 41/42 ms: that is still constant)."""
    if len(timestamps) < 2:
        return False
    tick = 1 / (fps * time_base)  # frame duration in ticks
    first = timestamps[0]
    return any(abs((ts - first) - i * tick) > 1 for i, ts in enumerate(timestamps))


def write_master(
    filled: Frames,
    timing: Timing,
    target: str | Path,
    kind: OutputKind,
    *,
    source: SourceInfo | None = None,
    start: int = 0,
    end: int | None = None,
    original: Frames | None = None,
    holes: Frames | None = None,
) -> MasterReport:
    """Write ``filled`` (T, H, W, 3) RGB frames as ``kind`` at ``target``, atomically.

    With ``source`` (the probed input file), ``start`` and ``end`` (the range in it, end None:
    to the end of the file),
    ``original`` (the input's RGB frames) and ``holes``: untouched samples come from the source
    frames in their own pixel format, and audio, timecode and colour tags are carried over.
    Touched pixels are the holes plus any pixel whose RGB value the composite changed (a
    feathered edge).
    """
    path = Path(target)
    require_fps(timing.fps)
    report = MasterReport(path=path, kind=kind)
    # Untouched samples can come from the source only when we know which pixels were touched.
    report.native_composite = source is not None and original is not None and holes is not None
    if source is not None:
        report.colour = source.colour
        if source.timecode:
            report.timecode = _moved_timecode(source.timecode, start, timing.fps)
    report.variable_frame_rate = timing.timestamps is not None
    if kind in SEQUENCE_SUFFIX:
        _write_sequence(filled, path, kind, source, start, original, holes, report, timing.fps)
    else:
        _write_video(filled, timing, path, kind, source, start, end, original, holes, report)
    if source is not None and source.audio and kind in SEQUENCE_SUFFIX:
        # An image sequence cannot hold sound: the audio goes beside it, still unre-encoded.
        sidecar = path.with_name(f"{path.name}.audio.mka")
        with atomic_file(sidecar) as temp, av.open(str(temp), "w", format="matroska") as output:
            audio = _AudioCopy(source, output, start, end, timing)
            try:
                audio.mux_until(None)
            finally:
                audio.close()
            report.audio_streams = len(audio.targets)
        report.audio_sidecar = sidecar
    return report


def _moved_timecode(timecode: str, start: int, fps: Fraction) -> str | None:
    try:
        return offset_timecode(timecode, start, fps)
    except ValueError:
        return None  # a malformed tag: leave it out rather than write a wrong one


def _rows(frames: Frames, index: int, top: int, bottom: int) -> np.ndarray:
    if isinstance(frames, FrameStore):
        return frames.rows(index, top, bottom)
    return np.asarray(frames[index][top:bottom])


def _touched(
    index: int, original: Frames, filled_rows: Callable[[int, int], np.ndarray], holes: Frames, report: MasterReport
) -> np.ndarray:
    """Frame ``index``'s touched pixels: its hole, plus any pixel the composite changed (the
    feather band), which is also counted into the report. ``filled_rows(top, bottom)`` gives
    the filled frame's rows (read from its store, or cut from a frame already read)."""
    height, width = original.shape[1:3]
    hole = np.reshape(holes[index], (height, width)).astype(bool)
    touched = hole.copy()
    # Compared in bands of rows, never whole frames: at 4K a whole frame of each, and their
    # comparison, were held beside the encoder's buffers.
    for top in range(0, height, _COMPARE_ROWS):
        bottom = min(top + _COMPARE_ROWS, height)
        touched[top:bottom] |= (_rows(original, index, top, bottom) != filled_rows(top, bottom)).any(axis=2)
    report.changed_outside_holes = (report.changed_outside_holes or 0) + int((touched & ~hole).sum())
    return touched


def _counted(filled: Frames, original: Frames, holes: Frames, report: MasterReport) -> Iterator[np.ndarray]:
    """``filled``'s frames, counting the pixels changed outside the holes as they go by."""
    for index in range(len(filled)):
        pixels = np.asarray(filled[index])  # the whole frame is written: read it once
        _touched(index, original, lambda top, bottom: pixels[top:bottom], holes, report)
        yield pixels


def _source_frames(source: SourceInfo, start: int, count: int) -> Iterator[av.VideoFrame]:
    """The decoded frames [start, start + count) of the source, in its own pixel format."""
    label = f"video {quote(source.path)}"
    if source.is_sequence:
        folder = Path(source.path)
        files = list_images(folder) if folder.is_dir() else [folder]
        for file in files[start : start + count]:
            with av.open(str(file)) as container:
                yield next(container.decode(video=0))
        return
    with open_video(Path(source.path), label) as (container, stream):
        for index, frame in enumerate(container.decode(stream)):
            if index >= start + count:
                break
            if index >= start:
                yield frame


def _pictures(
    filled: Frames,
    pix_fmt: str,
    source: SourceInfo | None,
    start: int,
    original: Frames | None,
    holes: Frames | None,
    report: MasterReport,
) -> Iterator[av.VideoFrame]:
    """Output pictures in ``pix_fmt``: native composites when the source is known."""
    # Frames of an RGB source (or no source) become YUV by our choice: BT.709, limited range.
    yuv_source = source is not None and not is_rgb_format(source.pix_fmt)
    matrix = source.colour.matrix if yuv_source else BT709
    colour_range = source.colour.range if yuv_source else LIMITED_RANGE
    if not report.native_composite:
        for pixels in filled:
            yield convert(rgb_frame(np.asarray(pixels)), pix_fmt, matrix, colour_range)
        return
    assert source is not None and original is not None and holes is not None
    count = len(filled)
    produced = 0
    for index, frame in enumerate(_source_frames(source, start, count)):
        touched = _touched(index, original, partial(_rows, filled, index), holes, report)
        # Only the fill's pixels around the touched ones are read (see native.touched_box).
        box = touched_box(touched)
        fill = None if box is None else _rows(filled, index, box[0], box[1])[:, box[2] : box[3]]
        picture = composite_region(frame, fill, touched, box, pix_fmt, matrix, colour_range)
        # Only the picture is needed while it is encoded (at 4K each of these is tens of MB).
        del frame, fill, touched
        yield picture
        del picture
        produced += 1
    if produced != count:
        raise MediaError(
            f"video {quote(source.path)} changed while it was processed: "
            f"{produced} frames decoded for the output, {count} expected"
        )


def output_pix_fmt(kind: OutputKind, source_pix_fmt: str | None, deep: bool, even: bool) -> str:
    """The output's pixel format: the source's own where the codec takes it (so untouched
    samples need no conversion), else the kind's standard format at the source's depth."""
    if kind is OutputKind.FFV1_MKV:
        supported = {f.name for f in av.codec.Codec("ffv1", "w").video_formats or []}
        if source_pix_fmt in supported:
            return source_pix_fmt
        return ffv1_rgb_format(16 if deep else 8)
    if kind in _PRORES:
        formats = _PRORES[kind][1]
        return source_pix_fmt if source_pix_fmt in formats else formats[0]
    if kind is OutputKind.H264:  # a proxy: 8-bit, 4:2:0 where the size allows, plays anywhere
        return "yuv420p" if even else "yuv444p"
    if kind is OutputKind.H265:
        return ("yuv420p" if even else "yuv444p") + ("10le" if deep else "")
    if kind is OutputKind.DPX_SEQUENCE:
        supported = {f.name for f in av.codec.Codec("dpx", "w").video_formats or []}
        if source_pix_fmt in supported and source_pix_fmt not in ("gray", "gray16le", "gray16be"):
            return source_pix_fmt
        return "gbrp10le" if deep else "rgb24"
    return "rgb48le" if deep else "rgb24"


def _source_is_deep(filled: Frames, source: SourceInfo | None) -> bool:
    return filled.dtype == np.uint16 or (source is not None and source.component_bits > 8)


def _write_sequence(filled, path, kind, source, start, original, holes, report, fps: Fraction) -> None:
    if kind is not OutputKind.DPX_SEQUENCE:
        # PNG/TIFF hold the RGB frames exactly (8 or 16 bits): the RGB composite is already the
        # source's own samples outside the touched pixels.
        report.pix_fmt = "rgb48" if filled.dtype == np.uint16 else "rgb24"
        report.native_composite = False
        report.timecode = None  # PNG and TIFF have no timecode field: the report says none
        frames = filled if original is None or holes is None else _counted(filled, original, holes, report)
        with atomic_directory(path) as folder:
            write_image_sequence(frames, folder, SEQUENCE_SUFFIX[kind])
        return
    deep = _source_is_deep(filled, source)
    pix_fmt = output_pix_fmt(kind, source.pix_fmt if source else None, deep, True)
    report.pix_fmt = pix_fmt
    encoder = av.codec.CodecContext.create("dpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = filled.shape[2], filled.shape[1], pix_fmt
    encoder.time_base = Fraction(1, 24)  # required by the API; DPX frames carry no timing
    with atomic_directory(path) as folder:
        for index, picture in enumerate(_pictures(filled, pix_fmt, source, start, original, holes, report)):
            picture.pts = index
            # DPX is intra-only: each frame comes out as one packet, at once.
            data = b"".join(bytes(packet) for packet in encoder.encode(picture))
            # Each file carries the rate and its own frame's timecode, as a scanner writes them.
            timecode = offset_timecode(report.timecode, index, fps) if report.timecode else None
            data = with_industry_headers(data, fps, timecode)
            (folder / SEQUENCE_PATTERN.format(index=index, suffix=".dpx")).write_bytes(data)


def _write_video(filled, timing, path, kind, source, start, end, original, holes, report) -> None:
    container_format = CONTAINER_BY_SUFFIX.get(path.suffix.lower())
    if container_format is None:
        raise MediaError(
            f"cannot write {kind.value} video to {quote(path)}: use a .mkv, .mxf, .avi, .mov or .mp4 path"
        )
    height, width = filled.shape[1:3]
    pix_fmt = _video_pix_fmt(filled, kind, source)
    report.pix_fmt = pix_fmt
    colour = _output_colour(pix_fmt, source)
    _check_container(container_format, path, kind, timing, source, colour)
    report.colour = stored_colour(container_format, colour)
    with atomic_file(path) as temp:
        try:
            with av.open(str(temp), mode="w", format=container_format,
                         options=_container_options(container_format, source, timing)) as output:
                stream = _add_video_stream(output, kind, pix_fmt, width, height, timing, colour, report)
                audio = None
                if source is not None and source.audio:
                    audio = _AudioCopy(source, output, start, end, timing)
                    report.audio_streams = len(audio.targets)
                try:
                    _encode_pictures(
                        stream, output, timing, colour,
                        _pictures(filled, pix_fmt, source, start, original, holes, report), audio,
                    )
                finally:
                    if audio is not None:
                        audio.close()
        except (av.FFmpegError, ValueError) as exc:
            if isinstance(exc, MediaError):
                raise
            detail = ""
            if source is not None and source.audio:
                codecs = ", ".join(sorted({track.codec for track in source.audio}))
                detail = f" (with the source's {codecs} audio; .mkv and .mov take any audio)"
            raise MediaError(f"could not write {quote(path)} as {kind.value}{detail}: {exc}") from exc


def _video_pix_fmt(filled: Frames, kind: OutputKind, source: SourceInfo | None) -> str:
    height, width = filled.shape[1:3]
    even = width % 2 == 0 and height % 2 == 0
    return output_pix_fmt(kind, source.pix_fmt if source else None, _source_is_deep(filled, source), even)


def check_output(filled: Frames, timing: Timing, target: str | Path, kind: OutputKind,
                 source: SourceInfo | None = None) -> None:
    """Raise the MediaError ``write_master`` would raise for what the target's container cannot
    carry, without writing anything: lets a caller fail before hours of work rather than after.
    Only ``filled``'s shape and dtype are used."""
    path = Path(target)
    container_format = CONTAINER_BY_SUFFIX.get(path.suffix.lower())
    if kind in SEQUENCE_SUFFIX or container_format is None:
        return  # sequences hold anything; a wrong suffix is reported by write_master itself
    pix_fmt = _video_pix_fmt(filled, kind, source)
    _check_container(container_format, path, kind, timing, source, _output_colour(pix_fmt, source))


def _check_container(container_format: str, path: Path, kind: OutputKind, timing: Timing,
                     source: SourceInfo | None, colour: ColourTags) -> None:
    """Refuse, before anything is encoded, what the container would drop or fail on halfway."""
    problem = container_problem(
        container_format, timing.fps, timing.timestamps is not None, source, colour, prores=kind in _PRORES
    )
    if problem is not None:
        raise MediaError(
            f"cannot write {quote(path)} as {kind.value} in {path.suffix.lstrip('.').upper()}: {problem}; "
            "write a .mkv (lossless FFV1) instead, which holds it"
        )


def _container_options(container_format: str, source: SourceInfo | None, timing: Timing) -> dict[str, str]:
    """MOV/MP4 edit lists (which place a track that starts later, such as copied audio) count in
    the movie time scale, 1 ms by default: a 2.875 ms audio offset would become 2 ms. A scale
    that divides every sample and frame time keeps the offset exact."""
    if container_format not in ("mov", "mp4") or source is None or not source.audio:
        return {}
    scale = timing.fps.numerator
    for track in source.audio:
        if track.sample_rate:
            scale = math.lcm(scale, track.sample_rate)
    return {"movie_timescale": str(scale)} if scale < 2**31 else {}


def _encode_pictures(
    stream, output, timing: Timing, colour: ColourTags, pictures: Iterator[av.VideoFrame],
    audio: _AudioCopy | None = None,
) -> None:
    time_base = stream.codec_context.time_base
    for index, picture in enumerate(pictures):
        # Some encoders (ProRes) write each frame's own colour properties into the bitstream,
        # not the stream's: a decoded source frame may say 'unspecified' where the header did not.
        for name, value in (("color_primaries", colour.primaries), ("color_trc", colour.transfer),
                            ("colorspace", colour.matrix), ("color_range", colour.range)):
            if value is not None:
                setattr(picture, name, value)
        if timing.timestamps is not None:
            picture.pts = timing.timestamps[index] - timing.timestamps[0]
        else:
            picture.pts = index
        picture.time_base = time_base
        if audio is not None:
            audio.mux_until(Fraction(picture.pts) * time_base)
        for packet in stream.encode(picture):
            output.mux(packet)
        del picture  # not held while the next picture is made
    for packet in stream.encode(None):  # flush delayed (B-)frames
        output.mux(packet)
    if audio is not None:
        audio.mux_until(None)


def _output_colour(pix_fmt: str, source: SourceInfo | None) -> ColourTags:
    """The colour tags the output should carry: the source's, with the matrix and range we chose
    where we made YUV from RGB, and without matrix and range for an RGB output."""
    colour = source.colour if source is not None else ColourTags()
    rgb_output = is_rgb_format(pix_fmt)
    if not rgb_output and (source is None or is_rgb_format(source.pix_fmt)):
        # RGB made YUV by us (see _pictures): say which matrix, or players guess 601 or 709.
        colour = ColourTags(primaries=colour.primaries or BT709, transfer=colour.transfer or BT709,
                            matrix=BT709, range=LIMITED_RANGE)
    if rgb_output:
        colour = ColourTags(colour.primaries, colour.transfer, None, None)
    return colour


def _tag_timecode(output, stream, timecode: str) -> None:
    """MOV/MP4 write a tmcd track from the stream's 'timecode', MXF its timecode component;
    Matroska keeps it as a stream tag; AVI only has its file-level INFO list (ISMP)."""
    name = output.format.name
    if name == "avi":
        output.metadata["timecode"] = timecode
    else:
        stream.metadata["TIMECODE" if name == "matroska" else "timecode"] = timecode


def _add_video_stream(output, kind, pix_fmt, width, height, timing, colour, report):
    stream = output.add_stream(_CODEC[kind], rate=timing.fps)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    if timing.timestamps is not None and timing.time_base is not None:
        stream.time_base = timing.time_base
    else:
        # One tick per frame: pts = frame index is then exact for any rational rate.
        stream.time_base = Fraction(timing.fps.denominator, timing.fps.numerator)
    # The encoder reads frame times in its own time base (1/fps from `rate`): make it the
    # stream's, so a variable-rate source's millisecond timestamps are not read as frame counts.
    stream.codec_context.time_base = stream.time_base
    stream.metadata[FPS_TAG] = str(timing.fps)
    if kind is OutputKind.FFV1_MKV:
        stream.options = dict(FFV1_OPTIONS)
    elif kind in _PRORES:
        stream.options = dict(_PRORES[kind][0])
    elif kind is OutputKind.H264:
        stream.options = dict(H264_OPTIONS)
    else:
        options = dict(H265_OPTIONS)
        if min(width, height) < 64:
            # x265's default 64 px coding tree is larger than the picture: the encoder then
            # corrupts memory (seen with libx265 in PyAV's FFmpeg). 16 px trees are safe.
            options["x265-params"] += ":ctu=16"
        stream.options = options
    context = stream.codec_context
    if colour.primaries is not None:
        context.color_primaries = colour.primaries
    if colour.transfer is not None:
        context.color_trc = colour.transfer
    if colour.matrix is not None:
        context.colorspace = colour.matrix
    if colour.range is not None:
        context.color_range = colour.range
    if report.timecode:
        _tag_timecode(output, stream, report.timecode)
    return stream


class _AudioCopy:
    """The source's audio packets for the output, remuxed as they are (no decoding, no
    re-encoding) and interleaved with the video by time, as muxers expect.

    For a range, packets that start within the range's time span are kept and shifted by the
    range's start, so every sample plays at its original time relative to the pictures (the
    first packet may start a fraction of a packet after the first frame: a packet cannot be cut
    without re-encoding it).
    """

    def __init__(self, source: SourceInfo, output, start: int, end: int | None, timing: Timing) -> None:
        # The range's first frame's time in the source (the reader's timestamp), so the audio
        # cut needs no second decode of the video.
        self.begin = timing.first_time if timing.first_time is not None else Fraction(start) / timing.fps
        self.finish = None if end is None else self.begin + Fraction(end - start) / timing.fps
        self.container = av.open(source.path)
        self.targets = {}
        try:
            for stream in self.container.streams.audio:
                try:
                    self.targets[stream.index] = output.add_stream_from_template(stream)
                except (av.FFmpegError, ValueError) as exc:
                    raise MediaError(
                        f"the audio of {quote(source.path)} ({stream.codec_context.name}) cannot be "
                        f"copied into a {output.format.name} file: {exc}; write .mkv or .mov instead"
                    ) from exc
        except BaseException:
            self.container.close()
            raise
        self.output = output
        self._packets = self._kept()
        self._pending = next(self._packets, None)

    def _kept(self) -> Iterator[tuple[Fraction, av.Packet]]:
        for packet in self.container.demux(list(self.container.streams.audio)):
            if packet.pts is None or packet.size == 0:
                continue
            moment = Fraction(packet.pts) * packet.time_base
            if moment < self.begin or (self.finish is not None and moment >= self.finish):
                continue
            shift = round(self.begin / packet.time_base)
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self.targets[packet.stream_index]
            yield moment - self.begin, packet

    def mux_until(self, seconds: Fraction | None) -> None:
        """Mux the packets that start before ``seconds`` into the output (None: all the rest)."""
        while self._pending is not None and (seconds is None or self._pending[0] <= seconds):
            self.output.mux(self._pending[1])
            self._pending = next(self._packets, None)

    def close(self) -> None:
        self.container.close()

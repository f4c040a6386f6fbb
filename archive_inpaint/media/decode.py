"""Frame-accurate decoding of the first video stream of a container via PyAV.

Ranges are served by decoding from the first frame and discarding frames
before `start`: seeking lands on keyframes and container timestamps are not
reliable frame numbers, so skipping is the only way to be frame-exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream
import numpy as np

from .errors import MediaError
from .native import UNSPECIFIED_MATRIX, UNSPECIFIED_RANGE, frame_matrix, frame_range
from .rates import FPS_TAG, refine_rate

# Target pixel formats by component depth.  Sources deeper than 8 bits go to a
# 16-bit format so 10/12-bit footage keeps its full precision.
RGB_FORMATS = ("rgb24", "rgb48le")
GRAY_FORMATS = ("gray", "gray16le")


@dataclass(frozen=True)
class DecodedRange:
    """The frames of [start, end) plus what is needed to validate the request."""

    arrays: list[np.ndarray]  # empty when the frames went to an on_frame sink
    frames_seen: int  # frames decoded before stopping: the file's total if end is None
    bit_depth: int  # 8 or 16, from the decoded pixel format
    # Presentation timestamps of the range's frames, in `time_base` units (None where the
    # stream gives none): what keeps a variable-frame-rate source's timing in the output.
    timestamps: tuple[int | None, ...] = ()
    time_base: Fraction | None = None


FRAME_THREADING_MAX_PIXELS = 1920 * 1080


@contextmanager
def open_video(path: Path, label: str) -> Iterator[
    tuple[av.container.InputContainer, av.video.stream.VideoStream]
]:
    """Open `path` and yield (container, first video stream), errors as MediaError."""
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"{label} is not a readable video: {_reason(exc)}") from exc
    try:
        if not container.streams.video:
            raise MediaError(f"{label} has no video stream")
        stream = container.streams.video[0]
        # Frame threading decodes several frames in parallel without changing output order,
        # which matters for long intra-only FFV1 masters; but every frame thread holds frames of
        # its own, so its memory is the core count times the frame size (a 4K FFV1 file: +94 MiB
        # on 2 cores, and a workstation has 16 or more). Above 1080p, slice threading only.
        pixels = (stream.codec_context.width or 0) * (stream.codec_context.height or 0)
        stream.thread_type = "AUTO" if pixels <= FRAME_THREADING_MAX_PIXELS else "SLICE"
        yield container, stream
    finally:
        container.close()


def stream_rate(stream: av.video.stream.VideoStream, label: str) -> Fraction:
    """The nominal frame rate of a stream as an exact Fraction."""
    rate = stream.average_rate or stream.guessed_rate
    if rate is None or rate <= 0:
        raise MediaError(f"{label} does not declare a frame rate")
    time_base = Fraction(stream.time_base) if stream.time_base else None
    return refine_rate(Fraction(rate), stream.metadata.get(FPS_TAG), time_base)


def decode_range(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    *,
    label: str,
    start: int,
    end: int | None,
    formats: tuple[str, str],
    on_frame: Callable[[int, np.ndarray], None] | None = None,
) -> DecodedRange:
    """Decode frames [start, end) into arrays of formats[0] (8-bit) or formats[1].

    The output format is chosen from the first decoded frame so every frame of
    a range has the same dtype even if the decoder's format were to change.

    With `on_frame`, each frame of the range is passed on as
    ``on_frame(index - start, array)`` as soon as it is decoded and is not
    kept (`arrays` stays empty): a 4K shot can then be streamed to a
    FrameStore instead of being held in memory, list and stacked copy both.
    All checks (size change, truncation) apply the same either way.
    """
    arrays: list[np.ndarray] = []
    convert: Callable[[av.VideoFrame], np.ndarray] | None = None
    bit_depth = 8
    seen = 0
    first_size = (0, 0)
    last: av.VideoFrame | None = None
    first_pts: int | None = None
    timestamps: list[int | None] = []
    try:
        for frame in container.decode(stream):
            if convert is None:
                bit_depth = 16 if frame.format.components[0].bits > 8 else 8
                convert = _converter(formats[0] if bit_depth == 8 else formats[1], stream)
                first_size = (frame.width, frame.height)
                first_pts = frame.pts
            if (frame.width, frame.height) != first_size:
                raise MediaError(
                    f"{label} changes size at frame {seen}: "
                    f"{frame.width}x{frame.height} after {first_size[0]}x{first_size[1]}"
                )
            if seen >= start:
                timestamps.append(frame.pts)
                if on_frame is None:
                    arrays.append(convert(frame))
                else:
                    on_frame(seen - start, convert(frame))
            seen += 1
            last = frame
            if end is not None and seen >= end:
                break  # stop before decoding frames nobody asked for
    except av.FFmpegError as exc:
        raise MediaError(
            f"{label} is not a readable video: decoding failed after {seen} frames: "
            f"{_reason(exc)}"
        ) from exc
    if end is None and last is not None:
        _check_not_truncated(container, stream, label, first_pts, last, seen)
    time_base = Fraction(stream.time_base) if stream.time_base is not None else None
    return DecodedRange(
        arrays=arrays, frames_seen=seen, bit_depth=bit_depth,
        timestamps=tuple(timestamps), time_base=time_base,
    )


def _reason(exc: Exception) -> str:
    # FFmpeg errors stringify as "[Errno 1094995529] ...: 'path'"; the bare
    # strerror is what a user can act on, and the path is already in the label.
    reason = getattr(exc, "strerror", None)
    return reason if isinstance(reason, str) and reason else str(exc)


def _converter(
    pix_fmt: str, stream: av.video.stream.VideoStream
) -> Callable[[av.VideoFrame], np.ndarray]:
    # The stream header's tags stand in for a frame's unspecified ones (MOV keeps the matrix in
    # its header, not in each ProRes frame); the output writer converts fills back the same way.
    context = stream.codec_context
    matrix = getattr(context, "colorspace", None)
    colour_range = getattr(context, "color_range", None)

    def convert(frame: av.VideoFrame) -> np.ndarray:
        # Passing the frame's own colour range makes full-range ("JPEG") YUV
        # sources convert correctly; PyAV otherwise assumes limited range.
        options = {}
        src_matrix = frame_matrix(frame, _specified(matrix, UNSPECIFIED_MATRIX))
        if src_matrix is not None:
            options["src_colorspace"] = src_matrix
        src_range = frame_range(frame, _specified(colour_range, UNSPECIFIED_RANGE))
        if src_range is not None:
            options["src_color_range"] = src_range
        return frame.to_ndarray(format=pix_fmt, **options)

    return convert


def _specified(value: object, unspecified: int) -> int | None:
    return None if value is None or int(value) == unspecified else int(value)


def _check_not_truncated(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    label: str,
    first_pts: int | None,
    last: av.VideoFrame,
    seen: int,
) -> None:
    """Reject files that decode fewer frames than their header promises.

    A cut-off MKV (an interrupted copy or render) still opens and simply
    yields fewer frames; silently returning a shorter shot would misalign
    every mask after it.  The declared duration survives in the header, so
    compare it with where the last decoded frame ends.
    """
    if last.pts is None or first_pts is None or last.time_base is None:
        return
    if stream.duration and stream.time_base is not None:
        declared = Fraction(stream.duration) * stream.time_base
    elif container.duration and len(container.streams) == 1:
        # Only trusted for single-stream files: with audio, the container
        # duration may be the (longer) audio track.
        declared = Fraction(container.duration, av.time_base)
    else:
        return
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return
    frame_time = 1 / Fraction(rate)
    duration = Fraction(last.duration) * last.time_base if last.duration else frame_time
    end_time = Fraction(last.pts) * last.time_base + duration
    span = end_time - Fraction(first_pts) * last.time_base
    # Accept either reading of "duration" (absolute end or span from the first
    # frame) so that files with a start offset are never falsely rejected.
    decoded = max(end_time, span)
    if declared - decoded > frame_time / 2:
        missing = round((declared - decoded) / frame_time)
        raise MediaError(
            f"{label} appears truncated: decoded {seen} frames but its header "
            f"declares about {missing} more"
        )

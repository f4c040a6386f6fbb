"""Reading frames from a video container or a folder of still images.

`read_frames` returns the shot as one array; `read_frames_to_store` streams it
frame by frame into a FrameStore (memory or scratch disk), so shots too large
for RAM can be read with the same validation and the same error messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream
import numpy as np

from .decode import RGB_FORMATS, decode_range, open_video, stream_rate
from .errors import MediaError, quote
from .frame_store import DEFAULT_IN_MEMORY_LIMIT, FrameStore
from .images import header_rate, is_image_file, list_images, read_image_raw, to_rgb
from .masks import read_masks, read_masks_to_store
from .ranges import check_range_args, check_range_in_file
from .rates import require_fps

__all__ = [
    "DEFAULT_IMAGE_FPS",
    "FrameSequence",
    "StoredFrames",
    "read_frames",
    "read_frames_to_store",
    "read_masks",
    "read_masks_to_store",
]

# Still images carry no timing (a DPX header may state a rate: see _sequence_rate); 24 is the
# film rate most scanned archives use.
DEFAULT_IMAGE_FPS = Fraction(24)

# Capacity of a video's store when its container declares neither a frame count nor a duration
# (raw elementary streams): the store then grows by doubling.
_UNKNOWN_COUNT_CAPACITY = 16


def _check_layout(shape: tuple[int, ...], dtype: np.dtype, bit_depth: int, fps: Fraction) -> None:
    """The invariants shared by FrameSequence and StoredFrames."""
    if len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3), got {shape}")
    expected = {8: np.uint8, 16: np.uint16}.get(bit_depth)
    if expected is None or dtype != expected:
        raise ValueError(f"bit_depth {bit_depth} does not match frames dtype {dtype}")
    require_fps(fps)


# eq=False: the generated __eq__ would compare ndarrays with `==` and raise
# "truth value of an array is ambiguous"; identity semantics are what we want.
@dataclass(frozen=True, eq=False)
class FrameSequence:
    """Decoded frames (T, H, W, 3) RGB, uint8 (bit_depth 8) or uint16 (bit_depth 16)."""

    frames: np.ndarray
    fps: Fraction
    path: str
    bit_depth: int

    def __post_init__(self) -> None:
        _check_layout(self.frames.shape, self.frames.dtype, self.bit_depth, self.fps)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


@dataclass(frozen=True, eq=False)
class StoredFrames:
    """Like FrameSequence, with the frames in a FrameStore; close() deletes its scratch file."""

    store: FrameStore
    fps: Fraction
    path: str
    bit_depth: int
    # Each frame's presentation time in `time_base` units, for video sources (empty for
    # images, or where the stream gives no timestamps).
    timestamps: tuple[int, ...] = ()
    time_base: Fraction | None = None

    def __post_init__(self) -> None:
        _check_layout(self.store.shape, self.store.dtype, self.bit_depth, self.fps)

    @property
    def num_frames(self) -> int:
        return self.store.num_frames

    @property
    def height(self) -> int:
        return self.store.height

    @property
    def width(self) -> int:
        return self.store.width

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> StoredFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_frames(
    path: str | Path,
    start: int = 0,
    end: int | None = None,
    fps: Fraction | None = None,
) -> FrameSequence:
    """Read frames [start, end) of a video file, an image folder or a single image.

    For videos `fps` is optional and, when given, must equal the file's rate;
    for images (which have no timing) it sets the rate, default 24.
    """
    label = f"video {quote(path)}"
    source, files, requested = _locate(path, start, end, fps, label)
    if files is None:
        return _read_video(source, str(path), label, start, end, requested)
    check_range_in_file(len(files), start, end, label)
    frames = _read_images(files[start:end], label, _in_memory).to_array()
    rate = _sequence_rate(files, requested)
    return FrameSequence(frames=frames, fps=rate, path=str(path), bit_depth=_depth(frames))


def read_frames_to_store(
    path: str | Path,
    start: int = 0,
    end: int | None = None,
    fps: Fraction | None = None,
    *,
    scratch: Path | None = None,
    in_memory_limit: int = DEFAULT_IN_MEMORY_LIMIT,
    clamp_end: bool = False,
) -> StoredFrames:
    """`read_frames`, but decoded frame by frame into a FrameStore.

    The store is in memory when the frames fit in `in_memory_limit` bytes and
    otherwise a raw file in `scratch` (default: the system temporary folder),
    so memory stays at a few frames whatever the shot's size.  Arguments,
    validation and errors are those of `read_frames`.  Close the result (or
    use it as a context manager) to delete its scratch file.  With `clamp_end`
    an `end` past the file's last frame means "to the end" (handles at a reel's
    end), instead of an error.
    """
    label = f"video {quote(path)}"
    source, files, requested = _locate(path, start, end, fps, label)
    if files is None:
        return _read_video_to_store(
            source, str(path), label, start, end, requested, scratch, in_memory_limit, clamp_end
        )
    if clamp_end and end is not None and start < len(files):
        end = min(end, len(files))
    check_range_in_file(len(files), start, end, label)

    def allocate(shape: tuple[int, int, int, int], dtype: np.dtype) -> FrameStore:
        return FrameStore.create(shape, dtype, scratch=scratch, in_memory_limit=in_memory_limit)

    store = _read_images(files[start:end], label, allocate)
    rate = _sequence_rate(files, requested)
    return StoredFrames(store=store, fps=rate, path=str(path), bit_depth=_depth(store))


_Allocate = Callable[[tuple[int, int, int, int], np.dtype], FrameStore]


def _in_memory(shape: tuple[int, int, int, int], dtype: np.dtype) -> FrameStore:
    # Preallocating avoids holding every frame twice (list + stacked copy).
    return FrameStore.from_array(np.empty(shape, dtype))


def _locate(
    path: str | Path, start: int, end: int | None, fps: Fraction | None, label: str
) -> tuple[Path, list[Path] | None, Fraction | None]:
    """Validate the arguments; return (source, its image files or None for a video, fps)."""
    check_range_args(start, end, label)
    requested = require_fps(fps) if fps is not None else None
    source = Path(path)
    if not source.exists():
        raise MediaError(f"file not found: {quote(path)}")
    if source.is_dir():
        files = list_images(source)
        if not files:
            raise MediaError(f"{label} contains no frames (no PNG, TIFF, DPX or JPEG images)")
        return source, files, requested
    if is_image_file(source):
        return source, [source], requested
    return source, None, requested


def _sequence_rate(files: list[Path], requested: Fraction | None) -> Fraction:
    """An image sequence's rate: the one asked for (a scan's header rate is often wrong, and the
    user knows), else the one its first file's header states (DPX), else DEFAULT_IMAGE_FPS."""
    if requested is not None:
        return requested
    return header_rate(files[0]) or DEFAULT_IMAGE_FPS


def _video_rate(
    stream: av.video.stream.VideoStream, label: str, requested: Fraction | None
) -> Fraction:
    rate = stream_rate(stream, label)
    if requested is not None and requested != rate:
        raise MediaError(f"{label} has fps {rate} but fps {requested} was requested")
    return rate


def _read_video(
    source: Path,
    path: str,
    label: str,
    start: int,
    end: int | None,
    requested: Fraction | None,
) -> FrameSequence:
    with open_video(source, label) as (container, stream):
        rate = _video_rate(stream, label, requested)
        decoded = decode_range(
            container, stream, label=label, start=start, end=end, formats=RGB_FORMATS
        )
    # frames_seen is the file's length whenever the file ended before `end`,
    # which is exactly when the range checks below can fail.
    check_range_in_file(decoded.frames_seen, start, end, label)
    frames = np.stack(decoded.arrays)
    return FrameSequence(frames=frames, fps=rate, path=path, bit_depth=decoded.bit_depth)


def _read_video_to_store(
    source: Path,
    path: str,
    label: str,
    start: int,
    end: int | None,
    requested: Fraction | None,
    scratch: Path | None,
    in_memory_limit: int,
    clamp_end: bool = False,
) -> StoredFrames:
    sink = _GrowingStore(scratch, in_memory_limit)
    try:
        with open_video(source, label) as (container, stream):
            rate = _video_rate(stream, label, requested)
            # A range's length is exact; an open range is sized from the container's hint.
            sink.capacity = (
                end - start if end is not None else _capacity_hint(container, stream, start)
            )
            decoded = decode_range(
                container, stream, label=label, start=start, end=end, formats=RGB_FORMATS,
                on_frame=sink,
            )
        if clamp_end and end is not None and start < decoded.frames_seen:
            end = min(end, decoded.frames_seen)
        check_range_in_file(decoded.frames_seen, start, end, label)
        store = sink.finish()
    except BaseException:
        sink.discard()  # no scratch file outlives a failed read
        raise
    known = all(ts is not None for ts in decoded.timestamps)
    return StoredFrames(
        store=store, fps=rate, path=path, bit_depth=decoded.bit_depth,
        timestamps=tuple(decoded.timestamps) if known else (), time_base=decoded.time_base,
    )


def _capacity_hint(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, start: int
) -> int | None:
    """Frames expected from `start` to the end, from what the container declares.

    MP4/MOV/AVI store a frame count; Matroska and NUT only a duration, which
    may be rounded or (with other streams) longer than the video; raw streams
    declare nothing (None).  The count is a hint only: the store grows or is
    cut to what is actually decoded.  Erring high costs nothing (a store's
    unwritten frames take no memory) while a store that grows is copied if in
    memory, so a duration is rounded up and given one frame more: some muxers
    (NUT) leave the last frame's duration out of the stream's.
    """
    rate = stream.average_rate or stream.guessed_rate
    if stream.frames > 0:
        total = stream.frames
    elif rate and stream.duration and stream.time_base is not None:
        total = math.ceil(Fraction(stream.duration) * stream.time_base * Fraction(rate)) + 1
    elif rate and container.duration:
        total = math.ceil(Fraction(container.duration, av.time_base) * Fraction(rate)) + 1
    else:
        return None
    return max(1, total - start)


class _GrowingStore:
    """The on_frame sink of a video read: frames into a store that grows as needed.

    The store is created at the first frame, which gives its size and dtype.
    In memory it never grows past the limit: a store that needs more frames
    than fit moves to scratch disk, so a wrong (or missing) frame count never
    makes memory hold the shot, nor sends a shot that fits to disk.
    """

    def __init__(self, scratch: Path | None, in_memory_limit: int) -> None:
        self.capacity: int | None = None  # frames to allocate at the first frame; None: unknown
        self._scratch = scratch
        self._limit = in_memory_limit
        self._store: FrameStore | None = None
        self._count = 0

    def __call__(self, index: int, frame: np.ndarray) -> None:
        if self._store is None:
            capacity = self.capacity
            if capacity is None:  # start small, within the limit, and double from there
                capacity = max(1, min(_UNKNOWN_COUNT_CAPACITY, self._fit(frame.nbytes)))
            self._store = self._create((capacity, *frame.shape), frame.dtype)
        elif index >= self._store.num_frames:
            self._grow(index + 1)
        self._store.write(index, frame)
        self._count = index + 1

    def _fit(self, frame_bytes: int) -> int:
        """How many frames an in-memory store may hold."""
        return self._limit // frame_bytes

    def _create(self, shape: tuple[int, ...], dtype: np.dtype) -> FrameStore:
        return FrameStore.create(shape, dtype, scratch=self._scratch, in_memory_limit=self._limit)

    def _grow(self, needed: int) -> None:
        assert self._store is not None
        old = self._store
        # Doubling keeps the copies of an in-memory store linear in the shot's length.
        capacity = max(needed, 2 * old.num_frames)
        if old.on_disk:
            old.resize(capacity)  # only lengthens the scratch file
            return
        fit = self._fit(old.frame_bytes)
        if needed <= fit:
            old.resize(min(capacity, fit))
            return
        bigger = self._create((capacity, *old.shape[1:]), old.dtype)  # over the limit: to disk
        for index in range(self._count):
            bigger.write(index, old.frame(index))
        old.close()
        self._store = bigger

    def finish(self) -> FrameStore:
        """The store cut to the frames decoded (at least one, checked by the caller)."""
        assert self._store is not None
        self._store.resize(self._count)
        return self._store

    def discard(self) -> None:
        if self._store is not None:
            self._store.close()


def _read_images(files: list[Path], label: str, allocate: _Allocate) -> FrameStore:
    """Read same-sized, same-depth images into a store of (T, H, W, 3) frames."""
    first = to_rgb(read_image_raw(files[0], "image"))
    store = allocate((len(files), *first.shape), first.dtype)
    try:
        store.write(0, first)
        for index, file in enumerate(files[1:], start=1):
            image = to_rgb(read_image_raw(file, "image"))
            if image.shape != first.shape:
                raise MediaError(
                    f"image {quote(file)} in {label} is {image.shape[1]}x{image.shape[0]} "
                    f"but {quote(files[0])} is {first.shape[1]}x{first.shape[0]}"
                )
            if image.dtype != first.dtype:
                raise MediaError(
                    f"image {quote(file)} in {label} is {_depth(image)}-bit "
                    f"but {quote(files[0])} is {_depth(first)}-bit"
                )
            store.write(index, image)
    except BaseException:
        store.close()
        raise
    return store


def _depth(frames: np.ndarray | FrameStore) -> int:
    return 16 if frames.dtype == np.uint16 else 8

"""Reading hole masks that must line up frame for frame with a video.

A mask source is a mask video, a folder of per-frame mask images (numbered
like the video file, so the same [start, end) range applies), or one image
used for every frame.  Any mismatch with the video is reported naming both
files, because the user has to know which of the two is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .decode import GRAY_FORMATS, decode_range, open_video, stream_rate
from .errors import MediaError, quote
from .frame_store import DEFAULT_IN_MEMORY_LIMIT, FrameStore
from .images import is_image_file, list_images, read_image_raw
from .ranges import check_range_args


@dataclass(frozen=True)
class _Target:
    """What the mask has to match, plus the names used in messages."""

    mask: str  # "mask 'm.mkv'"
    video: str  # "video 'v.mp4'"
    num_frames: int
    height: int
    width: int
    start: int
    end: int | None

    @property
    def mask_for_video(self) -> str:
        """Label for problems of the mask file itself, still naming the video."""
        return f"{self.mask} (for {self.video})"

    def check_count(self, mask_total: int) -> None:
        """The mask file must cover the requested range of the video file."""
        if self.end is None:
            video_total = self.start + self.num_frames
            if mask_total != video_total:
                raise MediaError(
                    f"{self.mask} has {mask_total} frames but {self.video} has "
                    f"{video_total} (range {self.start}..{video_total})"
                )
        elif mask_total < self.end:
            raise MediaError(
                f"{self.mask} has {mask_total} frames but {self.video} range "
                f"{self.start}..{self.end} needs at least {self.end}"
            )

    def check_size(self, shape: tuple[int, ...], source: str) -> None:
        """`shape` is that of one binarised (H, W) frame."""
        height, width = shape[-2:]
        if (height, width) != (self.height, self.width):
            raise MediaError(
                f"{source} is {width}x{height} but {self.video} is "
                f"{self.width}x{self.height}"
            )


def read_masks(
    path: str | Path,
    *,
    num_frames: int,
    height: int,
    width: int,
    fps: Fraction | None,
    video_path: str,
    start: int = 0,
    end: int | None = None,
    threshold: int = 0,
    dilate: int = 0,
) -> np.ndarray:
    """Return bool holes (num_frames, height, width) for frames [start, end) of a video.

    A pixel is a hole when its value is > `threshold` (in the mask's own
    sample range, 0..255 or 0..65535; for colour images, in any channel).
    Holes are then grown by `dilate` pixels with an elliptical kernel.
    `fps` is compared exactly with a mask video's rate (None skips the check).
    """
    target, source = _prepare(
        path, num_frames, height, width, video_path, start, end, threshold, dilate
    )
    holes = np.empty((num_frames, height, width), dtype=bool)
    # The store is a (T, H, W, 1) view of `holes`: filling it fills the array.
    _fill(FrameStore.from_array(holes), source, target, fps, threshold, dilate)
    return holes


def read_masks_to_store(
    path: str | Path,
    *,
    num_frames: int,
    height: int,
    width: int,
    fps: Fraction | None,
    video_path: str,
    start: int = 0,
    end: int | None = None,
    threshold: int = 0,
    dilate: int = 0,
    scratch: Path | None = None,
    in_memory_limit: int = DEFAULT_IN_MEMORY_LIMIT,
) -> FrameStore:
    """`read_masks` into a (num_frames, height, width, 1) bool FrameStore, frame by frame.

    Same arguments, semantics and errors as `read_masks`; the store is in
    memory when it fits in `in_memory_limit` bytes, else a scratch file in
    `scratch` (default: the system temporary folder).  Close it when done.
    """
    target, source = _prepare(
        path, num_frames, height, width, video_path, start, end, threshold, dilate
    )
    store = FrameStore.create(
        (num_frames, height, width, 1), bool, scratch=scratch, in_memory_limit=in_memory_limit
    )
    try:
        _fill(store, source, target, fps, threshold, dilate)
    except BaseException:
        store.close()  # no scratch file outlives a failed read
        raise
    return store


def _prepare(
    path: str | Path,
    num_frames: int,
    height: int,
    width: int,
    video_path: str,
    start: int,
    end: int | None,
    threshold: int,
    dilate: int,
) -> tuple[_Target, Path]:
    """Check the arguments and that the mask exists, before anything is allocated."""
    target = _Target(
        mask=f"mask {quote(path)}",
        video=f"video {quote(video_path)}",
        num_frames=num_frames,
        height=height,
        width=width,
        start=start,
        end=end,
    )
    _check_args(target, threshold, dilate)
    source = Path(path)
    if not source.exists():
        raise MediaError(f"file not found: {quote(path)} (mask for {target.video})")
    return target, source


def _fill(
    store: FrameStore,
    source: Path,
    target: _Target,
    fps: Fraction | None,
    threshold: int,
    dilate: int,
) -> None:
    """Write every frame's holes, binarised and dilated one frame at a time.

    Per-frame dilation gives exactly what dilating the whole stack would
    (the kernel is 2-D), without a second full-size copy of the holes.
    """
    if source.is_file() and is_image_file(source):
        # One still mask for the whole shot: binarise and dilate once, then
        # repeat, instead of doing identical work per frame.
        hole = binarise(read_image_raw(source, "mask", f" (for {target.video})"), threshold)
        target.check_size(hole.shape, target.mask)
        hole = dilate_holes(hole[None], dilate)[0]
        for index in range(target.num_frames):
            store.write(index, hole)
        return

    def put(index: int, hole: np.ndarray) -> None:
        store.write(index, dilate_holes(hole[None], dilate)[0])

    if source.is_dir():
        _read_mask_folder(source, target, threshold, put)
    else:
        _read_mask_video(source, target, fps, threshold, put)


def _check_args(target: _Target, threshold: int, dilate: int) -> None:
    check_range_args(target.start, target.end, target.video)
    if target.end is not None and target.end - target.start != target.num_frames:
        raise ValueError(
            f"num_frames {target.num_frames} disagrees with range "
            f"{target.start}..{target.end}"
        )
    if target.num_frames < 1 or target.height < 1 or target.width < 1:
        raise ValueError("num_frames, height and width must be positive")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if dilate < 0:
        raise ValueError(f"dilate must be >= 0, got {dilate}")


_PutHoles = Callable[[int, np.ndarray], None]


def _read_mask_folder(folder: Path, target: _Target, threshold: int, put: _PutHoles) -> None:
    files = list_images(folder)
    target.check_count(len(files))
    selected = files[target.start : target.start + target.num_frames]
    for index, file in enumerate(selected):
        raw = read_image_raw(file, "mask image", f" in {target.mask_for_video}")
        hole = binarise(raw, threshold)
        target.check_size(hole.shape, f"mask image {quote(file)} in {target.mask}")
        put(index, hole)


def _read_mask_video(
    source: Path, target: _Target, fps: Fraction | None, threshold: int, put: _PutHoles
) -> None:
    # Count and size are checked once decoding is over, in that order, so a
    # mask of the wrong length is reported as such even if its size is wrong
    # too; until then frames that do not fit the target are not stored.  The
    # decoder guarantees every frame has the first frame's size.
    size: tuple[int, ...] | None = None

    def on_frame(index: int, gray: np.ndarray) -> None:
        nonlocal size
        size = gray.shape[:2]
        if size == (target.height, target.width) and index < target.num_frames:
            put(index, binarise(gray, threshold))

    with open_video(source, target.mask_for_video) as (container, stream):
        if fps is not None:
            rate = stream_rate(stream, target.mask_for_video)
            if rate != fps:
                raise MediaError(
                    f"{target.mask} has fps {rate} but {target.video} has {fps}"
                )
        decoded = decode_range(
            container,
            stream,
            label=target.mask_for_video,
            start=target.start,
            end=target.end,
            formats=GRAY_FORMATS,
            on_frame=on_frame,
        )
    target.check_count(decoded.frames_seen)
    if size is not None:
        target.check_size(size, target.mask)


def binarise(image: np.ndarray, threshold: int) -> np.ndarray:
    """(H, W) or (H, W, C) samples -> (H, W) bool, hole where any colour > threshold."""
    if image.ndim == 2:
        return image > threshold
    colour = image[:, :, :3] if image.shape[2] == 4 else image  # alpha is not a hole signal
    holes: np.ndarray = np.any(colour > threshold, axis=2)
    return holes


def dilate_holes(holes: np.ndarray, radius: int) -> np.ndarray:
    """Grow holes (T, H, W) by `radius` pixels with an elliptical (disc) kernel."""
    if radius == 0:
        return np.ascontiguousarray(holes)
    size = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    grown = np.empty(holes.shape, dtype=bool)
    for index, hole in enumerate(holes):
        # OpenCV has no bool type; a bool array reinterpreted as uint8 is 0/1.
        grown[index] = cv2.dilate(np.ascontiguousarray(hole).view(np.uint8), kernel) != 0
    return grown

"""Reading hole masks that must line up frame for frame with a video.

A mask source is a mask video, a folder of per-frame mask images (numbered
like the video file, so the same [start, end) range applies), or one image
used for every frame.  Any mismatch with the video is reported naming both
files, because the user has to know which of the two is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .decode import GRAY_FORMATS, decode_range, open_video, stream_rate
from .errors import MediaError, quote
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

    def check_size(self, holes: np.ndarray, source: str) -> None:
        height, width = holes.shape[-2:]
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
    mask_label = f"mask {quote(path)}"
    target = _Target(
        mask=mask_label,
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
    if source.is_file() and is_image_file(source):
        # One still mask for the whole shot: binarise and dilate once, then
        # repeat, instead of doing identical work per frame.
        hole = binarise(read_image_raw(source, "mask", f" (for {target.video})"), threshold)
        target.check_size(hole, mask_label)
        hole = dilate_holes(hole[None], dilate)[0]
        return np.ascontiguousarray(np.broadcast_to(hole, (num_frames, height, width)))
    if source.is_dir():
        holes = _read_mask_folder(source, target, threshold)
    else:
        holes = _read_mask_video(source, target, fps, threshold)
    return dilate_holes(holes, dilate)


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


def _read_mask_folder(folder: Path, target: _Target, threshold: int) -> np.ndarray:
    files = list_images(folder)
    target.check_count(len(files))
    selected = files[target.start : target.start + target.num_frames]
    holes = np.empty((len(selected), target.height, target.width), dtype=bool)
    for index, file in enumerate(selected):
        raw = read_image_raw(file, "mask image", f" in {target.mask_for_video}")
        hole = binarise(raw, threshold)
        target.check_size(hole, f"mask image {quote(file)} in {target.mask}")
        holes[index] = hole
    return holes


def _read_mask_video(
    source: Path, target: _Target, fps: Fraction | None, threshold: int
) -> np.ndarray:
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
        )
    target.check_count(decoded.frames_seen)
    holes = np.stack([binarise(gray, threshold) for gray in decoded.arrays])
    target.check_size(holes, target.mask)
    return holes


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

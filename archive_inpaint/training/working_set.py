"""The shot as the trainer sees it: frames and holes at the working size, padded to the network's
stride, resident on the training device.

Frames are stored as float16 in [-1, 1] (half the memory of float32; the network's working copy
does not need more precision than that, and the output composite takes known pixels from the
original frames, never from here). Padding is by reflection so the network sees plausible content
at the border, and ``valid_height``/``valid_width`` say which part is real.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.models.iivi_net import DOWNSAMPLE_FACTOR


def working_size(height: int, width: int, working_long_side: int) -> tuple[int, int]:
    """(h, w) the network works at: the frame itself when it fits, else scaled to the long side."""
    scale = min(1.0, working_long_side / max(height, width))
    if scale == 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def padded_size(height: int, width: int) -> tuple[int, int]:
    def up(n: int) -> int:
        return -(-n // DOWNSAMPLE_FACTOR) * DOWNSAMPLE_FACTOR

    return up(height), up(width)


def to_unit_range(frames: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 in [-1, 1]."""
    peak = float(np.iinfo(frames.dtype).max)
    return frames.astype(np.float32) * (2.0 / peak) - 1.0


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    if frame.shape[:2] == (height, width):
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def resize_hole(hole: np.ndarray, height: int, width: int) -> np.ndarray:
    """Downscale a bool hole so that any working pixel touching a hole pixel is a hole: a fill
    must never be asked to reproduce a pixel that was partly hidden."""
    if hole.shape == (height, width):
        return hole
    coverage = cv2.resize(hole.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return coverage > 0.0


@dataclass
class WorkingSet:
    images: torch.Tensor  # (T, 3, Hp, Wp) float16 in [-1, 1]
    holes: torch.Tensor  # (T, 1, Hp, Wp) bool, True = real hole
    valid_height: int
    valid_width: int
    source_height: int
    source_width: int

    @property
    def num_frames(self) -> int:
        return self.images.shape[0]

    @property
    def is_resampled(self) -> bool:
        return (self.valid_height, self.valid_width) != (self.source_height, self.source_width)

    def frames_with_holes(self) -> torch.Tensor:
        """Indices of frames whose hole is not empty: the pool pseudo-holes are drawn from."""
        return torch.nonzero(self.holes.flatten(1).any(dim=1)).flatten()

    def fingerprint(self) -> str:
        """Content hash of what training sees; a checkpoint is only resumed for the same shot."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(repr((tuple(self.images.shape), self.source_height, self.source_width)).encode())
        digest.update(self.images.cpu().numpy().tobytes())
        digest.update(np.packbits(self.holes.cpu().numpy()).tobytes())
        return digest.hexdigest()


def build_working_set(
    frames: np.ndarray | FrameStore,
    holes: np.ndarray | FrameStore,
    working_long_side: int,
    device: torch.device,
) -> WorkingSet:
    """frames (T, H, W, 3) uint8/uint16, holes (T, H, W) bool (or (T, H, W, 1) in a FrameStore)
    -> a padded WorkingSet on ``device``. Frames are read one at a time."""
    num_frames, height, width = holes.shape[:3]
    work_h, work_w = working_size(height, width, working_long_side)
    pad_h, pad_w = padded_size(work_h, work_w)
    images = np.empty((num_frames, 3, pad_h, pad_w), dtype=np.float16)
    work_holes = np.zeros((num_frames, 1, pad_h, pad_w), dtype=bool)
    for index in range(num_frames):
        small = to_unit_range(resize_frame(frames[index], work_h, work_w))
        padded = np.pad(
            small, ((0, pad_h - work_h), (0, pad_w - work_w), (0, 0)), mode="reflect"
        ) if (pad_h, pad_w) != (work_h, work_w) else small
        images[index] = padded.transpose(2, 0, 1)
        hole = np.asarray(holes[index])
        hole = hole[..., 0] if hole.ndim == 3 else hole
        work_holes[index, 0, :work_h, :work_w] = resize_hole(hole.astype(bool), work_h, work_w)
    return WorkingSet(
        images=torch.from_numpy(images).to(device),
        holes=torch.from_numpy(work_holes).to(device),
        valid_height=work_h,
        valid_width=work_w,
        source_height=height,
        source_width=width,
    )

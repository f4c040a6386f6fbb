"""Boundary-aware sampling (BAS): where the patch stages spend their training steps.

A patch far from any hole teaches the patch stage to copy known pixels; the pixels a fill
depends on are the ones around the hole, and that is also where the prior from the coarser
stage is least reliable. So a share ``probability`` of patch centres is drawn uniformly from a
band around the hole boundary (the hole dilated by ``band_width`` px minus the hole eroded by
``band_width`` px), over all frames of the shot, and the rest uniformly from the whole shot, so
that the stage still sees every kind of content there is to propagate from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from archive_inpaint.inference.tiles import Tile


def boundary_band(hole: np.ndarray, band_width: int) -> np.ndarray:
    """(H, W) bool: pixels within ``band_width`` px of the hole boundary, on either side."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_width + 1, 2 * band_width + 1))
    as_bytes = hole.astype(np.uint8)
    # Erosion treats outside the frame as hole, so a hole touching the frame edge has no
    # boundary there: the frame edge is not where content is missing.
    eroded = cv2.erode(as_bytes, kernel, borderType=cv2.BORDER_REPLICATE)
    return (cv2.dilate(as_bytes, kernel) > 0) & ~(eroded > 0)


@dataclass(frozen=True)
class PatchDraw:
    frame: int
    tile: Tile
    from_band: bool  # which branch drew the centre (for diagnostics and tests)
    centre: tuple[int, int]


class BoundaryAwareSampler:
    """Draws patch boxes of ``patch_height`` x ``patch_width`` in frames of ``height`` x ``width``."""

    def __init__(
        self,
        band_points: list[np.ndarray],
        height: int,
        width: int,
        patch_height: int,
        patch_width: int,
        probability: float,
    ) -> None:
        self.height, self.width = height, width
        self.patch_height, self.patch_width = min(patch_height, height), min(patch_width, width)
        self.num_frames = len(band_points)
        counts = np.array([len(points) for points in band_points], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self._points = (
            np.concatenate(band_points) if counts.sum() else np.zeros((0, 2), dtype=np.int32)
        )
        # With no hole boundary anywhere (an empty mask) every draw is uniform.
        self.probability = probability if len(self._points) else 0.0

    @classmethod
    def from_holes(
        cls,
        holes: Iterable[np.ndarray],
        band_width: int,
        patch_height: int,
        patch_width: int,
        probability: float,
    ) -> BoundaryAwareSampler:
        """Build from each frame's (H, W) bool hole at the stage's resolution, one at a time (only
        the band's coordinates are kept, as int32: a small share of a 4K frame)."""
        points: list[np.ndarray] = []
        height = width = 0
        for hole in holes:
            height, width = hole.shape
            points.append(np.argwhere(boundary_band(hole, band_width)).astype(np.int32))
        return cls(points, height, width, patch_height, patch_width, probability)

    @property
    def band_pixels(self) -> int:
        return len(self._points)

    def frames_with_band(self) -> list[int]:
        """Frames that have a hole boundary: where pseudo-holes can be cut from."""
        return [frame for frame in range(self.num_frames) if self._offsets[frame + 1] > self._offsets[frame]]

    def band_point(self, frame: int, generator: torch.Generator) -> tuple[int, int] | None:
        """A random band pixel of ``frame`` (None when the frame has no hole boundary)."""
        begin, end = self._offsets[frame], self._offsets[frame + 1]
        if begin == end:
            return None
        pick = begin + int(torch.randint(int(end - begin), (1,), generator=generator))
        y, x = self._points[pick]
        return int(y), int(x)

    def draw(self, count: int, generator: torch.Generator) -> list[PatchDraw]:
        draws = []
        for _ in range(count):
            from_band = bool(torch.rand((), generator=generator) < self.probability)
            if from_band:
                pick = int(torch.randint(len(self._points), (1,), generator=generator))
                frame = int(np.searchsorted(self._offsets, pick, side="right") - 1)
                y, x = (int(v) for v in self._points[pick])
            else:
                frame = int(torch.randint(self.num_frames, (1,), generator=generator))
                y = int(torch.randint(self.height, (1,), generator=generator))
                x = int(torch.randint(self.width, (1,), generator=generator))
            draws.append(PatchDraw(frame, self.box_around(y, x), from_band, (y, x)))
        return draws

    def box_around(self, y: int, x: int) -> Tile:
        """The patch centred on (y, x), moved inside the frame where it would leave it."""
        top = min(max(y - self.patch_height // 2, 0), self.height - self.patch_height)
        left = min(max(x - self.patch_width // 2, 0), self.width - self.patch_width)
        return Tile(top, left, self.patch_height, self.patch_width)

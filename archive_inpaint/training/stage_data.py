"""What a patch stage reads: image and hole regions of the shot at the stage's resolution, and
the previous stage's result resampled onto a patch (the prior).

Frames stay in their ``FrameStore`` at their own dtype; only the regions a step needs are read
and converted to float, so memory is bounded by the patch size, not the frame size.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from archive_inpaint.inference.tiles import Tile
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.training.stages import Stage
from archive_inpaint.training.working_set import resize_hole, to_unit_range


class StageData:
    """Regions of ``frames`` (T, H, W, 3) and ``holes`` (T, H, W, 1) at ``stage``'s resolution."""

    def __init__(self, frames: FrameStore, holes: FrameStore, stage: Stage) -> None:
        self.frames, self.holes, self.stage = frames, holes, stage
        self.native = (stage.height, stage.width) == (frames.height, frames.width)

    @property
    def num_frames(self) -> int:
        return self.frames.num_frames

    def _source_box(self, tile: Tile) -> tuple[int, int, int, int]:
        """The native-resolution box that covers ``tile`` (top, left, bottom, right)."""
        sy, sx = self.frames.height / self.stage.height, self.frames.width / self.stage.width
        return (
            math.floor(tile.top * sy),
            math.floor(tile.left * sx),
            min(self.frames.height, math.ceil(tile.bottom * sy)),
            min(self.frames.width, math.ceil(tile.right * sx)),
        )

    def image(self, frame: int, tile: Tile) -> np.ndarray:
        """(h, w, 3) float32 in [-1, 1]."""
        if self.native:
            region = self.frames.region(frame, tile.top, tile.left, tile.height, tile.width)
        else:
            top, left, bottom, right = self._source_box(tile)
            region = cv2.resize(
                self.frames.region(frame, top, left, bottom - top, right - left),
                (tile.width, tile.height),
                interpolation=cv2.INTER_AREA,
            )
        return to_unit_range(region)

    def hole(self, frame: int, tile: Tile) -> np.ndarray:
        """(h, w) bool; a stage pixel is a hole if any native pixel under it is."""
        if self.native:
            return self.holes.region(frame, tile.top, tile.left, tile.height, tile.width)[..., 0].astype(bool)
        top, left, bottom, right = self._source_box(tile)
        region = self.holes.region(frame, top, left, bottom - top, right - left)[..., 0].astype(bool)
        return resize_hole(region, tile.height, tile.width)

    def whole_hole(self, frame: int) -> np.ndarray:
        return self.hole(frame, Tile(0, 0, self.stage.height, self.stage.width))


def resample_onto(
    source: torch.Tensor,
    source_origin: tuple[int, int],
    source_stage_size: tuple[int, int],
    target_stage_size: tuple[int, int],
    tiles: list[Tile],
) -> torch.Tensor:
    """Bicubic resampling of ``source`` (N, C, h, w) onto each of ``tiles`` (one per item).

    ``source`` is the region of a lower-resolution stage whose top-left pixel is
    ``source_origin`` in a frame of ``source_stage_size``; each tile is a box of the
    higher-resolution stage of ``target_stage_size``. Pixel centres are mapped exactly as a
    whole-frame resize would map them (align_corners=False), so a tile's prior is the same crop
    of the upsampled frame whichever box it is computed through: tiles agree where they overlap.
    """
    (src_h, src_w), (dst_h, dst_w) = source_stage_size, target_stage_size
    oy, ox = source_origin
    region_h, region_w = source.shape[-2:]
    grids = []
    for tile in tiles:
        ys = (torch.arange(tile.top, tile.bottom, dtype=torch.float64) + 0.5) * (src_h / dst_h) - 0.5
        xs = (torch.arange(tile.left, tile.right, dtype=torch.float64) + 0.5) * (src_w / dst_w) - 0.5
        # Into the region's normalised coordinates (align_corners=False: -1 and 1 are its edges).
        ny = (ys - oy + 0.5) / region_h * 2 - 1
        nx = (xs - ox + 0.5) / region_w * 2 - 1
        grid_y, grid_x = torch.meshgrid(ny, nx, indexing="ij")
        grids.append(torch.stack([grid_x, grid_y], dim=-1))
    grid = torch.stack(grids).to(device=source.device, dtype=source.dtype)
    resampled = F.grid_sample(source, grid, mode="bicubic", padding_mode="border", align_corners=False)
    return resampled.clamp(-1.0, 1.0)


def place_hole(hole: np.ndarray, tile: Tile, stage_size: tuple[int, int], lower_size: tuple[int, int]) -> tuple[Tile, np.ndarray]:
    """A hole on ``tile`` of a stage, expressed at a lower stage: the covering box there and the
    hole inside it (any lower pixel touching a hole pixel is a hole)."""
    sy, sx = lower_size[0] / stage_size[0], lower_size[1] / stage_size[1]
    top, left = math.floor(tile.top * sy), math.floor(tile.left * sx)
    bottom = min(lower_size[0], max(top + 1, math.ceil(tile.bottom * sy)))
    right = min(lower_size[1], max(left + 1, math.ceil(tile.right * sx)))
    box = Tile(top, left, bottom - top, right - left)
    return box, resize_hole(hole, box.height, box.width)

"""Filling a shot at full resolution through the last patch stage, tile by tile.

Per frame: the tiles of the grid that touch the (dilated) hole are predicted in batches by the
last stage (which asks the stages below for its prior), blended, and composited into the
frame's hole pixels (and, with a feather, blended into the pixels around the hole). Frames
are read from and written to ``FrameStore``s one at a time.
"""

from __future__ import annotations

import numpy as np
import torch

from archive_inpaint.inference.feather import blend_region
from archive_inpaint.inference.fill import composite
from archive_inpaint.inference.stage_predictors import PatchStagePredictor
from archive_inpaint.media.frame_store import FrameStore


def fill_frame_tiled(
    predictor: PatchStagePredictor,
    frame_id: int,
    frame: np.ndarray,
    hole: np.ndarray,
    all_tiles: bool = False,
    feather: int = 0,
) -> tuple[np.ndarray, int]:
    """One native frame (H, W, 3) filled inside ``hole`` (H, W) by the last stage; returns it and
    the tile count. ``all_tiles`` computes every tile of the grid (for benchmarking what
    mask-only tiling saves). ``feather`` > 0 blends the fill into the ``feather`` px around the
    hole (see ``composite``)."""
    # The tiles are chosen by the pixels the composite changes: with a feather that is the band
    # around the hole as well, and a band pixel outside every computed tile would have no fill
    # (or one blended from fewer tiles than the full grid gives it). The hole only selects tiles
    # here; the stage reads its real hole from its own data.
    changed = hole if feather == 0 else blend_region(hole, feather)
    blended, count = predictor.fill_tiles(frame_id, changed, all_tiles)
    if blended is None:
        return frame.copy(), 0
    # Every changed pixel lies in a computed tile, so the composite only touches the tiles' box
    # (which holds the whole hole, so the feather weights on it are the frame's own); a
    # full-frame float buffer would cost 100 MB at 4K.
    peak = float(np.iinfo(frame.dtype).max)
    rows, cols = blended.rows_and_cols()
    fill = (np.clip(blended.values, -1.0, 1.0) + 1.0) * (peak / 2.0)
    result = frame.copy()
    result[rows, cols] = composite(frame[rows, cols], fill, hole[rows, cols], feather)
    return result, count


@torch.no_grad()
def fill_shot_tiled(
    predictor: PatchStagePredictor,
    frames: FrameStore,
    holes: FrameStore,
    output: FrameStore,
    feather: int = 0,
) -> int:
    """Fill every frame of ``frames`` into ``output``; returns the number of tiles computed.
    ``feather`` > 0 blends each fill into the ``feather`` px around its hole."""
    predictor.network.eval()
    computed = 0
    for index in range(frames.num_frames):
        hole = holes.frame(index)[..., 0].astype(bool)
        frame = frames.frame(index)
        if hole.any():
            frame, count = fill_frame_tiled(predictor, index, frame, hole, feather=feather)
            computed += count
        output.write(index, frame)
    return computed

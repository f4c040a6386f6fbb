"""Grid inference: overlapping tiles, blended with linear ramps, computed only where the hole is.

A patch-trained stage cannot see a whole 4K frame at once, so it fills tile by tile. Tiles
overlap by ``overlap`` px and each tile's prediction is weighted by a ramp that rises from
near 0 at a shared border to 1 at ``overlap`` px inside it, so neighbouring tiles hand over
gradually and a tile's own error never shows as a step (a seam) at its border. On the frame's
edges there is no neighbour to hand over to, so the weight stays 1 there.

Only tiles that touch the hole (dilated by a margin) are computed: cost follows the mask area,
not the frame area. Every hole pixel lies in at least one such tile, and every tile covering a
hole pixel touches the hole, so each hole pixel gets exactly the blend it would get if every
tile of the grid were computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Tile:
    top: int
    left: int
    height: int
    width: int

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """The tile's (rows, columns) in its frame, for indexing an array with."""
        return slice(self.top, self.bottom), slice(self.left, self.right)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, length) with tiles of ``tile`` px overlapping by at least
    ``overlap`` px; the last tile ends exactly at ``length`` (so no tile leaves the frame)."""
    if tile >= length:
        return [0]
    stride = tile - overlap
    count = -(-(length - tile) // stride) + 1
    # Spread the tiles evenly so every overlap is at least ``overlap``.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    tile_h, tile_w = min(tile, height), min(tile, width)
    return [
        Tile(top, left, tile_h, tile_w)
        for top in tile_starts(height, tile_h, overlap)
        for left in tile_starts(width, tile_w, overlap)
    ]


def _ramp(length: int, overlap: int, rise_at_start: bool, fall_at_end: bool) -> np.ndarray:
    position = np.arange(length, dtype=np.float64) + 0.5
    weight = np.ones(length)
    if overlap > 0:
        if rise_at_start:
            weight = np.minimum(weight, position / overlap)
        if fall_at_end:
            weight = np.minimum(weight, (length - position) / overlap)
    return weight


def tile_weights(tile: Tile, height: int, width: int, overlap: int) -> np.ndarray:
    """(h, w) blending weights of ``tile`` in a ``height`` x ``width`` frame: all positive, ramped
    only on sides that face another tile."""
    rows = _ramp(tile.height, overlap, tile.top > 0, tile.bottom < height)
    cols = _ramp(tile.width, overlap, tile.left > 0, tile.right < width)
    return np.outer(rows, cols)


def tiles_touching(hole: np.ndarray, tiles: Sequence[Tile], margin: int) -> list[Tile]:
    """The tiles that intersect ``hole`` (H, W) bool dilated by ``margin`` px."""
    rows, cols = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
    if not len(rows):
        return []
    # Work in the hole's bounding box (grown by the margin): at 4K a full-frame dilation or
    # summed-area table would cost more memory than the fill itself.
    top, bottom = max(0, rows[0] - margin), min(hole.shape[0], rows[-1] + margin + 1)
    left, right = max(0, cols[0] - margin), min(hole.shape[1], cols[-1] + margin + 1)
    box = hole[top:bottom, left:right].astype(np.uint8)
    if margin > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        box = cv2.dilate(np.pad(box, margin), kernel)[margin:-margin, margin:-margin]
    touching = []
    for tile in tiles:
        y0, y1 = max(tile.top, top), min(tile.bottom, bottom)
        x0, x1 = max(tile.left, left), min(tile.right, right)
        if y0 < y1 and x0 < x1 and box[y0 - top : y1 - top, x0 - left : x1 - left].any():
            touching.append(tile)
    return touching


@dataclass
class BlendedRegion:
    """The blended prediction over the bounding box of the computed tiles."""

    top: int
    left: int
    values: np.ndarray  # (h, w, C) float32

    def rows_and_cols(self) -> tuple[slice, slice]:
        """Where ``values`` lies in the frame."""
        height, width = self.values.shape[:2]
        return slice(self.top, self.top + height), slice(self.left, self.left + width)


# Predicts a batch of tiles: -> (N, h, w, C) float array, one prediction per tile.
TilePredictor = Callable[[list[Tile]], np.ndarray]


def blend_tiles(
    height: int,
    width: int,
    tiles: Sequence[Tile],
    predict: TilePredictor,
    overlap: int,
    batch_size: int,
) -> BlendedRegion | None:
    """Predict ``tiles`` in batches (all of one size) and blend them; None when there are none.

    Memory is the bounding box of the tiles, not the frame: a small hole in a 4K frame costs a
    few tiles' worth of accumulators.
    """
    if not tiles:
        return None
    top = min(t.top for t in tiles)
    left = min(t.left for t in tiles)
    bottom = max(t.bottom for t in tiles)
    right = max(t.right for t in tiles)
    total: np.ndarray | None = None
    # float32 accumulators: at 4K a float64 box over many tiles would double the fill's memory.
    weight_sum = np.zeros((bottom - top, right - left, 1), dtype=np.float32)
    for begin in range(0, len(tiles), batch_size):
        batch = list(tiles[begin : begin + batch_size])
        predictions = predict(batch)
        if total is None:
            total = np.zeros((bottom - top, right - left, predictions.shape[-1]), dtype=np.float32)
        for tile, prediction in zip(batch, predictions):
            weight = tile_weights(tile, height, width, overlap)[..., None].astype(np.float32)
            rows = slice(tile.top - top, tile.bottom - top)
            cols = slice(tile.left - left, tile.right - left)
            total[rows, cols] += weight * prediction
            weight_sum[rows, cols] += weight
    total /= np.maximum(weight_sum, np.float32(1e-12))  # uncovered pixels: 0 / tiny = 0
    return BlendedRegion(top=top, left=left, values=total)

"""A whole-frame fill takes the content other frames show of its holes (inference/propagation.py),
blended so that it joins up, within a frame and from one frame to the next.

Why blend: taking each hole pixel from the single nearest frame that shows it leaves steps where
the supplying frame changes: from pixel to pixel (the nearer frame has its own hole or an
occlusion there), at the edge of what no frame shows (the network's fill remains there), and
from one output frame to the next (frame t takes t-1, frame t+1 takes t: different pixels,
resampled differently, with their own grain). Measured on carphone (BENCHMARKS.md), the pasted
fill was less consistent from frame to frame than the truth.

How, per hole pixel: the nearest frame before and the nearest frame after that show it (each
brought to this frame's lighting) are averaged, with weights falling with their distance in
time, so the mix shifts gradually as the shot goes on rather than switching. Each direction's
weight also ramps down to zero over ``feather`` px towards the hole pixels it does not cover, and
where neither direction covers a pixel the network's own fill takes over along the same ramp:
every change of source is a ramp, never a step.

Where the content differs from the network's fill at low frequencies, the blend fades back to
the network's fill (``AgreementCheck``, agreement.py: content moving on its own behind a hole is
fetched from the wrong place by the completed flow); where both directions found content, by how
far the two differ from each other instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from archive_inpaint.inference.agreement import AgreementCheck, SideContent
from archive_inpaint.inference.propagation import (
    Found,
    ShotMotion,
    apply_lighting,
    gains_per_source,
    lighting_ring,
    nearness_weighted,
    propagate,
)
from archive_inpaint.inference.tiles import Tile, tile_grid, tiles_touching
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.training.stage_data import StageData
from archive_inpaint.training.stages import Stage

# Tiles for pasting into a whole frame: propagation is per pixel, so tiles need no overlap (the
# grid may still overlap them to fit the frame); they only bound the memory of the coordinate
# maps (a whole 4K frame's would be hundreds of MB).
PASTE_TILE = 256


@dataclass
class _TileCandidates:
    tile: Tile
    directions: list[Found]  # one per direction looked in (earlier frames, later frames), or one


def paste_propagated(
    motion: ShotMotion,
    frames: FrameStore,
    holes: FrameStore,
    output: FrameStore,
    lighting: bool = True,
    blend: bool = True,
    feather: int = 4,
    agreement: AgreementCheck | None = None,
) -> float:
    """Replace the hole pixels of ``output`` (the filled frames) with the content other frames
    show, where found; returns the share of hole pixels that got it. Only hole pixels change,
    so every other pixel of ``output`` (the input's, or a feathered band) stays as it was.

    ``lighting``: content from each source frame is brought to this frame's lighting first (a
    per-channel gain measured on the known pixels around the hole that both frames show; see
    ``propagation.lighting_gains``): without it, a frame of another exposure pastes a patch of it.
    ``blend``: the nearest source before and after are averaged, with ``feather`` px ramps
    between sources and towards the network's fill (module docstring); without it, each pixel
    is the nearest source's, as it is. ``agreement`` (blended only): content is faded back to the
    network's fill where the two differ at low frequencies (``AgreementCheck``).
    """
    if feather < 1:
        raise ValueError(f"feather must be at least 1 px, got {feather}")
    data = StageData(frames, holes, Stage(0, frames.height, frames.width))
    grid = tile_grid(frames.height, frames.width, PASTE_TILE, 0)
    peak = float(np.iinfo(output.dtype).max)
    found_pixels = total = 0
    for index in range(frames.num_frames):
        hole = holes.frame(index)[..., 0].astype(bool)
        if not hole.any():
            continue
        orders = motion.sources_by_direction(index) if blend else [motion.sources(index)]
        pieces = _candidates(motion, data, index, hole, tiles_touching(hole, grid, 0), orders, lighting)
        # Per direction, the frame's hole pixels it found content for (tiles may overlap).
        coverage = [np.zeros_like(hole) for _ in orders]
        for piece in pieces:
            for covered, found in zip(coverage, piece.directions):
                covered[piece.tile.slices] |= found.valid
        filled = output.frame(index)
        # Every tile's values first, then written: tiles may overlap (the grid spreads them to
        # fit the frame), and a blend must read the network's fill, not a neighbour's result.
        if blend:
            margin = max(feather, 0 if agreement is None else agreement.reach) + 1
            ramps = _coverage_ramps(hole, coverage, feather, margin)
            pasted = _blended(index, pieces, ramps, filled, peak, agreement)
        else:
            nearest = [piece.directions[0] for piece in pieces]
            pasted = [(piece, found.valid, found.candidate[found.valid]) for piece, found in zip(pieces, nearest)]
        for piece, covered, values in pasted:
            region = filled[piece.tile.slices]
            region[covered] = np.clip(np.rint((values + 1.0) * (peak / 2.0)), 0, peak).astype(output.dtype)
        found_pixels += int(np.logical_or.reduce(coverage).sum())
        total += int(hole.sum())
        output.write(index, filled)
    return found_pixels / total if total else 0.0


def _candidates(
    motion: ShotMotion,
    data: StageData,
    frame: int,
    hole: np.ndarray,
    tiles: list[Tile],
    orders: list[list[int]],
    lighting: bool,
) -> list[_TileCandidates]:
    """Per tile touching ``hole``, the content found looking in each order of source frames, each
    source's content brought to this frame's lighting (gains from the whole frame's ring of known
    pixels around the hole, all tiles and directions together) when ``lighting``."""
    around = lighting_ring(hole) if lighting else None
    pieces = []
    for tile in tiles:
        ring = None if around is None else around[tile.slices]
        wanted = hole[tile.slices]
        found = [propagate(motion, data, frame, tile, wanted, around=ring, sources=order) for order in orders]
        pieces.append(_TileCandidates(tile, found))
    if lighting:
        gains = gains_per_source([found for piece in pieces for found in piece.directions])
        for piece in pieces:
            for found in piece.directions:
                apply_lighting(found, gains)
    return pieces


@dataclass
class _Ramps:
    """Per direction, weights over the hole's box (grown by the ramp): 1 on the hole pixels it
    covers at least ``feather`` px from any it does not, falling linearly to 1/feather next to
    one; 0 where it does not cover, and everywhere outside the box."""

    box: Tile
    weights: list[np.ndarray]  # (box.height, box.width) float32 each

    def in_tile(self, tile: Tile) -> list[np.ndarray]:
        return [_box_in_tile(self.box, weights, tile) for weights in self.weights]


def _box_in_tile(box: Tile, values: np.ndarray, tile: Tile) -> np.ndarray:
    """``values`` (box.height, box.width, ...) over ``box`` of the frame, seen through ``tile``:
    0 where the tile reaches outside the box."""
    top, left = max(tile.top, box.top), max(tile.left, box.left)
    bottom, right = min(tile.bottom, box.bottom), min(tile.right, box.right)
    piece = np.zeros((tile.height, tile.width) + values.shape[2:], dtype=values.dtype)
    if bottom > top and right > left:
        piece[top - tile.top : bottom - tile.top, left - tile.left : right - tile.left] = values[
            top - box.top : bottom - box.top, left - box.left : right - box.left
        ]
    return piece


def _coverage_ramps(hole: np.ndarray, coverage: list[np.ndarray], feather: int, margin: int) -> _Ramps:
    """The ramps (``_Ramps``) of the directions that cover the ``coverage`` pixels (H, W) of
    ``hole``, computed over the whole hole, not per tile: a tile's edge would hide uncovered
    pixels just across it and leave a step there. Only the hole's box, grown by ``margin`` px
    (at least the ramp's), is held, so a 4K frame costs what its hole does."""
    rows, cols = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
    top, bottom = max(0, rows[0] - margin), min(hole.shape[0], rows[-1] + margin + 1)
    left, right = max(0, cols[0] - margin), min(hole.shape[1], cols[-1] + margin + 1)
    box = Tile(top, left, bottom - top, right - left)
    box_hole = hole[box.slices]
    weights = []
    for full_frame in coverage:
        covered = full_frame[box.slices]
        # Distance to the nearest hole pixel this direction leaves uncovered (0 px there).
        elsewhere = (~(box_hole & ~covered)).astype(np.uint8)
        distance = cv2.distanceTransform(elsewhere, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        weights.append(np.minimum(distance / feather, 1.0).astype(np.float32) * covered)
    return _Ramps(box, weights)


def _blended(
    frame: int,
    pieces: list[_TileCandidates],
    ramps: _Ramps,
    filled: np.ndarray,
    peak: float,
    agreement: AgreementCheck | None,
) -> list[tuple[_TileCandidates, np.ndarray, np.ndarray]]:
    """Per tile, (pixels that change, their values in [-1, 1]): the directions' candidates
    weighted by their ramps over their distance in time, mixed into the network's fill (the
    ``filled`` frame, uint of ``peak``) by the strongest ramp, times the agreement's trust. The
    trust is computed over the hole's box, like the ramps: per tile, a blur would see the tile's
    edge."""
    box = ramps.box
    network_box = filled[box.slices].astype(np.float32) * (2.0 / peak) - 1.0
    mixes = [nearness_weighted(frame, piece.directions, ramps.in_tile(piece.tile)) for piece in pieces]
    alpha_box = np.maximum.reduce(ramps.weights)
    if agreement is not None:
        content_box = network_box.copy()
        for piece, (weight_sum, mixed) in zip(pieces, mixes):
            _set_in_box(content_box, box, piece.tile, weight_sum > 0, mixed)
        alpha_box = alpha_box * agreement.judge(content_box, network_box, _sides_in_box(pieces, box))
    pasted = []
    for piece, (weight_sum, mixed) in zip(pieces, mixes):
        covered = weight_sum > 0
        network = filled[piece.tile.slices].astype(np.float32) * (2.0 / peak) - 1.0
        alpha = _box_in_tile(box, alpha_box, piece.tile)[covered][:, None]
        pasted.append((piece, covered, alpha * mixed[covered] + (1.0 - alpha) * network[covered]))
    return pasted


def _sides_in_box(pieces: list[_TileCandidates], box: Tile) -> tuple[SideContent, SideContent]:
    """Each direction's content (earlier frames, later frames) over ``box``, from the tiles."""
    sides = []
    for direction in range(2):
        candidate = np.zeros((box.height, box.width, 3), dtype=np.float32)
        valid = np.zeros((box.height, box.width), dtype=bool)
        for piece in pieces:
            found = piece.directions[direction]
            _set_in_box(candidate, box, piece.tile, found.valid, found.candidate)
            _set_in_box(valid, box, piece.tile, found.valid, found.valid)
        sides.append(SideContent(candidate, valid))
    return sides[0], sides[1]


def _set_in_box(target: np.ndarray, box: Tile, tile: Tile, where: np.ndarray, values: np.ndarray) -> None:
    """``target`` (over ``box`` of the frame) takes ``values`` (over ``tile``) at the tile's
    ``where`` pixels: hole pixels, so inside the box."""
    rows, cols = np.nonzero(where)
    target[rows + tile.top - box.top, cols + tile.left - box.left] = values[rows, cols]

"""Grid inference: tiling, blending weights, and which tiles are computed."""

from __future__ import annotations

import numpy as np
import pytest

from archive_inpaint.inference.tiles import (
    Tile,
    blend_tiles,
    tile_grid,
    tile_starts,
    tile_weights,
    tiles_touching,
)


@pytest.mark.parametrize(("length", "tile", "overlap"), [(100, 32, 8), (257, 64, 16), (64, 64, 16), (40, 64, 16), (1000, 256, 64)])
def test_tile_starts_cover_the_frame_with_at_least_the_overlap(length, tile, overlap):
    size = min(tile, length)
    starts = tile_starts(length, size, overlap)
    assert starts[0] == 0 and starts[-1] + size == length
    covered = np.zeros(length, dtype=int)
    for start in starts:
        covered[start : start + size] += 1
    assert covered.min() >= 1
    for first, second in zip(starts, starts[1:]):
        assert first + size - second >= overlap  # the overlap is never less than asked


def test_weights_ramp_only_towards_neighbours():
    height, width, overlap = 100, 120, 16
    corner = tile_weights(Tile(0, 0, 48, 48), height, width, overlap)
    assert corner[0, 0] == 1.0  # frame edges: no neighbour, no ramp
    assert corner[-1, -1] < 0.1 and corner[-1, -1] > 0  # towards neighbours: near 0, never 0
    inner = tile_weights(Tile(30, 30, 48, 48), height, width, overlap)
    assert inner.min() > 0 and inner[24, 24] == 1.0


def _identity_predictor(image: np.ndarray):
    def predict(batch: list[Tile]) -> np.ndarray:
        return np.stack([image[t.top : t.bottom, t.left : t.right] for t in batch])

    return predict


def test_blending_an_image_with_no_hole_reproduces_it_exactly():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (131, 197, 3)).astype(np.float32)
    tiles = tile_grid(131, 197, 48, 16)
    blended = blend_tiles(131, 197, tiles, _identity_predictor(image), overlap=16, batch_size=5)
    assert (blended.top, blended.left) == (0, 0)
    assert blended.values.shape == image.shape
    # No seam: float blending of identical values gives the values back; rounded, bit-exact.
    assert np.abs(blended.values - image).max() < 1e-3
    assert (np.rint(blended.values) == image).all()


def test_a_gradient_fill_with_per_tile_errors_has_no_step_at_tile_borders():
    """Each tile predicts a linear gradient plus its own constant error (up to +-eps). Blended,
    no step between neighbouring pixels exceeds the gradient's own slope by more than eps:
    the tiles' disagreement is spread over the overlap instead of showing as a seam."""
    height, width, tile, overlap, eps = 96, 160, 40, 16, 4.0
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    gradient = (0.5 * cols + 0.25 * rows)[..., None]
    rng = np.random.default_rng(0)
    tiles = tile_grid(height, width, tile, overlap)
    errors = {t: rng.uniform(-eps, eps) for t in tiles}

    def predict(batch):
        return np.stack([gradient[t.top : t.bottom, t.left : t.right] + errors[t] for t in batch])

    blended = blend_tiles(height, width, tiles, predict, overlap, batch_size=3).values[..., 0]
    residual = blended - gradient[..., 0]
    assert np.abs(residual).max() <= eps + 1e-4  # a blend of errors is no larger than the errors
    step_x = np.abs(np.diff(residual, axis=1)).max()
    step_y = np.abs(np.diff(residual, axis=0)).max()
    assert max(step_x, step_y) <= eps  # the fill's own error bounds every step
    # A hard cut at the same borders would jump by the full difference of two tiles' errors.
    hard_cut = max(abs(errors[a] - errors[b]) for a, b in zip(tiles, tiles[1:]))
    assert max(step_x, step_y) < hard_cut / 4


def test_only_tiles_touching_the_dilated_hole_are_computed():
    height, width, size, overlap = 200, 300, 64, 16
    hole = np.zeros((height, width), dtype=bool)
    hole[90:100, 140:150] = True
    grid = tile_grid(height, width, size, overlap)
    touching = tiles_touching(hole, grid, margin=0)
    # Brute force: a tile is needed exactly when it contains a hole pixel.
    expected = [t for t in grid if hole[t.top : t.bottom, t.left : t.right].any()]
    assert touching == expected and 0 < len(touching) < len(grid)
    calls: list[Tile] = []

    def predict(batch):
        calls.extend(batch)
        return np.zeros((len(batch), size, size, 3), dtype=np.float32)

    blend_tiles(height, width, touching, predict, overlap, batch_size=2)
    assert calls == touching  # counted: no other tile was computed
    # A margin takes in the tiles within that distance of the hole (brute force on the whole
    # frame's dilation), and no hole means no tiles.
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (81, 81))
    grown = cv2.dilate(hole.astype(np.uint8), kernel) > 0
    with_margin = tiles_touching(hole, grid, margin=40)
    assert with_margin == [t for t in grid if grown[t.top : t.bottom, t.left : t.right].any()]
    assert len(with_margin) > len(touching)
    assert tiles_touching(np.zeros_like(hole), grid, margin=8) == []
    assert blend_tiles(height, width, [], predict, overlap, batch_size=2) is None

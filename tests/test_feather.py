"""Feathered composite: the fill fades into the frame over a band around the hole, the hole is
still exactly the fill, and every pixel beyond the band is still the input pixel, bit for bit."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from archive_inpaint.config import ProgressiveConfig
from archive_inpaint.inference.feather import blend_bounds, blend_region, feather_alpha
from archive_inpaint.inference.fill import composite, composite_upsampled, fill_shot, network_output_to_frames
from archive_inpaint.inference.progressive_fill import fill_frame_tiled, fill_shot_tiled
from archive_inpaint.inference.stage_predictors import PatchStagePredictor
from archive_inpaint.inference.tiles import tile_grid, tiles_touching
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.training.working_set import build_working_set
from engine_fixtures import CPU, moving_box_holes, moving_texture, single_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("single_thread")


def _distance_to_hole(hole: np.ndarray) -> np.ndarray:
    """Brute force: every pixel's Euclidean distance to the nearest hole pixel."""
    ys, xs = np.nonzero(hole)
    rows, cols = np.mgrid[0 : hole.shape[0], 0 : hole.shape[1]]
    squared = (rows[..., None] - ys) ** 2 + (cols[..., None] - xs) ** 2
    return np.sqrt(squared.min(axis=-1))


def _two_holes(height: int = 30, width: int = 40) -> np.ndarray:
    hole = np.zeros((height, width), dtype=bool)
    hole[8:14, 10:19] = True
    hole[25:30, 36:40] = True  # touches the frame's bottom-right corner
    hole[3, 30] = True
    return hole


# --------------------------------------------------------------------------- the weights


@pytest.mark.parametrize("feather", [1, 2, 5])
def test_alpha_is_one_in_the_hole_and_falls_linearly_to_exactly_zero(feather):
    hole = _two_holes()
    alpha = feather_alpha(hole, feather)
    assert alpha.dtype == np.float32 and alpha.shape == hole.shape
    distance = _distance_to_hole(hole)
    assert (alpha[hole] == 1.0).all()
    np.testing.assert_allclose(alpha, np.maximum(0.0, 1.0 - distance / (feather + 1)), atol=1e-6)
    assert (alpha[distance >= feather + 1] == 0.0).all()  # exactly 0, not merely small
    assert (alpha[distance <= feather] > 0).all()  # the last band pixel still takes some fill
    # Straight out from the hole's right edge (column 18), one step a pixel.
    ray = alpha[10, 18 : 18 + feather + 3]
    assert (np.diff(ray[: feather + 2]) < 0).all()  # strictly decreasing across the band
    np.testing.assert_allclose(ray[feather], 1.0 / (feather + 1), rtol=1e-6)
    assert ray[feather + 1] == 0.0 and ray[feather + 2] == 0.0
    assert np.array_equal(blend_region(hole, feather), alpha > 0)


def test_feather_zero_is_the_hole_and_no_hole_is_no_weight():
    hole = _two_holes()
    assert np.array_equal(feather_alpha(hole, 0), hole.astype(np.float32))
    assert np.array_equal(blend_region(hole, 0), hole)
    empty = np.zeros_like(hole)
    assert not feather_alpha(empty, 4).any() and not blend_region(empty, 4).any()
    assert blend_bounds(empty, 4) is None
    with pytest.raises(ValueError, match="feather"):
        feather_alpha(hole, -1)


def test_bounds_hold_the_blend_region_and_a_crop_gives_the_same_weights():
    hole = _two_holes()
    feather = 3
    rows, cols = blend_bounds(hole, feather)
    region = blend_region(hole, feather)
    outside = region.copy()
    outside[rows, cols] = False
    assert not outside.any()
    # The box is tight: the region reaches each of its (unclipped) sides.
    assert region[rows.start].any() and region[:, cols.start].any()
    assert (rows.stop, cols.stop) == hole.shape  # clipped at the frame's edge
    # Any crop holding every hole pixel gives the frame's own weights (what the composites use).
    crop = (slice(2, 30), slice(5, 40))
    assert np.array_equal(feather_alpha(hole[crop], feather), feather_alpha(hole, feather)[crop])


# --------------------------------------------------------------------------- the composite


def _frame_and_fill(dtype, height: int = 30, width: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    peak = np.iinfo(dtype).max
    frame = rng.integers(0, peak, (height, width, 3), dtype=dtype, endpoint=True)
    fill = rng.uniform(-0.1 * peak, 1.1 * peak, (height, width, 3)).astype(np.float32)
    return frame, fill


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_feathered_composite_blends_the_band_and_keeps_the_rest(dtype):
    frame, fill = _frame_and_fill(dtype)
    hole = _two_holes()
    feather = 4
    original = frame.copy()
    plain = composite(frame, fill, hole)
    result = composite(frame, fill, hole, feather)
    assert np.array_equal(frame, original), "composite modified its input"
    assert result.dtype == dtype
    region = blend_region(hole, feather)
    assert np.array_equal(result[~region], frame[~region])  # bit-exact beyond the band
    assert np.array_equal(result[hole], plain[hole])  # the hole is exactly the plain fill
    band = region & ~hole
    alpha = feather_alpha(hole, feather)[band][:, None].astype(np.float64)
    peak = np.iinfo(dtype).max
    expected = np.clip(alpha * fill[band] + (1 - alpha) * frame[band], 0, peak)
    assert np.abs(result[band].astype(np.float64) - expected).max() <= 0.5 + 1e-3 * peak / 255
    assert (result[band] != frame[band]).mean() > 0.9  # the band really was blended


def test_feather_zero_is_the_current_composite():
    frame, fill = _frame_and_fill(np.uint16, seed=4)
    hole = _two_holes()
    expected = frame.copy()
    expected[hole] = np.clip(np.rint(fill[hole]), 0, 65535).astype(np.uint16)
    assert np.array_equal(composite(frame, fill, hole, 0), expected)
    assert np.array_equal(composite(frame, fill, hole), expected)


def test_feathered_band_of_a_flat_fill_ramps_towards_the_frame():
    frame = np.full((9, 20, 3), 10, dtype=np.uint8)
    fill = np.full((9, 20, 3), 210.0, dtype=np.float32)
    hole = np.zeros((9, 20), dtype=bool)
    hole[:, :5] = True
    row = composite(frame, fill, hole, feather=3)[4, :, 0]
    # alpha = 1, 3/4, 2/4, 1/4, 0 at distances 0..4: 210, 160, 110, 60, 10.
    assert row[4:9].tolist() == [210, 160, 110, 60, 10]
    assert (row[:5] == 210).all() and (row[8:] == 10).all()


@pytest.mark.parametrize("feather", [0, 6])
def test_upsampled_composite_with_a_feather_equals_a_whole_frame_resize(feather):
    """The upsampled box grows with the feather: the band gets the same upsampled fill as a
    whole-frame bicubic resize would give it, right up to the frame's edge."""
    rng = np.random.default_rng(1)
    fill = (rng.random((45, 80, 3)) * 255).astype(np.float32)
    frame = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
    hole = np.zeros((180, 320), dtype=bool)
    hole[50:90, 100:170] = True
    hole[176:180, 3:20] = True  # the band is clipped by the bottom and left edges
    whole = cv2.resize(fill, (320, 180), interpolation=cv2.INTER_CUBIC)
    result = composite_upsampled(frame, fill, hole, feather)
    # remap over the box and resize of the whole frame round the same bicubic sums a hair
    # differently (float32), so a sample on a .5 tie may land one step apart, never more.
    difference = np.abs(result.astype(int) - composite(frame, whole, hole, feather).astype(int))
    assert difference.max() <= 1 and (difference == 0).mean() > 0.999
    region = blend_region(hole, feather)
    assert np.array_equal(result[~region], frame[~region])


@pytest.mark.parametrize("long_side", [320, 16])  # same size, and resampled to a working size
def test_fill_shot_threads_the_feather(long_side):
    frames = moving_texture(4, 24, 32)
    holes = moving_box_holes(4, 24, 32, empty=(2,))
    working_set = build_working_set(frames, holes, long_side, CPU)
    torch.manual_seed(0)
    network_image = torch.rand(4, *working_set.images.shape[1:]) * 2 - 1

    def predict(frame_ids: list[int]) -> torch.Tensor:
        return network_image[frame_ids]

    feather = 3
    plain = fill_shot(predict, working_set, frames, holes, batch_size=2)
    feathered = fill_shot(predict, working_set, frames, holes, batch_size=2, feather=feather)
    assert np.array_equal(fill_shot(predict, working_set, frames, holes, batch_size=2, feather=0), plain)
    fills = network_output_to_frames(network_image, working_set.valid_height, working_set.valid_width, frames.dtype)
    blend = composite_upsampled if working_set.is_resampled else composite
    for t in range(4):
        assert np.array_equal(feathered[t], blend(frames[t], fills[t], holes[t], feather))
        region = blend_region(holes[t], feather)
        assert np.array_equal(feathered[t][~region], frames[t][~region])
        assert np.array_equal(feathered[t][holes[t]], plain[t][holes[t]])
    assert np.array_equal(feathered[2], frames[2])  # no hole: passed through


# --------------------------------------------------------------------------- the tiled fill


class _TileDependentNetwork(torch.nn.Module):
    """Each tile's fill is its image plus an offset of its own (its mean): tiles disagree, so a
    band pixel blended from fewer tiles than the full grid gives it would come out different."""

    config = SimpleNamespace(prior_channels=3)  # the plain prior: no propagation

    def forward(self, images, holes, prior):
        return SimpleNamespace(final=(images + 0.5 * images.mean(dim=(1, 2, 3), keepdim=True)).clamp(-1, 1))


class _StageData:
    """The stage's view of one frame: its image in [-1, 1]; every tile counts as hole, so the
    stage's fill (not the known pixels) is what every tile returns."""

    def __init__(self, picture: np.ndarray) -> None:
        self.picture = picture
        self.stage = SimpleNamespace(height=picture.shape[0], width=picture.shape[1])

    def image(self, frame_id, tile):
        return self.picture[tile.top : tile.bottom, tile.left : tile.right].copy()

    def hole(self, frame_id, tile):
        return np.ones((tile.height, tile.width), dtype=bool)


class _ZeroPrior:
    def prior_for(self, frame_ids, tiles, next_size, extra=None):
        return torch.zeros(len(tiles), 3, tiles[0].height, tiles[0].width)


TILING = ProgressiveConfig(patch_size=32, tile_overlap=8, tile_margin=0, tile_batch_size=3)


def _tiled_predictor(height: int, width: int) -> PatchStagePredictor:
    rng = np.random.default_rng(5)
    picture = cv2.GaussianBlur(rng.uniform(-1, 1, (height, width, 3)).astype(np.float32), (5, 5), 1.0)
    return PatchStagePredictor(_TileDependentNetwork(), _StageData(picture), _ZeroPrior(), TILING, CPU)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiled_fill_computes_the_tiles_under_the_band_and_blends_it(dtype):
    height, width, feather = 64, 96, 14
    predictor = _tiled_predictor(height, width)
    frame, _ = _frame_and_fill(dtype, height, width, seed=2)
    hole = np.zeros((height, width), dtype=bool)
    hole[2:7, 14:20] = True  # inside the first tile only; the band reaches three more
    grid = tile_grid(height, width, TILING.patch_size, TILING.tile_overlap)
    region = blend_region(hole, feather)

    plain, plain_count = fill_frame_tiled(predictor, 0, frame, hole)
    result, count = fill_frame_tiled(predictor, 0, frame, hole, feather=feather)
    assert plain_count == len(tiles_touching(hole, grid, 0)) == 1
    assert count == len(tiles_touching(region, grid, 0)) == 4
    assert np.array_equal(fill_frame_tiled(predictor, 0, frame, hole, feather=0)[0], plain)
    assert np.array_equal(result[~region], frame[~region])
    assert np.array_equal(result[hole], plain[hole])
    # Every band pixel got the blend of all the tiles over it: the same as filling every tile.
    everything, _ = fill_frame_tiled(predictor, 0, frame, hole, all_tiles=True, feather=feather)
    assert np.array_equal(result, everything)
    band = region & ~hole
    assert (result[band] != frame[band]).mean() > 0.9


def test_tiled_shot_threads_the_feather():
    height, width, feather = 64, 96, 5
    predictor = _tiled_predictor(height, width)
    frames = moving_texture(3, height, width, seed=6)
    holes = moving_box_holes(3, height, width, box=(5, 7), empty=(1,))
    stores = [FrameStore.from_array(a) for a in (frames, holes[..., None], np.empty_like(frames))]
    computed = fill_shot_tiled(predictor, *stores, feather=feather)
    output = stores[2].to_array()
    for t in (0, 2):
        expected, _ = fill_frame_tiled(predictor, t, frames[t], holes[t], feather=feather)
        assert np.array_equal(output[t], expected)
    assert np.array_equal(output[1], frames[1])
    grid = tile_grid(height, width, TILING.patch_size, TILING.tile_overlap)
    assert computed == sum(len(tiles_touching(blend_region(holes[t], feather), grid, 0)) for t in (0, 2))

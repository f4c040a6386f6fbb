"""Content propagated from other frames along optical flow, for the patch stages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from archive_inpaint.config import ProgressiveConfig
from archive_inpaint.inference.propagation import ShotMotion, complete_flow, propagate
from archive_inpaint.inference.stage_predictors import PatchStagePredictor, prior_channels
from archive_inpaint.inference.tiles import Tile
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.models.iivi_net import IIVINet, IIVINetConfig
from archive_inpaint.pipeline import inpaint_arrays
from archive_inpaint.training.stage_data import StageData
from archive_inpaint.training.stages import Stage
from engine_fixtures import tiny_config

CPU = torch.device("cpu")
HEIGHT, WIDTH, FRAMES = 96, 128, 6
STEP = 4  # px per frame of the pan, at full size


def _texture(seed: int = 0) -> np.ndarray:
    """A real-looking texture: smoothed noise at several scales, (H, W + pan, 3) uint8."""
    rng = np.random.default_rng(seed)
    width = WIDTH + STEP * FRAMES
    layers = [
        cv2.resize(rng.random((HEIGHT // s, width // s, 3), dtype=np.float32), (width, HEIGHT), interpolation=cv2.INTER_CUBIC)
        for s in (2, 4, 8)
    ]
    image = sum(layers) / len(layers)
    return np.clip((image - image.min()) / (image.max() - image.min()) * 255, 0, 255).astype(np.uint8)


def _shot(moving_hole: bool, camera_step: int = STEP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth frames, stored frames with garbage in the holes, holes): the texture panned left by
    ``camera_step`` px per frame under a 24x24 hole that moves right (or stays)."""
    texture = _texture()
    truth = np.stack([texture[:, camera_step * t : camera_step * t + WIDTH] for t in range(FRAMES)])
    holes = np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool)
    for t in range(FRAMES):
        left = 40 + (10 * t if moving_hole else 0)
        holes[t, 36:60, left : left + 24] = True
    stored = truth.copy()
    stored[holes] = 255  # whatever a hole holds must never be propagated
    return truth, stored, holes


def _motion(truth: np.ndarray, holes: np.ndarray, factor: int = 2) -> ShotMotion:
    """Motion at 1/factor of the size, on filled frames (here the truth itself, downscaled)."""
    size = (WIDTH // factor, HEIGHT // factor)
    grey = np.stack([cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY) for f in truth])
    small = np.stack([cv2.resize(h.astype(np.uint8), size, interpolation=cv2.INTER_AREA) > 0 for h in holes])
    return ShotMotion(grey, small, radius=FRAMES)


def _stage_data(stored: np.ndarray, holes: np.ndarray) -> StageData:
    return StageData(FrameStore.from_array(stored), FrameStore.from_array(holes), Stage(1, HEIGHT, WIDTH))


def _unit(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 127.5 - 1.0


def test_completed_flow_continues_the_motion_around_a_hole():
    flow = np.zeros((48, 64, 2), dtype=np.float32)
    flow[..., 0], flow[..., 1] = 2.5, -1.0
    hole = np.zeros((48, 64), dtype=bool)
    hole[18:30, 24:40] = True
    measured = flow.copy()
    measured[hole] = np.random.default_rng(0).normal(0, 20, size=(int(hole.sum()), 2))
    completed = complete_flow(measured, hole)
    assert np.abs(completed[hole] - flow[hole]).max() < 1e-3
    # Outside the hole and its margin the measurement is kept as it is.
    assert np.array_equal(completed[:, :10], measured[:, :10])


def test_the_hidden_content_comes_from_the_frames_that_show_it():
    truth, stored, holes = _shot(moving_hole=True)
    motion = _motion(truth, holes)
    data = _stage_data(stored, holes)
    frame = 2
    whole = Tile(0, 0, HEIGHT, WIDTH)
    candidate, valid = propagate(motion, data, frame, whole, holes[frame])
    hole = holes[frame]
    assert not valid[~hole].any(), "only the wanted pixels get a candidate"
    assert valid[hole].mean() > 0.95
    error = np.abs(candidate - _unit(truth[frame]))[valid].mean()
    # Sub-pixel flow from half-size frames and bicubic resampling: a few grey levels at most
    # (garbage from a source's hole would be ~1.0 and the hole's mean error against 0 is ~0.5).
    assert error < 0.03, error


def test_propagation_on_a_tile_matches_the_whole_frame():
    truth, stored, holes = _shot(moving_hole=True)
    motion = _motion(truth, holes)
    data = _stage_data(stored, holes)
    whole_candidate, whole_valid = propagate(motion, data, 3, Tile(0, 0, HEIGHT, WIDTH), holes[3])
    tile = Tile(30, 50, 40, 48)
    rows, cols = slice(tile.top, tile.bottom), slice(tile.left, tile.right)
    candidate, valid = propagate(motion, data, 3, tile, holes[3, rows, cols])
    assert np.array_equal(valid, whole_valid[rows, cols])
    np.testing.assert_allclose(candidate, whole_candidate[rows, cols], atol=1e-5)


def test_content_no_frame_shows_is_not_propagated():
    # Static camera and a static hole: what it covers is never visible.
    truth, stored, holes = _shot(moving_hole=False, camera_step=0)
    motion = _motion(truth, holes)
    candidate, valid = propagate(motion, _stage_data(stored, holes), 2, Tile(0, 0, HEIGHT, WIDTH), holes[2])
    assert not valid.any()
    assert not candidate.any()


def test_sources_are_the_nearest_frames_within_the_radius():
    grey = np.zeros((7, 8, 8), dtype=np.uint8)
    motion = ShotMotion(grey, np.zeros_like(grey, dtype=bool), radius=2)
    assert motion.sources(3) == [2, 4, 1, 5]
    assert motion.sources(0) == [1, 2]


class _ZeroPrior:
    def prior_for(self, frame_ids, tiles, next_size, extra=None):
        return torch.zeros(len(tiles), 3, tiles[0].height, tiles[0].width)


def test_an_untrained_patch_stage_starts_from_the_propagated_content():
    """A fresh patch network adds nothing to the image it corrects, so what it returns inside
    the hole is the propagated content where some frame shows it: the stage starts from the
    other frames' full-resolution pixels, not from the (here empty) coarse fill."""
    truth, stored, holes = _shot(moving_hole=True)
    network = IIVINet(IIVINetConfig(width=4, prior_channels=prior_channels(True))).eval()
    predictor = PatchStagePredictor(
        network, _stage_data(stored, holes), _ZeroPrior(), ProgressiveConfig(patch_size=64, tile_overlap=16), CPU, _motion(truth, holes)
    )
    filled = predictor.predict([2], [Tile(0, 0, HEIGHT, WIDTH)])[0].permute(1, 2, 0).numpy()
    hole = holes[2]
    error = np.abs(filled - _unit(truth[2]))[hole]
    assert np.mean(error < 0.05) > 0.9


def test_a_patch_stage_refuses_a_network_for_the_other_prior():
    truth, stored, holes = _shot(moving_hole=True)
    plain = IIVINet(IIVINetConfig(width=4, prior_channels=prior_channels(False)))
    with pytest.raises(ValueError, match="7 prior channels"):
        PatchStagePredictor(plain, _stage_data(stored, holes), _ZeroPrior(), ProgressiveConfig(), CPU, _motion(truth, holes))
    # Motion of another shot (a different frame count) is refused as well.
    network = IIVINet(IIVINetConfig(width=4, prior_channels=prior_channels(True)))
    with pytest.raises(ValueError, match="motion of 5 frames"):
        PatchStagePredictor(
            network, _stage_data(stored, holes), _ZeroPrior(), ProgressiveConfig(), CPU, _motion(truth[:5], holes[:5])
        )


def test_flow_fields_beyond_the_memory_budget_are_recomputed_the_same():
    truth, _, holes = _shot(moving_hole=True)
    motion = _motion(truth, holes)
    field_bytes = 8 * motion.size[0] * motion.size[1]
    small = ShotMotion(motion.frames, motion.holes, radius=FRAMES, cache_bytes=2 * field_bytes)
    first = small.flow(0, 1).copy()
    for source in (2, 3, 4):
        small.flow(0, source)
    assert len(small._flows) == 2
    assert (0, 1) not in small._flows
    np.testing.assert_array_equal(small.flow(0, 1), first)


def test_propagation_lets_a_patch_stage_fill_what_the_coarse_stage_cannot():
    """End to end through the engine: a panning texture under a moving hole, a whole-frame
    stage far too small and short to hold the texture, and one patch step. Without propagation
    the patch stage can only return the coarse fill; with it, the other frames' pixels."""
    truth, _, holes = _shot(moving_hole=True)
    errors = {}
    for propagation in (False, True):
        progressive = ProgressiveConfig(max_stages=2, iterations=1, batch_size=2, patch_size=64, tile_overlap=16)
        config = tiny_config(20, working_long_side=48, progressive=progressive).with_overrides(propagation=propagation)
        result = inpaint_arrays(truth, holes, config, CPU)
        assert result.stages == 2
        assert (result.frames[~holes] == truth[~holes]).all()
        errors[propagation] = np.abs(result.frames[holes].astype(float) - truth[holes]).mean()
    assert errors[True] < 6.0 < 0.5 * errors[False], errors


def test_a_whole_frame_fill_takes_the_content_other_frames_show():
    """One stage (the working size below the frame): where another frame shows what the hole
    covers, the fill is that frame's pixels at full resolution; nothing outside the hole differs
    from the fill without propagation, feathered band included."""
    truth, stored, holes = _shot(moving_hole=True)
    results = {}
    for propagation in (False, True):
        config = tiny_config(20, working_long_side=64).with_overrides(propagation=propagation)
        result = inpaint_arrays(stored, holes, config, CPU, feather=2)
        assert result.stages == 1
        results[propagation] = result.frames
    np.testing.assert_array_equal(results[True][~holes], results[False][~holes])
    errors = {key: np.abs(frames[holes].astype(float) - truth[holes]).mean() for key, frames in results.items()}
    assert errors[True] < 6.0 < 0.5 * errors[False], errors

"""Content propagated from other frames along optical flow, for the patch stages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from archive_inpaint.config import ContentPropagationConfig, ProgressiveConfig
from archive_inpaint.inference.fill import fill_shot_into
from archive_inpaint.inference import propagated_paste
from archive_inpaint.inference.agreement import AgreementCheck, SideContent, agreement_for
from archive_inpaint.inference.propagated_paste import paste_propagated
from archive_inpaint.inference.propagation import (
    ShotMotion,
    WorkingFills,
    complete_flow,
    content_for_patch,
    lighting_gains,
    propagate,
)
from archive_inpaint.inference.stage_predictors import PatchStagePredictor, prior_channels
from archive_inpaint.inference.tiles import Tile
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.methods.iivi import IIVIMethod
from archive_inpaint.models.iivi_net import IIVINet, IIVINetConfig
from archive_inpaint.pipeline import inpaint_arrays
from archive_inpaint.training.stage_data import StageData
from archive_inpaint.training.stages import Stage
from archive_inpaint.training.working_set import build_working_set
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


def _with_grain(truth: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """``truth`` with its own grain in every frame (sigma 10 code values), holes filled with 255."""
    grain = np.random.default_rng(5).normal(0, 10, truth.shape)
    stored = np.clip(np.rint(truth + grain), 0, 255).astype(np.uint8)
    stored[holes] = 255
    return stored


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
    found = propagate(motion, data, frame, whole, holes[frame])
    candidate, valid = found.candidate, found.valid
    hole = holes[frame]
    assert not valid[~hole].any(), "only the wanted pixels get a candidate"
    assert valid[hole].mean() > 0.95
    # Each pixel says where it came from: another frame, the nearest ones first.
    origins = found.origin[valid]
    assert ((origins != frame) & (origins >= 0)).all() and (found.origin[~valid] == -1).all()
    assert set(np.unique(origins)) <= {1, 3, 0, 4}
    error = np.abs(candidate - _unit(truth[frame]))[valid].mean()
    # Sub-pixel flow from half-size frames and bicubic resampling: a few grey levels at most
    # (garbage from a source's hole would be ~1.0 and the hole's mean error against 0 is ~0.5).
    assert error < 0.03, error


def test_propagation_on_a_tile_matches_the_whole_frame():
    truth, stored, holes = _shot(moving_hole=True)
    motion = _motion(truth, holes)
    data = _stage_data(stored, holes)
    found = propagate(motion, data, 3, Tile(0, 0, HEIGHT, WIDTH), holes[3])
    whole_candidate, whole_valid = found.candidate, found.valid
    tile = Tile(30, 50, 40, 48)
    rows, cols = slice(tile.top, tile.bottom), slice(tile.left, tile.right)
    found = propagate(motion, data, 3, tile, holes[3, rows, cols])
    candidate, valid = found.candidate, found.valid
    assert np.array_equal(valid, whole_valid[rows, cols])
    np.testing.assert_allclose(candidate, whole_candidate[rows, cols], atol=1e-5)


def test_content_no_frame_shows_is_not_propagated():
    # Static camera and a static hole: what it covers is never visible.
    truth, stored, holes = _shot(moving_hole=False, camera_step=0)
    motion = _motion(truth, holes)
    found = propagate(motion, _stage_data(stored, holes), 2, Tile(0, 0, HEIGHT, WIDTH), holes[2])
    candidate, valid = found.candidate, found.valid
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
    filled = _untrained_stage_fill(stored, holes, _motion(truth, holes))
    hole = holes[2]
    error = np.abs(filled - _unit(truth[2]))[hole]
    assert np.mean(error < 0.05) > 0.9


def test_a_patch_stage_with_lighting_is_given_content_at_its_frames_exposure():
    """Film flicker under a patch stage: the content other frames show of the hole, as the
    stage is given it (here through an untrained stage, which returns it), carries each source's
    exposure unless brought to the hole's frame's lighting, from the tile's own pixels."""
    truth, _, holes = _shot(moving_hole=True)
    exposures = np.array([1.0, 1.2, 0.8, 1.15, 0.85, 1.1])
    shot = np.clip(np.rint((truth * 0.6 + 30) * exposures[:, None, None, None]), 0, 255).astype(np.uint8)
    stored = shot.copy()
    stored[holes] = 255
    errors = {}
    for lighting in (False, True):
        filled = _untrained_stage_fill(stored, holes, _motion(truth, holes), lighting=lighting)
        errors[lighting] = float(np.abs(filled - _unit(shot[2]))[holes[2]].mean())
    assert errors[True] < 0.4 * errors[False], errors


def _untrained_stage_fill(stored: np.ndarray, holes: np.ndarray, motion: ShotMotion, **options) -> np.ndarray:
    """Frame 2 (h, w, 3) in [-1, 1] as an untrained patch stage fills it: the content it is
    given, where given (``options``: the stage's lighting and blend)."""
    network = IIVINet(IIVINetConfig(width=4, prior_channels=prior_channels(True))).eval()
    predictor = PatchStagePredictor(
        network, _stage_data(stored, holes), _ZeroPrior(), ProgressiveConfig(patch_size=64, tile_overlap=16),
        CPU, motion, **options,
    )
    return predictor.predict([2], [Tile(0, 0, HEIGHT, WIDTH)])[0].permute(1, 2, 0).numpy()


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
    the patch stage can only return the coarse fill; with it, the other frames' pixels. (No
    agreement check: a coarse fill this poor contradicts the right content.)"""
    truth, _, holes = _shot(moving_hole=True)
    errors = {}
    for propagation in (False, True):
        progressive = ProgressiveConfig(max_stages=2, iterations=1, batch_size=2, patch_size=64, tile_overlap=16)
        config = tiny_config(20, working_long_side=48, progressive=progressive).with_overrides(
            propagation=propagation, check_agreement=False
        )
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
        # A 20-step network's fill is far from the truth, and the agreement check (tested on its
        # own) would rightly keep it over content it contradicts: off, to see the content.
        config = tiny_config(20, working_long_side=64).with_overrides(propagation=propagation, check_agreement=False)
        result = inpaint_arrays(stored, holes, config, CPU, feather=2)
        assert result.stages == 1
        results[propagation] = result.frames
    np.testing.assert_array_equal(results[True][~holes], results[False][~holes])
    errors = {key: np.abs(frames[holes].astype(float) - truth[holes]).mean() for key, frames in results.items()}
    assert errors[True] < 6.0 < 0.5 * errors[False], errors


def test_the_whole_frame_fill_runs_the_network_once_per_holed_frame_for_both_uses():
    """The fill's outputs, recorded as it goes, give the motion exactly the frames a separate
    pass of the network would: the network is not run a second time for them."""
    torch.manual_seed(0)
    _, stored, holes = _shot(moving_hole=True)
    holes[1] = False  # a frame without a hole is its own fill, and never goes to the network
    working_set = build_working_set(stored, holes, 64, CPU)
    method = IIVIMethod(tiny_config(1))
    network = method.build_network().eval()
    asked: list[int] = []

    def predict(frame_ids: list[int]) -> torch.Tensor:
        asked.extend(frame_ids)
        return method.predict(network, working_set, frame_ids)

    fills = WorkingFills(working_set)
    output = FrameStore.from_array(np.empty_like(stored))
    fill_shot_into(fills.recording(predict), working_set, FrameStore.from_array(stored),
                   FrameStore.from_array(holes[..., None]), output, batch_size=4)
    motion = fills.motion(predict, radius=FRAMES)
    holed = [t for t in range(FRAMES) if holes[t].any()]
    assert sorted(asked) == holed  # once each, frame 1 never

    asked.clear()
    separate = WorkingFills(working_set).motion(predict, radius=FRAMES, batch=2)
    assert sorted(asked) == holed
    np.testing.assert_array_equal(motion.frames, separate.frames)
    np.testing.assert_array_equal(motion.holes, separate.holes)
    # The unholed frame is the working image itself; the holed ones differ from it in the hole.
    image = ((working_set.images[1, :, : motion.size[0], : motion.size[1]].permute(1, 2, 0).numpy() + 1) * 127.5).round()
    np.testing.assert_array_equal(motion.frames[1], cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY))


def test_lighting_gains_recover_an_exposure_change_despite_mismatched_pairs():
    rng = np.random.default_rng(3)
    theirs = rng.uniform(-0.8, 0.6, size=(2000, 3)).astype(np.float32)
    exposure = np.array([1.12, 0.9, 1.3], dtype=np.float32)
    ours = (theirs + 1.0) * exposure - 1.0
    # A fifth of the pairs misplaced by the flow: unrelated pixels.
    wrong = rng.random(len(ours)) < 0.2
    ours[wrong] = rng.uniform(-1, 1, size=(int(wrong.sum()), 3))
    np.testing.assert_allclose(lighting_gains(ours, theirs), exposure, atol=0.03)
    # Too few matches, or black: no change.
    np.testing.assert_array_equal(lighting_gains(ours[:10], theirs[:10]), np.ones(3))
    black = np.full((500, 3), -1.0, dtype=np.float32)
    np.testing.assert_array_equal(lighting_gains(black, black), np.ones(3))


def test_a_whole_frame_fill_matches_pasted_content_to_its_frames_exposure():
    """Film flicker: every frame of the shot exposed differently. Content taken as it is from
    another frame carries that frame's exposure into the hole; brought to the hole's frame's
    lighting it matches the truth. Without flicker the compensation costs nothing."""
    truth, _, holes = _shot(moving_hole=True)
    base = (truth * 0.6 + 30).astype(np.float64)  # headroom: no gain below clips
    exposures = np.array([1.0, 1.2, 0.8, 1.15, 0.85, 1.1])
    errors = {}
    for flicker in (False, True):
        shot = base * (exposures[:, None, None, None] if flicker else 1.0)
        shot = np.clip(np.rint(shot), 0, 255).astype(np.uint8)
        stored = shot.copy()
        stored[holes] = 255
        for lighting in (False, True):
            config = tiny_config(20, working_long_side=64).with_overrides(lighting=lighting, check_agreement=False)
            result = inpaint_arrays(stored, holes, config, CPU)
            assert (result.frames[~holes] == shot[~holes]).all()
            errors[flicker, lighting] = np.abs(result.frames[holes].astype(float) - shot[holes]).mean()
    assert errors[True, True] < 0.5 * errors[True, False], errors
    assert errors[False, True] < errors[False, False] + 0.3, errors


def _paste(stored: np.ndarray, holes: np.ndarray, network: np.ndarray, motion: ShotMotion, **options) -> np.ndarray:
    """``network`` (the whole-frame fill) with the content other frames show pasted in."""
    output = FrameStore.from_array(network.copy())
    paste_propagated(motion, FrameStore.from_array(stored), FrameStore.from_array(holes[..., None]), output, **options)
    return np.stack([output.frame(t) for t in range(len(stored))])


def test_pasted_content_ramps_into_the_network_fill_where_no_frame_shows_the_hole():
    """Static camera; the left part of frame 2's hole is seen by every other frame, the right
    part by none. Pasting the nearest source as it is leaves a step at the border of the two; the
    blended paste ramps over the feather, keeps the network's fill where nothing is shown and the
    content, exactly, a feather away from it; nothing outside the hole changes."""
    shot = np.full((FRAMES, HEIGHT, WIDTH, 3), 200, dtype=np.uint8)
    holes = np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool)
    holes[:, 36:60, 52:76] = True
    holes[2, 36:60, 40:76] = True
    stored = shot.copy()
    stored[holes] = 255
    network = shot.copy()
    network[holes] = 40
    motion = _motion(shot, holes)
    feather = 4
    plain = _paste(stored, holes, network, motion, blend=False)
    blended = _paste(stored, holes, network, motion, blend=True, feather=feather)
    for result in (plain, blended):
        np.testing.assert_array_equal(result[~holes], shot[~holes])
    row = blended[2, 48, 40:76, 0].astype(int)
    plain_row = plain[2, 48, 40:76, 0].astype(int)
    assert np.abs(np.diff(plain_row)).max() >= 150  # the step
    assert np.abs(np.diff(row)).max() <= 160 / feather + 1
    assert (row[:6] == 200).all() and (row[-20:] == 40).all()


def test_blended_paste_averages_the_nearest_sources_before_and_after():
    """Grain differs in every frame: the nearest frame alone brings its own grain into the hole,
    the nearest before and after averaged bring less, and come nearer the clean picture."""
    truth, _, holes = _shot(moving_hole=True)
    stored = _with_grain(truth, holes)
    motion = _motion(truth, holes)
    errors = {}
    for blend in (False, True):
        result = _paste(stored, holes, stored, motion, blend=blend)
        inner = holes[1:-1]  # frames with a source on both sides
        errors[blend] = np.abs(result[1:-1][inner].astype(float) - truth[1:-1][inner]).mean()
    assert errors[True] < 0.85 * errors[False], errors


def test_blended_paste_is_the_same_whatever_tiles_the_frame_is_cut_into(monkeypatch):
    """The paste works tile by tile (bounded memory at 4K) but the ramps are the whole hole's:
    tiles that cut through the hole change nothing."""
    truth, stored, holes = _shot(moving_hole=True)
    holes[:, 30:40, 70:100] = True  # a second piece, across more tile borders
    stored[holes] = 255
    motion = _motion(truth, holes)
    network = stored.copy()
    network[holes] = 90
    # A loose agreement check (the network's flat 90 is far from the texture): the trust is
    # partial, and is the whole hole's too, not each tile's.
    options = dict(lighting=False, blend=True, feather=3, agreement=AgreementCheck(0.1, 0.6, 2.0))
    whole = _paste(stored, holes, network, motion, **options)
    monkeypatch.setattr(propagated_paste, "PASTE_TILE", 20)
    tiled = _paste(stored, holes, network, motion, **options)
    np.testing.assert_array_equal(tiled, whole)
    assert (whole[holes] != 90).mean() > 0.5  # content was found, and blended, in most of the hole


def test_a_patch_stage_is_given_the_nearest_sources_before_and_after_averaged():
    """The patch stages' content blended as the whole-frame fill's is: with grain differing in
    every frame, an untrained stage (which returns its content) is nearer the clean picture
    with the nearest frames before and after averaged than with the nearest frame alone."""
    truth, _, holes = _shot(moving_hole=True)
    stored = _with_grain(truth, holes)
    errors = {}
    for blend in (False, True):
        filled = _untrained_stage_fill(stored, holes, _motion(truth, holes), blend=blend)
        errors[blend] = float(np.abs(filled - _unit(truth[2]))[holes[2]].mean())
    assert errors[True] < 0.85 * errors[False], errors


def test_blended_patch_content_weighs_each_side_by_nearness_in_time():
    """Frame 2 of a static shot: the frames before show the hole dark, the frames after bright.
    With every frame's own copy of the hole's content, the blend is the two nearest sides
    weighted 1/|dt|; when the nearest frame after also has the hole, the next one (2 frames
    away) counts half as much as the one before."""
    shot = np.full((FRAMES, HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    holes = np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool)
    holes[2, 36:60, 40:64] = True
    shot[:2, 36:60, 40:64] = 60
    shot[3:, 36:60, 40:64] = 200
    motion = _motion(np.full_like(shot, 128), holes)
    data = _stage_data(shot, holes)
    tile = Tile(0, 0, HEIGHT, WIDTH)
    blended = content_for_patch(motion, data, 2, tile, holes[2], blend=True)
    nearest = content_for_patch(motion, data, 2, tile, holes[2], blend=False)
    inner = np.zeros_like(holes[2])
    inner[40:56, 44:60] = True
    assert blended.valid[holes[2]].all() and not blended.valid[~holes[2]].any()
    np.testing.assert_allclose(blended.candidate[inner], (_unit(np.uint8(60)) + _unit(np.uint8(200))) / 2, atol=0.02)
    np.testing.assert_allclose(nearest.candidate[inner], _unit(np.uint8(60)), atol=0.02)  # earlier first on a tie
    holes[3, 36:60, 40:64] = True
    data = _stage_data(shot, holes)
    farther = content_for_patch(motion, data, 2, tile, holes[2], blend=True)
    expected = (_unit(np.uint8(60)) * 1.0 + _unit(np.uint8(200)) * 0.5) / 1.5
    np.testing.assert_allclose(farther.candidate[inner], expected, atol=0.02)


def test_content_the_network_contradicts_is_faded_back_to_its_fill():
    """The agreement check judged by the network alone keeps content whose low frequencies match
    the network's fill (here the network's fill is the truth blurred: the content adds its
    detail) and drops content that contradicts it (here the network says dark where the other
    frames show the texture: as when the flow fetched the wrong place); without the check both
    are pasted alike."""
    truth, stored, holes = _shot(moving_hole=True)
    motion = _motion(truth, holes)
    check = AgreementCheck(0.06, 0.25, 1.5, between_sources=False)
    blurred = np.stack([cv2.GaussianBlur(frame, (0, 0), 2) for frame in truth])
    agreeing = np.where(holes[..., None], blurred, stored)
    dark = np.where(holes[..., None], np.uint8(10), stored)
    inner = holes[1:-1]

    def error(network: np.ndarray, agreement: AgreementCheck | None) -> float:
        result = _paste(stored, holes, network, motion, lighting=False, agreement=agreement)
        return float(np.abs(result[1:-1][inner].astype(float) - truth[1:-1][inner]).mean())

    def from_network(network: np.ndarray, agreement: AgreementCheck | None) -> float:
        result = _paste(stored, holes, network, motion, lighting=False, agreement=agreement)
        return float(np.abs(result[1:-1][inner].astype(float) - network[1:-1][inner]).mean())

    # Agreeing: the content's detail is kept, nearly as without the check, and beats the blur.
    assert error(agreeing, check) < error(agreeing, None) + 1.5
    assert error(agreeing, check) < 0.5 * float(np.abs(blurred[1:-1][inner].astype(float) - truth[1:-1][inner]).mean())
    # Contradicted: the network's fill stays; without the check the content replaces it.
    assert from_network(dark, check) < 2.0
    assert from_network(dark, None) > 50.0


def test_content_both_sides_show_alike_is_kept_whatever_the_network_says():
    """Frames before and after a hole pixel that both show it, and agree, judge the content
    themselves: the texture of a panned shot is pasted where the network's fill is dark (a
    network far below the picture's resolution), not faded back to it as the network's
    judgement alone does; pixels only one side shows are still the network's to judge."""
    truth, stored, holes = _shot(moving_hole=True)
    motion = _motion(truth, holes)
    dark = np.where(holes[..., None], np.uint8(10), stored)
    both_sides = holes[1:-1]  # frames with sources on both sides (most of their holes)
    results = {
        between: _paste(stored, holes, dark, motion, lighting=False, agreement=AgreementCheck(0.06, 0.25, 1.5, between))
        for between in (True, False)
    }
    error = {k: np.abs(r[1:-1][both_sides].astype(float) - truth[1:-1][both_sides]) for k, r in results.items()}
    assert np.median(error[True]) < 6.0
    assert np.median(error[False]) > 50.0
    # The first frame has only later frames to draw on: the network decides there either way.
    np.testing.assert_array_equal(results[True][0], results[False][0])
    assert np.abs(results[True][0][holes[0]].astype(float) - 10).mean() < 2.0


def test_sides_that_disagree_are_not_trusted_even_where_the_network_agrees():
    """Content moving on its own behind a hole is fetched from two different wrong places by the
    completed flow: the frames before show one texture, the frames after another. Their blend
    agrees with a network fill of the same mean, so the network's judgement trusts the ghosted
    mix; the two sides' judgement does not. Pixels one side shows are judged by the network."""
    check = AgreementCheck(0.06, 0.25, 1.5)
    rng = np.random.default_rng(3)
    size = (48, 64)
    # Texture coarser than the blur, in opposite phase on the two sides: same mean, different picture.
    coarse = cv2.resize(rng.uniform(-0.5, 0.5, (6, 8, 1)).astype(np.float32), size[::-1], interpolation=cv2.INTER_CUBIC)
    earlier = np.repeat(coarse[..., None], 3, axis=2) if coarse.ndim == 2 else np.repeat(coarse, 3, axis=2)
    later = -earlier
    valid_earlier = np.ones(size, dtype=bool)
    valid_later = np.ones(size, dtype=bool)
    valid_later[:, 48:] = False  # the right edge: only the earlier frames show it
    blend = np.where(valid_later[..., None], (earlier + later) / 2, earlier)
    network = np.where(valid_later[..., None], 0.0, earlier).astype(np.float32)
    sides = (SideContent(earlier, valid_earlier), SideContent(later, valid_later))
    by_network = check.judge(blend, network)
    by_sides = check.judge(blend, network, sides)
    inner = np.zeros(size, dtype=bool)
    inner[8:40, 8:40] = True  # both sides, away from where the blur sees the one-sided edge
    assert by_network[inner].min() > 0.99
    assert np.mean(by_sides[inner] < 0.5) > 0.5
    np.testing.assert_array_equal(by_sides[:, 48:], by_network[:, 48:])
    # Sides that agree are trusted wherever both show the pixel.
    agreeing = (SideContent(earlier, valid_earlier), SideContent(earlier.copy(), valid_later))
    assert check.judge(earlier, np.zeros_like(earlier), agreeing)[:, :48].min() == 1.0
    # Off: the network judges everything.
    off = AgreementCheck(0.06, 0.25, 1.5, between_sources=False)
    np.testing.assert_array_equal(off.judge(blend, network, sides), by_network)


class _FixedPrior:
    """A previous stage whose fill is ``frames`` (N, H, W, 3) uint8, whatever the holes."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = torch.from_numpy(_unit(frames)).permute(0, 3, 1, 2)

    def prior_for(self, frame_ids, tiles, next_size, extra=None):
        return torch.stack([self.frames[f][:, t.slices[0], t.slices[1]] for f, t in zip(frame_ids, tiles)])


def test_a_patch_stage_is_not_given_content_its_prior_contradicts():
    """With the agreement check, propagated content that the previous stage's fill contradicts
    at low frequencies counts as not found: an untrained stage (which returns the image it is
    given to correct) returns the prior there, and the content where the prior agrees with it."""
    truth, stored, holes = _shot(moving_hole=True)
    motion = _motion(truth, holes)
    blurred = np.stack([cv2.GaussianBlur(frame, (0, 0), 2) for frame in truth])
    dark = np.full_like(truth, 10)
    check = AgreementCheck(0.06, 0.25, 1.5, between_sources=False)
    network = IIVINet(IIVINetConfig(width=4, prior_channels=prior_channels(True))).eval()
    hole = holes[2]

    def fill(prior: np.ndarray, agreement: AgreementCheck | None, blend: bool = False) -> np.ndarray:
        predictor = PatchStagePredictor(
            network, _stage_data(stored, holes), _FixedPrior(prior), ProgressiveConfig(patch_size=64, tile_overlap=16),
            CPU, motion, blend=blend, agreement=agreement,
        )
        return predictor.predict([2], [Tile(0, 0, HEIGHT, WIDTH)])[0].permute(1, 2, 0).numpy()

    def error(result: np.ndarray, reference: np.ndarray) -> float:
        return float(np.abs(result - _unit(reference[2]))[hole].mean())

    # Contradicted: the prior comes through; without the check the content replaces it.
    assert error(fill(dark, check), dark) < 0.03
    assert error(fill(dark, None), dark) > 0.4
    # Agreeing: the content's detail comes through, as without the check, sharper than the prior.
    assert error(fill(blurred, check), truth) < error(fill(blurred, None), truth) + 0.01
    assert error(fill(blurred, check), truth) < 0.5 * error(_unit(blurred[2]), truth)
    # Blended content judged by its two sides (frame 2 has frames before and after showing its
    # hole, alike): the content comes through whatever the prior says.
    sides_judge = AgreementCheck(0.06, 0.25, 1.5)
    assert error(fill(dark, sides_judge, blend=True), truth) < error(fill(dark, None, blend=True), truth) + 0.01
    assert error(fill(dark, sides_judge, blend=True), dark) > 0.4


def test_the_agreement_blur_grows_with_the_picture():
    """The blur is set at the working size, where the network's detail ends: a fill at twice
    that size blurs twice as far; the check off gives none."""
    settings = ContentPropagationConfig(agreement_sigma=1.5)
    assert agreement_for(settings, 1.0) == AgreementCheck(settings.agreement_low, settings.agreement_high, 1.5)
    assert agreement_for(settings, 2.5).sigma == pytest.approx(3.75)
    assert agreement_for(ContentPropagationConfig(check_agreement=False), 2.0) is None


def test_agreement_settings_are_checked():
    with pytest.raises(ValueError, match="low < high"):
        AgreementCheck(0.3, 0.2, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        AgreementCheck(0.0, 0.2, 0.0)
    with pytest.raises(ValueError, match="agreement_low < agreement_high"):
        ContentPropagationConfig(agreement_low=0.5, agreement_high=0.1)

"""Progressive learning end to end: stage planning, the prior, patch training and tiled fill."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archive_inpaint.config import ProgressiveConfig
from archive_inpaint.inference.tiles import Tile, tile_grid, tiles_touching
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.models.iivi_net import IIVINet, IIVINetConfig
from archive_inpaint.pipeline import inpaint_arrays, inpaint_stores
from archive_inpaint.training.patch_trainer import patch_stage_fingerprint
from archive_inpaint.training.stage_data import StageData, resample_onto
from archive_inpaint.training.stages import Stage, plan_stages
from engine_fixtures import tiny_config

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("size", "working", "max_stages", "expected"),
    [
        ((2160, 3840), 640, 4, [(360, 640), (882, 1568), (2160, 3840)]),  # ratio 6 > 4: two steps
        ((2160, 3840), 960, 4, [(540, 960), (2160, 3840)]),  # ratio 4: one step
        ((1080, 1920), 640, 4, [(360, 640), (1080, 1920)]),
        ((1080, 1920), 640, 1, [(360, 640)]),  # patch stages switched off
        ((2160, 3840), 640, 2, [(360, 640), (2160, 3840)]),  # capped: one big step
        ((400, 720), 640, 4, [(356, 640)]),  # 1.125x: the coarse fill is enough
        ((144, 176), 320, 4, [(144, 176)]),  # smaller than the working size
    ],
)
def test_stage_count_follows_the_size_ratio(size, working, max_stages, expected):
    stages = plan_stages(*size, working, ProgressiveConfig(max_stages=max_stages))
    assert [(s.height, s.width) for s in stages] == expected
    assert [s.index for s in stages] == list(range(len(expected)))


def test_patch_network_takes_the_prior_as_extra_channels():
    network = IIVINet(IIVINetConfig(width=4, prior_channels=3))
    image, hole, prior = torch.zeros(2, 3, 32, 32), torch.zeros(2, 1, 32, 32), torch.zeros(2, 3, 32, 32)
    assert network(image, hole, prior).final.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="prior"):
        network(image, hole)
    with pytest.raises(ValueError, match="prior"):
        IIVINet(IIVINetConfig(width=4))(image, hole, prior)


def test_prior_on_tiles_is_the_crop_of_the_upsampled_frame():
    """Every tile's prior is the same crop of one whole-frame upsampling, so overlapping tiles
    agree where they overlap and the prior has no tile structure."""
    low = torch.rand(1, 3, 20, 30) * 2 - 1
    full = F.interpolate(low, size=(80, 120), mode="bicubic", align_corners=False).clamp(-1, 1)
    tiles = [Tile(0, 0, 32, 32), Tile(24, 40, 32, 32), Tile(48, 88, 32, 32)]
    got = resample_onto(low.expand(3, -1, -1, -1), (0, 0), (20, 30), (80, 120), tiles)
    for tile, prior in zip(tiles, got):
        expected = full[0, :, tile.top : tile.bottom, tile.left : tile.right]
        assert torch.allclose(prior, expected, atol=1e-4)
    # The same box through a source region that starts inside the frame.
    region = low[:, :, 4:16, 6:24]
    offset = resample_onto(region, (4, 6), (20, 30), (80, 120), [Tile(24, 40, 32, 32)])
    assert torch.allclose(offset[0], got[1], atol=1e-4)


def _panning_shot(num_frames=5, height=96, width=160, seed=0):
    rng = np.random.default_rng(seed)
    import cv2

    canvas = cv2.GaussianBlur(rng.integers(0, 256, (height + 40, width + 60, 3), dtype=np.uint8), (5, 5), 1.5)
    frames = np.stack([canvas[2 * t : 2 * t + height, 3 * t : 3 * t + width] for t in range(num_frames)])
    holes = np.zeros((num_frames, height, width), dtype=bool)
    for t in range(num_frames):
        holes[t, 30 + 3 * t : 50 + 3 * t, 60 + 4 * t : 84 + 4 * t] = True
    return frames, holes


PROGRESSIVE = ProgressiveConfig(
    max_stages=3, iterations=3, batch_size=2, patch_size=48, tile_overlap=12, band_width=4
)


def _config(**changes):
    progressive = dataclasses.replace(PROGRESSIVE, **changes)
    return tiny_config(3, working_long_side=32, progressive=progressive)


def test_progressive_fill_changes_only_hole_pixels_through_mask_tiles():
    frames, holes = _panning_shot()
    result = inpaint_arrays(frames, holes, _config(), CPU)
    assert result.stages == 3  # 160 px from a 32 px working size: 5x > 4x, so two steps
    assert result.frames.shape == frames.shape and result.frames.dtype == frames.dtype
    assert (result.frames[~holes] == frames[~holes]).all()
    assert (result.frames[holes] != frames[holes]).any()
    grid = tile_grid(96, 160, 48, 12)
    expected_tiles = sum(len(tiles_touching(hole, grid, PROGRESSIVE.tile_margin)) for hole in holes)
    assert result.tiles == expected_tiles < len(grid) * len(frames)
    assert result.iterations == 3 + 2 * 3


def test_frames_on_scratch_disk_give_the_same_result_as_in_memory(tmp_path):
    frames, holes = _panning_shot(num_frames=4)
    config = _config(max_stages=2)
    in_memory = inpaint_arrays(frames, holes, config, CPU).frames
    with (
        FrameStore.create(frames.shape, frames.dtype, scratch=tmp_path, in_memory_limit=0) as frame_store,
        FrameStore.create((*holes.shape, 1), bool, scratch=tmp_path, in_memory_limit=0) as hole_store,
        FrameStore.create(frames.shape, frames.dtype, scratch=tmp_path, in_memory_limit=0) as output,
    ):
        assert frame_store.on_disk and output.on_disk
        for index in range(len(frames)):
            frame_store.write(index, frames[index])
            hole_store.write(index, holes[index][..., None])
        result = inpaint_stores(frame_store, hole_store, output, config, CPU)
        assert result.stages == 2
        assert (output.to_array() == in_memory).all()


def test_patch_stage_resumes_from_its_checkpoint_exactly(tmp_path):
    frames, holes = _panning_shot(num_frames=4)
    full = _config(max_stages=2, iterations=4)
    straight = inpaint_arrays(frames, holes, full, CPU)
    # Stop after 2 patch steps (checkpointed at the end), then go on to 4 from the checkpoint.
    half = dataclasses.replace(full, progressive=dataclasses.replace(full.progressive, iterations=2))
    inpaint_arrays(frames, holes, half, CPU, checkpoint_dir=tmp_path)
    resumed = inpaint_arrays(frames, holes, full, CPU, checkpoint_dir=tmp_path)
    assert resumed.loss_history == straight.loss_history
    assert (resumed.frames == straight.frames).all()


def test_an_untrained_patch_network_returns_its_prior():
    """The patch stage starts as the identity on its prior: never worse than the coarse fill."""
    network = IIVINet(IIVINetConfig(width=4, prior_channels=3))
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:20, 8:20] = 1
    prior = torch.rand(1, 3, 32, 32) * 1.6 - 0.8
    output = network(image, hole, prior)
    assert torch.equal(output.coarse, prior)
    assert torch.allclose(output.final * hole, prior * hole)


def test_an_intermediate_stage_gives_overlapping_tiles_the_same_prior():
    """At inference the middle stage fills the frame once and every tile of the last stage
    resamples that one fill: where two tiles overlap, their priors agree."""
    frames, holes = _panning_shot()
    result = inpaint_arrays(frames, holes, _config(), CPU)
    middle = result.final_stage.previous
    assert middle.size != (96, 160) and middle.size != (19, 32)  # really the intermediate stage
    left, right = Tile(20, 40, 48, 48), Tile(20, 70, 48, 48)  # 18 px of overlap
    with torch.no_grad():
        priors = middle.prior_for([2, 2], [left, right], (96, 160))
    assert torch.allclose(priors[0][:, :, 30:], priors[1][:, :, :18], atol=1e-5)


def test_bf16_precision_reaches_the_patch_stages():
    """``precision`` is the whole shot's: the patch stages train under the same autocast."""
    frames, holes = _panning_shot(num_frames=4)
    config = _config(max_stages=2)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, precision="bf16"))
    conv_outputs: dict[int, set[torch.dtype]] = {}

    def record(module, _inputs, output):
        if isinstance(module, torch.nn.Conv2d) and module.training:
            conv_outputs.setdefault(id(module), set()).add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        result = inpaint_arrays(frames, holes, config, CPU)
    finally:
        handle.remove()
    assert result.stages == 2 and all(np.isfinite(result.loss_history))
    patch_convs = [m for m in result.final_stage.network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert patch_convs and all(conv_outputs[id(conv)] == {torch.bfloat16} for conv in patch_convs)
    assert (result.frames[~holes] == frames[~holes]).all()


def test_a_patch_stage_trained_without_lighting_blending_or_the_check_is_not_resumed_with_them():
    """Lighting compensation, blended sources and the agreement check (and who judges in it)
    change the content a patch stage is given, so they are part of the stage's checkpoint
    fingerprint; without propagation there is no content, and they are not (nor the judge
    without the check)."""
    frames, holes = _panning_shot(num_frames=2)
    data = StageData(FrameStore.from_array(frames), FrameStore.from_array(holes), Stage(1, 96, 160))

    def fingerprint(**overrides):
        return patch_stage_fingerprint("base", 1, data, _config().with_overrides(**overrides))

    assert fingerprint(lighting=True) != fingerprint(lighting=False)
    assert fingerprint(blend_sources=True) != fingerprint(blend_sources=False)
    assert fingerprint(propagation=False, lighting=True) == fingerprint(propagation=False, lighting=False)
    assert fingerprint(propagation=False, blend_sources=True) == fingerprint(propagation=False, blend_sources=False)
    assert fingerprint(check_agreement=True) != fingerprint(check_agreement=False)
    assert fingerprint(propagation=False, check_agreement=True) == fingerprint(propagation=False, check_agreement=False)
    assert fingerprint(agreement_between_sources=True) != fingerprint(agreement_between_sources=False)
    unchecked = dict(check_agreement=False)
    judged_by_sides = fingerprint(agreement_between_sources=True, **unchecked)
    assert judged_by_sides == fingerprint(agreement_between_sources=False, **unchecked)

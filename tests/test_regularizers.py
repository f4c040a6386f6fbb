"""Stabilization and anti-ambiguity regularizers (IIVI §3.3-3.4)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from archive_inpaint.config import RegularizerConfig
from archive_inpaint.training.contextual import (
    ContextualSettings,
    PatchEncoder,
    VGGEncoder,
    contextual_loss,
    find_vgg_weights,
    make_encoder,
)
from archive_inpaint.training.stabilization import (
    TransformRanges,
    sample_homography,
    sample_transforms,
    stabilization_residual_l1,
)
from archive_inpaint.training.trainer import train
from archive_inpaint.training.working_set import build_working_set
from engine_fixtures import moving_box_holes, moving_texture, tiny_config

CPU = torch.device("cpu")
NO_CHANGE = TransformRanges(max_shift_px=0, max_rotation_deg=0, zoom=(1, 1), max_brightness=0, max_blur_sigma=0)


def _texture(batch=2, height=40, width=48, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator) * 2 - 1


def test_homography_moves_corners_by_at_most_the_configured_amount():
    ranges = TransformRanges(max_shift_px=2, max_rotation_deg=1, zoom=(0.97, 1.03))
    generator = torch.Generator().manual_seed(0)
    height, width = 180, 320
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]], float).T
    # Rotation by 1 degree and 3% zoom about the centre move a corner by at most ~ r * (0.03 + 0.0175).
    radius = np.hypot(width / 2, height / 2)
    bound = radius * (0.03 + np.radians(1)) + 2 * 2 + 1e-6
    for _ in range(50):
        moved = sample_homography(height, width, ranges, generator) @ corners
        moved = moved[:2] / moved[2]
        assert np.abs(moved - corners[:2]).max() <= bound
    assert np.allclose(sample_homography(height, width, NO_CHANGE, generator), np.eye(3), atol=1e-9)


def test_identity_transform_leaves_image_and_mask_unchanged():
    images = _texture()
    transform = sample_transforms(2, 40, 48, NO_CHANGE, torch.Generator().manual_seed(1), CPU)
    assert torch.allclose(transform.warp_image(images), images, atol=1e-5)
    mask = (images[:, :1] > 0.5).float()
    assert torch.equal(transform.warp_mask(mask), mask)
    assert transform.inside.all()


def test_warped_masks_stay_binary_and_photometry_touches_the_image_only():
    ranges = TransformRanges(max_brightness=0.2, max_blur_sigma=1.5)
    transform = sample_transforms(3, 40, 48, ranges, torch.Generator().manual_seed(2), CPU)
    mask = (_texture(3)[:, :1] > 0).float()
    assert set(transform.warp_mask(mask).unique().tolist()) <= {0.0, 1.0}
    flat = torch.zeros(3, 3, 40, 48)
    brightened = transform.warp_image(flat)  # a flat image only shows the brightness change
    assert torch.allclose(brightened, transform.brightness.expand_as(flat), atol=1e-5)


def test_stabilization_is_zero_for_an_equivariant_fill_and_not_for_a_frozen_one():
    images = _texture()
    transform = sample_transforms(2, 40, 48, TransformRanges(), torch.Generator().manual_seed(3), CPU)
    moved = transform.warp_image(images)
    known = torch.ones(2, 1, 40, 48, dtype=torch.bool)
    # A fill that follows its input exactly: its change is the input's change.
    assert stabilization_residual_l1(images, moved, images, moved, known) < 1e-6
    # A fill that ignores the input (the same output whatever g did): penalised.
    frozen = torch.zeros_like(images)
    assert stabilization_residual_l1(frozen, frozen, images, moved, known) > 0.01
    # Only known pixels count.
    none_known = torch.zeros_like(known)
    assert stabilization_residual_l1(frozen, frozen, images, moved, none_known) == 0


def test_contextual_loss_ignores_arrangement_but_penalises_blur():
    encoder = PatchEncoder()
    texture = _texture(1, 64, 64, seed=4)
    known = torch.ones(1, 1, 64, 64)
    generator = torch.Generator().manual_seed(0)
    same = contextual_loss(encoder, texture, texture, known, generator)
    # The same texture in another arrangement (4x4 blocks of 16 px swapped around).
    blocks = texture.unfold(2, 16, 16).unfold(3, 16, 16)  # (1, 3, 4, 4, 16, 16)
    shuffled = blocks.flip(2).flip(3).permute(0, 1, 2, 4, 3, 5).reshape(1, 3, 64, 64)
    rearranged = contextual_loss(encoder, shuffled, texture, known, generator)
    blurred = torch.nn.functional.avg_pool2d(texture, 5, stride=1, padding=2, count_include_pad=False)
    blurry = contextual_loss(encoder, blurred, texture, known, generator)
    assert same < 0.05
    assert rearranged < blurry / 2  # what matters is which textures, not where
    # Restricted to the partner's known pixels: an all-unknown partner contributes nothing.
    assert contextual_loss(encoder, blurred, texture, torch.zeros_like(known), generator) == 0


def test_contextual_loss_samples_at_most_max_features():
    encoder = PatchEncoder()
    big = _texture(1, 128, 128, seed=5)
    known = torch.ones(1, 1, 128, 128)
    few = contextual_loss(encoder, big, big, known, torch.Generator().manual_seed(0), ContextualSettings(max_features=64, chunk=16))
    assert torch.isfinite(few)


def test_vgg_weights_load_from_a_local_file_and_bad_paths_are_clear(tmp_path, monkeypatch):
    reference = VGGEncoder()
    torch.save({f"features.{k}": v for k, v in reference.features.state_dict().items()}, tmp_path / "vgg.pth")
    loaded = VGGEncoder.from_file(tmp_path / "vgg.pth")
    for key, value in reference.features.state_dict().items():
        assert torch.equal(loaded.features.state_dict()[key], value)
    assert loaded(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 4, 4)
    torch.save({"classifier.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a VGG19"):
        VGGEncoder.from_file(tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match="VGG19 weights not found"):
        find_vgg_weights(str(tmp_path / "missing.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    assert find_vgg_weights(None) is None


def test_without_weights_the_fallback_encoder_is_used_and_said(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        encoder = make_encoder(None)
    assert isinstance(encoder, PatchEncoder)
    assert "patch encoder" in caplog.text


def test_training_with_regularizers_switches_them_on_late_and_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    frames = moving_texture(6, 24, 32, seed=1)
    holes = moving_box_holes(6, 24, 32, box=(6, 8))
    working_set = build_working_set(frames, holes, 320, CPU)
    regularizers = RegularizerConfig(stabilization_weight=0.2, contextual_weight=0.1, start_fraction=0.5)
    config = dataclasses.replace(tiny_config(6, checkpoint_every=3), regularizers=regularizers)
    plain = train(working_set, tiny_config(6), CPU)
    regularized = train(working_set, config, CPU)
    # The first half is reconstruction only: the same steps; the second half adds the terms.
    assert regularized.loss_history[:3] == plain.loss_history[:3]
    assert all(r > p for r, p in zip(regularized.loss_history[3:], plain.loss_history[3:]))
    interrupted = dataclasses.replace(config, train=dataclasses.replace(config.train, iterations=6))
    train(working_set, interrupted, CPU, checkpoint_dir=tmp_path / "ckpt")
    # Kill after step 3: keep only the first checkpoint, then resume.
    checkpoints = sorted((tmp_path / "ckpt").iterdir())
    checkpoints[-1].unlink()
    resumed = train(working_set, config, CPU, checkpoint_dir=tmp_path / "ckpt")
    assert resumed.resumed_from == 3
    assert resumed.loss_history == regularized.loss_history

"""Working set geometry, fill and composite: only hole pixels may change, at any working size."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from archive_inpaint.config import IIVIConfig
from archive_inpaint.inference.fill import composite, fill_shot, method_predictor, network_output_to_frames
from archive_inpaint.methods.iivi import IIVIMethod
from archive_inpaint.media import read_frames, write_frames
from archive_inpaint.models.iivi_net import IIVINet, IIVINetConfig
from archive_inpaint.pipeline import inpaint_arrays
from archive_inpaint.training.working_set import build_working_set, to_unit_range
from engine_fixtures import (  # noqa: F401  (single_thread is a fixture)
    CPU,
    moving_box_holes,
    moving_texture,
    single_thread,
    tiny_config,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def _untrained_network(width: int = 4) -> IIVINet:
    torch.manual_seed(0)
    return IIVINet(IIVINetConfig(width=width)).eval()


def _untrained_predictor(working_set, width: int = 4):
    """The IIVI method's fill with an untrained network: any fill must leave known pixels alone."""
    method = IIVIMethod(IIVIConfig(model=IIVINetConfig(width=width)))
    return method_predictor(method, _untrained_network(width), working_set)


def _assert_only_holes_changed(before: np.ndarray, after: np.ndarray, holes: np.ndarray) -> None:
    assert after.shape == before.shape
    assert after.dtype == before.dtype
    known = ~holes
    assert np.array_equal(after[known], before[known]), "a pixel outside the hole changed"
    assert not np.array_equal(after[holes], before[holes]), "the hole was not filled"


# --------------------------------------------------------------------------- composite


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_composite_replaces_hole_pixels_only(dtype):
    rng = np.random.default_rng(0)
    peak = np.iinfo(dtype).max
    frame = rng.integers(0, peak, (10, 12, 3), dtype=dtype, endpoint=True)
    fill = rng.uniform(-0.2 * peak, 1.2 * peak, (10, 12, 3)).astype(np.float32)
    hole = np.zeros((10, 12), dtype=bool)
    hole[2:6, 3:9] = True
    hole[9, 11] = True
    original = frame.copy()
    result = composite(frame, fill, hole)
    assert np.array_equal(frame, original), "composite modified its input"
    assert result.dtype == dtype
    assert np.array_equal(result[~hole], frame[~hole])
    expected = np.clip(np.rint(fill[hole].astype(np.float64)), 0, peak).astype(dtype)
    assert np.array_equal(result[hole], expected)
    # Out-of-range fills were clipped to the sample range, not wrapped.
    assert (result[hole] == 0).any() and (result[hole] == peak).any()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_network_output_maps_unit_range_to_samples(dtype):
    peak = float(np.iinfo(dtype).max)
    output = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 1, 4).expand(2, 3, 4, 4)
    frames = network_output_to_frames(output, 3, 4, dtype)
    assert frames.shape == (2, 3, 4, 3)  # (N, valid h, valid w, channels)
    np.testing.assert_allclose(frames[1, 2, :, 0], [0.0, peak / 2, peak, peak])  # 2.0 clamped
    cropped = network_output_to_frames(output, 1, 2, dtype)
    assert cropped.shape == (2, 1, 2, 3)
    np.testing.assert_allclose(cropped[0, 0, :, 2], [0.0, peak / 2])


# --------------------------------------------------------------------------- fill_shot


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_fill_shot_changes_nothing_outside_holes(dtype):
    frames = moving_texture(5, 24, 32, dtype=dtype)
    holes = moving_box_holes(5, 24, 32, empty=(3,))
    working_set = build_working_set(frames, holes, 320, CPU)
    result = fill_shot(_untrained_predictor(working_set), working_set, frames, holes, batch_size=2)
    _assert_only_holes_changed(frames, result, holes)
    assert np.array_equal(result[3], frames[3])  # a frame without a hole is passed through


def test_frame_larger_than_working_size_keeps_its_size_and_known_pixels():
    frames = moving_texture(6, 40, 48)
    holes = moving_box_holes(6, 40, 48, box=(9, 11))
    holes[2, 0, 0] = True  # a single-pixel hole in a corner must survive the downscale too
    working_set = build_working_set(frames, holes, 16, CPU)
    assert working_set.is_resampled
    assert (working_set.valid_height, working_set.valid_width) == (13, 16)
    assert tuple(working_set.images.shape[-2:]) == (16, 16)
    result = inpaint_arrays(frames, holes, tiny_config(3, working_long_side=16), CPU)
    _assert_only_holes_changed(frames, result.frames, holes)
    assert result.iterations == 3


def test_downscaled_hole_covers_every_partly_hidden_working_pixel():
    frames = moving_texture(4, 40, 48)
    rng = np.random.default_rng(3)
    holes = rng.random((4, 40, 48)) > 0.97  # scattered single pixels
    working_set = build_working_set(frames, holes, 16, CPU)
    h, w = working_set.valid_height, working_set.valid_width
    work_holes = working_set.holes[:, 0].numpy()
    for t, y, x in zip(*np.nonzero(holes)):
        # Source pixel (y, x) lies inside working pixel (y*h//H, x*w//W).
        assert work_holes[t, y * h // 40, x * w // 48], (t, y, x)
    assert not work_holes[:, h:, :].any() and not work_holes[:, :, w:].any()


def test_size_not_multiple_of_four_is_padded_not_resampled():
    frames = moving_texture(4, 22, 30)
    holes = moving_box_holes(4, 22, 30, box=(5, 6))
    working_set = build_working_set(frames, holes, 320, CPU)
    assert (working_set.valid_height, working_set.valid_width) == (22, 30)
    assert (working_set.source_height, working_set.source_width) == (22, 30)
    assert not working_set.is_resampled
    assert tuple(working_set.images.shape) == (4, 3, 24, 32)
    # The valid part is the frame itself, not a resampled copy.
    expected = torch.from_numpy(to_unit_range(frames).transpose(0, 3, 1, 2)).half()
    assert torch.equal(working_set.images[:, :, :22, :30], expected)
    assert torch.equal(working_set.holes[:, 0, :22, :30], torch.from_numpy(holes))
    assert not working_set.holes[:, :, 22:, :].any() and not working_set.holes[:, :, :, 30:].any()

    result = fill_shot(_untrained_predictor(working_set), working_set, frames, holes)
    _assert_only_holes_changed(frames, result, holes)


def test_empty_mask_returns_input_unchanged_without_training():
    frames = moving_texture(3, 24, 32)
    holes = np.zeros((3, 24, 32), dtype=bool)
    result = inpaint_arrays(frames, holes, tiny_config(50), CPU)
    assert np.array_equal(result.frames, frames)
    assert result.iterations == 0 and result.loss_history == []


def test_a_one_pixel_hole_survives_the_working_size_and_is_filled():
    """A hole far smaller than one working pixel still makes a working hole: it is not taken
    for an empty mask, and the shot is trained and filled."""
    frames = moving_texture(3, 96, 128, seed=3)
    holes = np.zeros((3, 96, 128), dtype=bool)
    holes[1, 41, 77] = True
    config = tiny_config(2, working_long_side=32)  # a quarter of the frame's long side
    working_set = build_working_set(frames, holes, 32, CPU)
    assert working_set.is_resampled and int(working_set.holes.sum()) >= 1
    result = inpaint_arrays(frames, holes, config, CPU)
    assert result.iterations == 2
    _assert_only_holes_changed(frames, result.frames, holes)


def test_sixteen_bit_file_round_trip_keeps_known_pixels(tmp_path):
    frames = moving_texture(5, 24, 32, dtype=np.uint16, seed=8)
    frames[..., 1] |= 0x0003  # low bits that an 8-bit path would lose
    holes = moving_box_holes(5, 24, 32)
    source = write_frames(frames, Fraction(25), tmp_path / "in16.mkv")
    video = read_frames(source)
    assert video.frames.dtype == np.uint16 and np.array_equal(video.frames, frames)

    result = inpaint_arrays(video.frames, holes, tiny_config(2), CPU)
    written = write_frames(result.frames, video.fps, tmp_path / "out16.mkv")
    back = read_frames(written)
    assert back.fps == Fraction(25)
    _assert_only_holes_changed(frames, back.frames, holes)


def test_upsampled_composite_equals_a_whole_frame_resize_inside_the_hole():
    """The fill is upsampled over the hole's bounding box only, with the pixel mapping of a
    whole-frame bicubic resize: the same pixels at a fraction of the memory."""
    import cv2

    from archive_inpaint.inference.fill import composite_upsampled

    rng = np.random.default_rng(0)
    fill = (rng.random((45, 80, 3)) * 255).astype(np.float32)
    frame = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
    hole = np.zeros((180, 320), dtype=bool)
    hole[50:90, 100:170] = True
    hole[150:160, 10:20] = True
    whole = composite(frame, cv2.resize(fill, (320, 180), interpolation=cv2.INTER_CUBIC), hole)
    assert (composite_upsampled(frame, fill, hole) == whole).all()
    assert (composite_upsampled(frame, fill, np.zeros_like(hole)) == frame).all()

"""Single-frame masks: the swapped (frame -> mask) internal learning of IIVI §4.2."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch

from archive_inpaint.config import MaskPropagationConfig
from archive_inpaint.media import MediaError, read_frames, write_frames
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.media.masks import dilate_holes
from archive_inpaint.models.mask_net import MaskNet, MaskNetConfig
from archive_inpaint.pipeline import ShotInputs, inpaint_files, predicted_masks_path
from archive_inpaint.training.mask_propagation import (
    margin_px,
    paste_batch,
    probability_to_mask,
    propagate_masks,
    weighted_bce,
)
from engine_fixtures import tiny_config, write_gray_video

CPU = torch.device("cpu")
FPS = Fraction(25)


def object_shot(num_frames=6, height=64, width=80, seed=0):
    """A textured grey background and a saturated, striped object moving across it."""
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(60, 160, (height, width + 40), dtype=np.uint8), (5, 5), 1.0)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    holes = np.zeros((num_frames, height, width), dtype=bool)
    for t in range(num_frames):
        frames[t] = background[:, 2 * t : 2 * t + width, None]
        centre = (14 + 9 * t, 24 + 3 * t)
        blob = np.zeros((height, width), dtype=np.uint8)
        cv2.ellipse(blob, centre, (9, 7), 0, 0, 360, 1, -1)
        object_pixels = blob > 0
        stripes = (np.arange(width)[None, :] // 3 % 2 == 0) & object_pixels
        frames[t][object_pixels] = (220, 40, 30)
        frames[t][stripes] = (250, 200, 0)
        holes[t] = object_pixels
    return frames, holes


def test_weighted_bce_penalises_a_missed_object_more_than_extra_background():
    target = torch.tensor([[[[1.0, 0.0]]]])
    nothing_ignored = torch.zeros_like(target, dtype=torch.bool)
    confident_wrong = torch.tensor(3.0)
    missed_object = weighted_bce(torch.stack([-confident_wrong, -confident_wrong]).view(1, 1, 1, 2), target, nothing_ignored, 0.8)
    extra_background = weighted_bce(torch.stack([confident_wrong, confident_wrong]).view(1, 1, 1, 2), target, nothing_ignored, 0.8)
    assert missed_object > extra_background
    # Ignored pixels (the object's original place) do not count at all.
    ignore_second = torch.tensor([[[[False, True]]]])
    logits = torch.tensor([[[[3.0, 50.0]]]])
    assert weighted_bce(logits, target, ignore_second, 0.8) == pytest.approx(float(torch.nn.functional.softplus(-logits[..., 0])), rel=1e-5)


def test_paste_batch_moves_the_object_and_nothing_else():
    frames, holes = object_shot(1)
    image = torch.from_numpy(frames[0]).permute(2, 0, 1).float()
    mask = torch.from_numpy(holes[0])[None].float()
    inputs, targets = paste_batch(image, mask, 3, torch.Generator().manual_seed(0))
    for pasted, target in zip(inputs, targets):
        assert target.sum() == mask.sum()  # a circular shift keeps the object whole
        outside = target[0] < 0.5
        assert torch.equal(pasted[:, outside], image[:, outside])
        assert (pasted[:, ~outside] != image[:, ~outside]).any() or torch.equal(target, mask)


def test_masks_are_propagated_from_one_annotated_frame():
    frames, holes = object_shot()
    store = FrameStore.from_array(frames)
    predicted = FrameStore.create((len(frames), 64, 80, 1), bool)
    config = MaskPropagationConfig(model=MaskNetConfig(width=8, depth=3), iterations=300, batch_size=4)
    propagate_masks(store, holes[0], 0, config, CPU, predicted)
    masks = predicted.to_array()[..., 0]
    assert (masks[0] == holes[0]).all()  # the annotated frame keeps the user's mask
    for t in range(1, len(frames)):
        intersection = (masks[t] & holes[t]).sum()
        union = (masks[t] | holes[t]).sum()
        assert intersection / union > 0.6, f"frame {t}: IoU {intersection / union:.2f}"
        assert intersection / holes[t].sum() > 0.9, f"frame {t}: recall {intersection / holes[t].sum():.2f}"


def test_dilate_grows_the_annotated_and_the_predicted_masks():
    frames, holes = object_shot(num_frames=3)
    config = MaskPropagationConfig(model=MaskNetConfig(width=4, depth=2), iterations=5, batch_size=2)
    plain, grown = (FrameStore.create((3, 64, 80, 1), bool) for _ in range(2))
    propagate_masks(FrameStore.from_array(frames), holes[1], 1, config, CPU, plain)
    propagate_masks(FrameStore.from_array(frames), holes[1], 1, config, CPU, grown, dilate=2)
    assert np.array_equal(grown.frame(1)[..., 0], dilate_holes(holes[1][None], 2)[0])
    for t in (0, 2):
        assert np.array_equal(grown.frame(t)[..., 0], dilate_holes(plain.frame(t)[..., 0][None], 2)[0])


def test_predicted_masks_favour_recall_with_a_margin_scaled_to_the_frame():
    """Threshold below one half, then a margin of ``margin_working_px`` working pixels, which is
    more frame pixels the more the frame was downscaled for the network."""
    config = MaskPropagationConfig(working_long_side=320, threshold=0.3, margin_working_px=1.0)
    assert margin_px(180, 320, config) == 1  # the network works at the frame's own size
    assert margin_px(360, 640, config) == 2
    assert margin_px(563, 1000, config) == 4  # 3.125 frame px per working px, rounded up

    probability = np.zeros((360, 640), dtype=np.float32)
    probability[100, 200] = 0.35  # unsure, but above the threshold: kept
    probability[300, 500] = 0.25  # below it: dropped
    mask = probability_to_mask(probability, config)
    rows, cols = np.nonzero(mask)
    assert not mask[300, 500] and mask[100, 200]
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (98, 102, 198, 202)  # grown by 2 px
    no_margin = MaskPropagationConfig(working_long_side=320, threshold=0.3, margin_working_px=0.0)
    assert int(probability_to_mask(probability, no_margin).sum()) == 1
    with pytest.raises(ValueError, match="threshold"):
        MaskPropagationConfig(threshold=1.0)
    with pytest.raises(ValueError, match="margin_working_px"):
        MaskPropagationConfig(margin_working_px=-1.0)


def test_mask_network_shapes_and_stride():
    network = MaskNet(MaskNetConfig(width=4, depth=2))
    assert network(torch.zeros(2, 3, 32, 40)).shape == (2, 1, 32, 40)
    with pytest.raises(ValueError, match="multiple of 4"):
        network(torch.zeros(1, 3, 30, 40))


def _files(tmp_path, frames, annotation):
    video = write_frames(frames, FPS, tmp_path / "shot.mkv")
    single = tmp_path / "annotation.png"
    cv2.imwrite(str(single), annotation.astype(np.uint8) * 255)
    return video, single


def test_single_frame_mode_end_to_end_writes_and_uses_predicted_masks(tmp_path):
    frames, holes = object_shot()
    video, annotation = _files(tmp_path, frames, holes[2])
    output = tmp_path / "out.mkv"
    config = tiny_config(3)
    outputs, _ = inpaint_files(
        ShotInputs(video=video, mask=annotation, mask_mode="single-frame", mask_frame=2), output, config, CPU
    )
    assert outputs.predicted_masks == predicted_masks_path(output) == tmp_path / "out.masks.mkv"
    predicted = read_frames(outputs.predicted_masks).frames[..., 0] > 127
    assert predicted.shape == holes.shape and (predicted[2] == holes[2]).all()
    restored = read_frames(output).frames
    assert (restored[~predicted] == frames[~predicted]).all()  # only predicted holes change
    assert (restored[predicted] != frames[predicted]).any()


def test_single_frame_mode_rejects_bad_annotations(tmp_path):
    frames, holes = object_shot(num_frames=3)
    video, annotation = _files(tmp_path, frames, holes[0])
    with pytest.raises(MediaError, match="outside the 3 frames"):
        inpaint_files(ShotInputs(video=video, mask=annotation, mask_mode="single-frame", mask_frame=5), tmp_path / "o.mkv", tiny_config(1), CPU)
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.zeros((64, 80), np.uint8))
    with pytest.raises(MediaError, match="empty at the annotated frame 0"):
        inpaint_files(ShotInputs(video=video, mask=empty, mask_mode="single-frame"), tmp_path / "o.mkv", tiny_config(1), CPU)
    mask_video = write_gray_video(tmp_path / "masks.mkv", holes, FPS)
    with pytest.raises(MediaError, match="would overwrite the input"):
        inpaint_files(ShotInputs(video=video, mask=mask_video, mask_mode="single-frame"), tmp_path / "masks.mkv", tiny_config(1), CPU)
    with pytest.raises(ValueError, match="mask_mode"):
        ShotInputs(video=video, mask=annotation, mask_mode="one")

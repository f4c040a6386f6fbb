"""Internal training: pseudo-holes, the known-pixel loss, the training loop and its checkpoints."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from archive_inpaint.training.losses import known_pixel_l1
from archive_inpaint.training.pseudo_holes import (
    sample_pseudo_holes,
    translate_circular,
    union_with_real,
)
from archive_inpaint.training.trainer import make_network, train
from archive_inpaint.training.working_set import build_working_set
from engine_fixtures import (  # noqa: F401  (single_thread is a fixture)
    CPU,
    carphone_clip,
    moving_box_holes,
    moving_texture,
    single_thread,
    state_dicts_equal,
    tiny_config,
)

pytestmark = pytest.mark.usefixtures("single_thread")

CKPT_NAME = re.compile(r"^ckpt_([0-9a-f]+)_(\d{8})\.pt$")


# --------------------------------------------------------------------------- pseudo-holes

HP, WP = 16, 20  # padded size
VH, VW = 13, 18  # valid (unpadded) part
POOL = [0, 2, 3, 5]


def _hole_stack() -> torch.Tensor:
    """(6, 1, HP, WP) holes of distinct areas; frame 1 is empty, frame 4 is not in POOL."""
    holes = torch.zeros(6, 1, HP, WP, dtype=torch.bool)
    holes[0, 0, 2:5, 3] = True  # L shape, area 7
    holes[0, 0, 4, 3:8] = True
    holes[2, 0, 6:9, 8:12] = True  # 3x4 box, area 12
    holes[3, 0, 1, 1] = True  # two separate specks, area 2
    holes[3, 0, 10, 15] = True
    holes[4, 0, 0:5, 0:5] = True  # 25: must never be drawn
    holes[5, 0, 10:13, 14:18] = True  # against the valid border: wrapping shows; area 12
    return holes


def _matching_sources(mask: np.ndarray, sources: np.ndarray) -> set[int]:
    """Indices of source masks (valid part) of which ``mask`` is some circular translation."""
    found = set()
    for index, source in enumerate(sources):
        if source.sum() != mask.sum():
            continue
        for dy in range(VH):
            for dx in range(VW):
                if np.array_equal(np.roll(source, (dy, dx), axis=(0, 1)), mask):
                    found.add(index)
                    break
            if index in found:
                break
    return found


def test_pseudo_holes_are_circular_translations_of_pool_masks():
    holes = _hole_stack()
    generator = torch.Generator().manual_seed(7)
    pseudo = sample_pseudo_holes(holes, torch.tensor(POOL), 24, VH, VW, generator)
    assert pseudo.shape == (24, 1, HP, WP)
    assert pseudo.dtype == torch.bool
    sources = holes[:, 0, :VH, :VW].numpy()
    moved_any = False
    for mask in pseudo[:, 0].numpy():
        # Nothing in the padded region.
        assert not mask[VH:, :].any()
        assert not mask[:, VW:].any()
        valid = mask[:VH, :VW]
        matches = _matching_sources(valid, sources)
        assert matches, "pseudo-hole is not a translation of any frame's hole"
        assert matches <= set(POOL), f"drawn from frames {matches} outside the pool {POOL}"
        # Same area as its source: the circular shift loses no pixel.
        assert valid.sum() == sources[min(matches)].sum()
        if not any(np.array_equal(valid, sources[i]) for i in POOL):
            moved_any = True
    assert moved_any, "no pseudo-hole was translated at all"


def test_pseudo_holes_follow_the_generator():
    holes = _hole_stack()
    pool = torch.tensor(POOL)
    a = sample_pseudo_holes(holes, pool, 8, VH, VW, torch.Generator().manual_seed(1))
    b = sample_pseudo_holes(holes, pool, 8, VH, VW, torch.Generator().manual_seed(1))
    c = sample_pseudo_holes(holes, pool, 8, VH, VW, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_translate_circular_wraps_around():
    mask = torch.zeros(1, 1, 4, 5, dtype=torch.bool)
    mask[0, 0, 3, 4] = True  # bottom-right corner
    moved = translate_circular(mask, torch.tensor([[1, 2]]))
    assert moved.sum() == 1
    assert moved[0, 0, 0, 1]  # wrapped to the top-left area


def test_union_with_real_is_logical_or():
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(3, 1, 8, 8, generator=generator) > 0.7
    pseudo = torch.rand(3, 1, 8, 8, generator=generator) > 0.7
    union = union_with_real(real, pseudo)
    assert union.shape == real.shape
    assert union[real].all()  # contains the real hole
    assert union[pseudo].all()  # contains the pseudo-hole
    assert not union[~real & ~pseudo].any()  # and nothing else
    assert (real & ~pseudo).any() and (pseudo & ~real).any()  # the check was not vacuous


def test_source_pool_is_the_frames_with_holes():
    frames = moving_texture(6, 24, 32)
    holes = moving_box_holes(6, 24, 32, empty=(1, 4))
    working_set = build_working_set(frames, holes, 320, CPU)
    assert working_set.frames_with_holes().tolist() == [0, 2, 3, 5]


# --------------------------------------------------------------------------- loss


def _loss_inputs():
    generator = torch.Generator().manual_seed(5)
    prediction = torch.rand(2, 3, HP, WP, generator=generator) * 2 - 1
    target = torch.rand(2, 3, HP, WP, generator=generator) * 2 - 1
    real = torch.zeros(2, 1, HP, WP, dtype=torch.bool)
    real[0, 0, 3:8, 4:10] = True
    real[1, 0, 9:12, 1:6] = True
    return prediction, target, real


def test_loss_ignores_real_hole_pixels():
    prediction, target, real = _loss_inputs()
    base = known_pixel_l1(prediction, target, real, VH, VW)
    inside = real.expand_as(prediction)
    changed_prediction, changed_target = prediction.clone(), target.clone()
    changed_prediction[inside] += 3.0
    changed_target[inside] -= 2.0
    assert torch.equal(known_pixel_l1(changed_prediction, target, real, VH, VW), base)
    assert torch.equal(known_pixel_l1(prediction, changed_target, real, VH, VW), base)


def test_loss_counts_known_pixels():
    prediction, target, real = _loss_inputs()
    base = known_pixel_l1(prediction, target, real, VH, VW)
    assert not real[0, 0, 0, 0]
    changed = prediction.clone()
    changed[0, 1, 0, 0] = target[0, 1, 0, 0] + 5.0  # a known pixel, far off
    assert known_pixel_l1(changed, target, real, VH, VW) > base


def test_loss_ignores_padded_region():
    prediction, target, real = _loss_inputs()
    base = known_pixel_l1(prediction, target, real, VH, VW)
    changed = prediction.clone()
    changed[:, :, VH:, :] += 4.0
    changed[:, :, :, VW:] -= 4.0
    assert torch.equal(known_pixel_l1(changed, target, real, VH, VW), base)
    # The same change counts when those pixels are declared valid.
    assert known_pixel_l1(changed, target, real, HP, WP) != known_pixel_l1(
        prediction, target, real, HP, WP
    )


@pytest.mark.parametrize("box", [(0, 1, 0, 1), (2, 12, 3, 15)])
def test_loss_is_mean_over_known_values_whatever_the_hole_area(box):
    y0, y1, x0, x1 = box
    real = torch.zeros(2, 1, HP, WP, dtype=torch.bool)
    real[:, :, y0:y1, x0:x1] = True
    prediction = torch.zeros(2, 3, HP, WP)
    target = torch.full((2, 3, HP, WP), 0.25)
    target[real.expand_as(target)] = 9.0  # hole: ignored
    target[:, :, VH:, :] = -7.0  # padding: ignored
    loss = known_pixel_l1(prediction, target, real, VH, VW)
    torch.testing.assert_close(loss, torch.tensor(0.25))


def test_loss_with_no_known_pixel_is_finite():
    prediction, target, _ = _loss_inputs()
    everything = torch.ones(2, 1, HP, WP, dtype=torch.bool)
    assert known_pixel_l1(prediction, target, everything, VH, VW).item() == 0.0


# --------------------------------------------------------------------------- training loop


def _fixed_batch_loss(network, working_set) -> float:
    """known_pixel_l1 of the final output on fixed frames with fixed pseudo-holes."""
    generator = torch.Generator().manual_seed(99)
    ids = torch.arange(4)
    images = working_set.images[ids].float()
    real = working_set.holes[ids]
    pseudo = sample_pseudo_holes(
        working_set.holes,
        working_set.frames_with_holes(),
        4,
        working_set.valid_height,
        working_set.valid_width,
        generator,
    )
    hole = union_with_real(real, pseudo).float()
    network.eval()
    with torch.no_grad():
        output = network(images, hole).final
    return float(
        known_pixel_l1(output, images, real, working_set.valid_height, working_set.valid_width)
    )


def _synthetic_tinted_clip() -> np.ndarray:
    texture = moving_texture(8, 40, 48, seed=4).astype(np.float32)
    return np.clip(texture * 0.5 + np.array([150.0, 60.0, 20.0]), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("clip", ["carphone", "synthetic"])
def test_short_training_lowers_known_pixel_loss(clip):
    frames = carphone_clip(8, (48, 40)) if clip == "carphone" else _synthetic_tinted_clip()
    holes = moving_box_holes(8, 40, 48, box=(8, 10))
    working_set = build_working_set(frames, holes, 320, CPU)
    config = tiny_config(30, width=4, batch_size=2, learning_rate=2e-3)
    before = _fixed_batch_loss(make_network(config, CPU), working_set)
    result = train(working_set, config, CPU)
    after = _fixed_batch_loss(result.network, working_set)
    assert after < 0.85 * before, (before, after)
    history = result.loss_history
    assert len(history) == 30 and all(np.isfinite(history))
    assert np.mean(history[-5:]) < 0.9 * np.mean(history[:5]), history


@pytest.fixture
def small_shot():
    frames = moving_texture(6, 24, 32, seed=2)
    holes = moving_box_holes(6, 24, 32, box=(5, 7), empty=(2,))
    return frames, holes, build_working_set(frames, holes, 320, CPU)


def test_same_seed_same_weights_other_seed_other_weights(small_shot):
    _, _, working_set = small_shot
    a = train(working_set, tiny_config(4, seed=11), CPU)
    b = train(working_set, tiny_config(4, seed=11), CPU)
    c = train(working_set, tiny_config(4, seed=12), CPU)
    assert state_dicts_equal(a.network.state_dict(), b.network.state_dict())
    assert a.loss_history == b.loss_history
    assert not state_dicts_equal(a.network.state_dict(), c.network.state_dict())
    assert a.loss_history != c.loss_history


def _checkpoints(directory: Path) -> list[tuple[str, int]]:
    found = []
    for path in sorted(directory.iterdir()):
        match = CKPT_NAME.match(path.name)
        assert match, f"unexpected file {path.name} in the checkpoint folder"
        found.append((match[1], int(match[2])))
    return found


def test_resume_continues_and_equals_uninterrupted_run(small_shot, tmp_path):
    _, _, working_set = small_shot
    folder = tmp_path / "ckpt"
    first = train(working_set, tiny_config(6, checkpoint_every=3), CPU, checkpoint_dir=folder)
    assert first.resumed_from == 0 and len(first.loss_history) == 6
    assert [it for _, it in _checkpoints(folder)] == [3, 6]

    steps: list[tuple[int, int, float]] = []
    # A different cadence and ceiling must not prevent the resume.
    resumed = train(
        working_set,
        tiny_config(10, checkpoint_every=2),
        CPU,
        checkpoint_dir=folder,
        on_step=lambda i, total, loss: steps.append((i, total, loss)),
    )
    assert resumed.resumed_from == 6
    assert resumed.iterations == 10
    assert [i for i, _, _ in steps] == [7, 8, 9, 10]
    assert {total for _, total, _ in steps} == {10}
    assert len(resumed.loss_history) == 10
    assert resumed.loss_history[:6] == first.loss_history
    assert resumed.loss_history[6:] == [loss for _, _, loss in steps]
    checkpoints = _checkpoints(folder)
    assert [it for _, it in checkpoints] == [8, 10]  # keep_checkpoints=2
    assert len({fp for fp, _ in checkpoints}) == 1

    straight = train(working_set, tiny_config(10), CPU)
    assert straight.resumed_from == 0
    assert state_dicts_equal(resumed.network.state_dict(), straight.network.state_dict())
    assert resumed.loss_history == straight.loss_history
    assert not state_dicts_equal(first.network.state_dict(), straight.network.state_dict())


@pytest.mark.parametrize(
    "change", ["width", "seed", "learning_rate", "batch_size", "frame_pixel", "mask", "refine"]
)
def test_checkpoint_of_other_config_or_shot_is_not_resumed(small_shot, tmp_path, change):
    frames, holes, working_set = small_shot
    folder = tmp_path / "ckpt"
    train(working_set, tiny_config(3), CPU, checkpoint_dir=folder)
    original = _checkpoints(folder)
    assert [it for _, it in original] == [3]

    config_changes = {
        "width": dict(width=8),
        "seed": dict(seed=1),
        "learning_rate": dict(learning_rate=1e-3),
        "batch_size": dict(batch_size=3),
        "refine": dict(use_refine=False),
    }
    config = tiny_config(4, **config_changes.get(change, {}))
    other_set = working_set
    if change == "frame_pixel":
        changed = frames.copy()
        changed[4, 20, 30, 1] ^= 0x40
        other_set = build_working_set(changed, holes, 320, CPU)
    elif change == "mask":
        changed = holes.copy()
        changed[0, 0, 0] = True
        other_set = build_working_set(frames, changed, 320, CPU)

    result = train(other_set, config, CPU, checkpoint_dir=folder)
    assert result.resumed_from == 0
    assert len(result.loss_history) == 4
    after = _checkpoints(folder)
    # The other run's checkpoint is left alone, and the new one has its own fingerprint.
    assert original[0] in after
    assert len({fp for fp, _ in after}) == 2


@pytest.mark.parametrize(
    ("iterations", "every", "keep", "expected"),
    [(5, 1, 1, [5]), (9, 2, 3, [6, 8, 9]), (4, 2, 5, [2, 4])],
)
def test_keep_checkpoints_prunes_old_files(small_shot, tmp_path, iterations, every, keep, expected):
    _, _, working_set = small_shot
    folder = tmp_path / "ckpt"
    train(
        working_set,
        tiny_config(iterations, checkpoint_every=every, keep_checkpoints=keep),
        CPU,
        checkpoint_dir=folder,
    )
    # _checkpoints fails on any other file: no temporary file is left behind.
    assert [it for _, it in _checkpoints(folder)] == expected
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_on_checkpoint_sees_each_checkpoint_complete(small_shot, tmp_path):
    _, _, working_set = small_shot
    folder = tmp_path / "ckpt"
    seen: list[tuple[str, bool]] = []
    train(
        working_set,
        tiny_config(7, checkpoint_every=3, keep_checkpoints=5),
        CPU,
        checkpoint_dir=folder,
        on_checkpoint=lambda path: seen.append((path.name, path.is_file())),
    )
    # Steps 3 and 6 by cadence, 7 as the last step; each file exists when the hook runs.
    assert [name[-11:-3] for name, _ in seen] == ["00000003", "00000006", "00000007"]
    assert all(complete for _, complete in seen)


def test_translate_circular_is_each_mask_rolled_by_its_own_shift():
    generator = torch.Generator().manual_seed(0)
    masks = torch.rand(6, 1, 13, 17, generator=generator) > 0.7
    shifts = torch.stack(
        [torch.randint(-20, 20, (6,), generator=generator), torch.randint(-20, 20, (6,), generator=generator)], 1
    )
    rolled = torch.stack([torch.roll(m, shifts=(int(dy), int(dx)), dims=(-2, -1)) for m, (dy, dx) in zip(masks, shifts.tolist())])
    assert torch.equal(translate_circular(masks, shifts), rolled)

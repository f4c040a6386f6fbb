"""DIP-Vid-Flow: the generator, flow estimation and warping, flow targets, losses, the batch
schedule, the fixed noise, and a short training run (CPU, tiny frames)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from archive_inpaint.config import DIPVidFlowConfig, FlowConfig, ProgressiveConfig, TrainConfig
from archive_inpaint.methods.dip_vid_flow import (
    DIPVidFlowMethod,
    FlowBatch,
    batch_schedule,
    consistency_pairs,
    flow_reconstruction_loss,
    image_flow_consistency_loss,
    inference_window,
    perceptual_loss,
)
from archive_inpaint.models.dip_net import DIPNet, DIPNetConfig, flow_channel_slice
from archive_inpaint.training.optical_flow import (
    FlowTargets,
    backward_warp,
    consistency_score,
    make_flow_estimator,
    register_flow_estimator,
)
from archive_inpaint.training import optical_flow
from archive_inpaint.training.perceptual import VGGFeatures
from archive_inpaint.training.working_set import build_working_set
from engine_fixtures import (  # noqa: F401  (single_thread is a fixture)
    CPU,
    moving_box_holes,
    moving_texture,
    single_thread,
)

pytestmark = pytest.mark.usefixtures("single_thread")

T, H, W = 8, 32, 48


def tiny_dip_config(
    *,
    iterations: int = 60,
    batch_size: int = 3,
    updates_per_batch: int = 5,
    seed: int = 0,
    learning_rate: float = 1e-2,
) -> DIPVidFlowConfig:
    return DIPVidFlowConfig(
        model=DIPNetConfig(width=8, depth=3),
        train=TrainConfig(iterations=iterations, batch_size=batch_size, learning_rate=learning_rate, seed=seed),
        progressive=ProgressiveConfig(max_stages=1),
        flow=FlowConfig(estimator="dis"),
        updates_per_batch=updates_per_batch,
        perceptual_weight=0.0,
    )


def tiny_working_set(num_frames: int = T):
    frames = moving_texture(num_frames, H, W, velocity=(1, 2))
    holes = moving_box_holes(num_frames, H, W)
    return build_working_set(frames, holes, 320, CPU)


def prepared_method(config: DIPVidFlowConfig | None = None, num_frames: int = T):
    working_set = tiny_working_set(num_frames)
    method = DIPVidFlowMethod(config or tiny_dip_config())
    method.prepare(working_set, CPU)
    return method, working_set


# --------------------------------------------------------------------------- network


def test_network_output_shapes_at_sizes_not_a_multiple_of_its_stride():
    config = DIPNetConfig(width=4)  # depth 6: total stride 64, and 36 x 52 is not a multiple
    network = DIPNet(config)
    output = network(torch.rand(2, 1, 36, 52, generator=torch.Generator().manual_seed(0)) * 0.1)
    assert output.image.shape == (2, 3, 36, 52)
    assert output.flows.shape == (2, 12, 36, 52)
    assert output.image.min() >= -1.0 and output.image.max() <= 1.0
    # Channel order: per stride, forward dx, dy then backward dx, dy.
    assert flow_channel_slice(config.flow_strides, 3, backward=True) == slice(6, 8)
    assert flow_channel_slice(config.flow_strides, 5, backward=False) == slice(8, 10)
    with pytest.raises(ValueError, match="stride 2"):
        flow_channel_slice(config.flow_strides, 2, backward=False)


def test_network_widths_are_capped_at_eight_times_the_first():
    assert DIPNetConfig(width=16, depth=6).widths == (16, 32, 64, 128, 128, 128)


def test_network_output_does_not_depend_on_train_or_eval_mode():
    network = DIPNet(DIPNetConfig(width=4, depth=3))
    noise = torch.rand(3, 1, 20, 28, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        trained = network.train()(noise).image
        evaluated = network.eval()(noise).image
    assert torch.equal(trained, evaluated)


# --------------------------------------------------------------------------- warping and consistency


def test_backward_warp_undoes_a_known_shift():
    pattern = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(2))
    dx, dy = 3, -2
    # The neighbour shows the pattern moved by (dx, dy): neighbour[y + dy, x + dx] = pattern[y, x].
    neighbour = torch.roll(pattern, shifts=(dy, dx), dims=(2, 3))
    flow = torch.zeros(1, 2, 16, 24)
    flow[:, 0], flow[:, 1] = dx, dy
    warped, in_bounds = backward_warp(neighbour, flow)
    expected_in = torch.zeros(1, 1, 16, 24, dtype=torch.bool)
    expected_in[..., 2:, : 24 - 3] = True  # y + dy >= 0 and x + dx <= W - 1
    assert torch.equal(in_bounds, expected_in)
    inside = in_bounds.expand_as(pattern)
    assert torch.allclose(warped[inside], pattern[inside], atol=1e-5)
    assert not torch.allclose(neighbour[inside], pattern[inside], atol=1e-2)  # the shift mattered


def test_consistency_flags_a_disagreeing_backward_flow():
    forward = torch.zeros(1, 2, 16, 24)
    forward[:, 0] = 2.0
    backward = torch.zeros(1, 2, 16, 24)
    backward[:, 0] = -2.0
    backward[:, :, 4:8, 10:14] = 3.0  # disagrees here (in the second frame's coordinates)
    score = consistency_score(forward, backward)[0, 0]
    assert score[5, 9] < 0.5  # lands at x = 11, inside the disagreeing region
    assert score[12, 9] > 0.99  # lands where the flows agree
    assert score[5, 15] > 0.99  # lands at x = 17, right of the region
    assert score[5, 8:12].lt(0.5).all()  # exactly the pixels mapped into columns 10..13


# --------------------------------------------------------------------------- flow targets and the flow loss


class MarkedShiftEstimator:
    """A stand-in estimator with a known answer: frames carry their index in pixel (0, 0) (red =
    40 * t) and content moves ``step`` px in x per frame; the flow from a later to an earlier
    frame is wrong inside BAD_PATCH."""

    name = "marked-shift"
    BAD_PATCH = (slice(10, 16), slice(20, 28))

    def __init__(self, step: float = 2.0) -> None:
        self.step = step

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        a, b = round(first[0, 0, 0] / 40), round(second[0, 0, 0] / 40)
        flow = np.zeros((*first.shape[:2], 2), np.float32)
        flow[..., 0] = self.step * (b - a)
        if b < a:
            flow[self.BAD_PATCH] = 5.0
        return flow


def marked_working_set():
    frames = moving_texture(4, 30, 46)
    for t in range(4):
        frames[t, 0, 0, :] = 40 * t
    holes = np.zeros((4, 30, 46), dtype=bool)
    holes[1, 4:10, 4:10] = True
    working_set = build_working_set(frames, holes, 320, CPU)
    assert working_set.images.shape[2:] == (32, 48)  # padded: rows 30+, columns 46+ are not picture
    return working_set


def test_flow_targets_are_reliable_only_where_known_consistent_and_in_picture():
    targets = FlowTargets.build(marked_working_set(), (1,), MarkedShiftEstimator())
    backward = targets.field(1, "backward")
    reliable = backward.reliable[1, 0]
    assert not reliable[4:10, 4:10].any()  # frame 1's own hole
    assert not reliable[10:16, 20:28].any()  # the inconsistent patch
    assert not reliable[:, :2].any()  # flow -2 px leaves the picture
    assert not reliable[30:].any() and not reliable[:, 46:].any()  # padding
    assert backward.flow[1, :, 30:].abs().sum() == 0
    assert reliable[20:28, 10:40].all()
    assert backward.hole_either[1, 0, 4:10, 4:10].all()
    assert not backward.reliable[0].any()  # frame 0 has no earlier frame
    # Frame 0's forward flow meets frame 1's hole 2 px to the right: mask_flow covers its source.
    forward = targets.field(1, "forward")
    assert forward.hole_either[0, 0, 4:10, 2:8].all() and not forward.hole_either[0, 0, 4:10, 8:].any()
    assert not forward.reliable[0, 0, 4:10, 2:8].any()
    assert forward.scale == pytest.approx(2.0) and backward.scale >= 5.0


def test_flow_targets_drop_consistent_matches_that_leave_the_picture():
    # Half a pixel: going out and back "agrees" (score ~0.97), yet column 0 samples half outside.
    targets = FlowTargets.build(marked_working_set(), (1,), MarkedShiftEstimator(step=0.5))
    backward = targets.field(1, "backward")
    assert not backward.reliable[2, 0, 20:28, 0].any()
    assert backward.reliable[2, 0, 20:28, 1:40].all()
    assert backward.scale == 5.0  # BAD_PATCH's 5 px is the largest component


def test_flow_loss_ignores_masked_and_inconsistent_pixels():
    targets = FlowTargets.build(marked_working_set(), (1,), MarkedShiftEstimator())
    field = targets.field(1, "backward")
    frames = torch.tensor([1])
    predicted = torch.rand(1, 2, 32, 48, generator=torch.Generator().manual_seed(3))
    base = flow_reconstruction_loss(predicted, field, frames)
    for y, x in ((6, 6), (12, 24), (31, 47), (15, 1)):  # hole, inconsistent, padding, out of picture
        changed = predicted.clone()
        changed[0, :, y, x] += 10.0
        assert torch.equal(flow_reconstruction_loss(changed, field, frames), base), (y, x)
    changed = predicted.clone()
    changed[0, :, 24, 30] += 10.0  # reliable
    assert flow_reconstruction_loss(changed, field, frames) > base


def test_image_flow_consistency_loss_counts_only_holes_in_bounds():
    batch = FlowBatch(start=0, stride=1, direction="forward", size=2)
    sources, neighbours = consistency_pairs(batch)
    assert (sources, neighbours) == ([0], [1])
    assert consistency_pairs(FlowBatch(0, 1, "backward", 3)) == ([1, 2], [0, 1])
    images = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(4), requires_grad=True)
    flows = torch.zeros(2, 2, 16, 24)
    flows[:, 0] = 2.0
    hole_either = torch.zeros(2, 1, 16, 24, dtype=torch.bool)
    hole_either[0, 0, 4:8, 4:8] = True
    loss = image_flow_consistency_loss(images, flows, hole_either, sources, neighbours)
    leaving = hole_either.clone()
    leaving[0, 0, 4:8, 22:] = True  # samples leave the frame here: not counted
    assert torch.equal(image_flow_consistency_loss(images, flows, leaving, sources, neighbours), loss)
    loss.backward()
    grad = images.grad.abs().sum(dim=1)
    assert grad[0].sum() == 0  # the source is detached
    assert grad[1, 4:8, 6:10].gt(0).all()  # the neighbour, where the hole pixels sample it
    assert grad[1, :, 10:].sum() == 0  # and nowhere else


# --------------------------------------------------------------------------- schedule and noise


def test_batch_schedule_is_seeded_and_strided():
    schedule = batch_schedule(8, 3, (1, 3, 5), seed=0)
    # Stride 1: starts 0..5, stride 3: starts 0, 1, stride 5 does not fit; both directions.
    expected = {(t, 1, d) for t in range(6) for d in ("forward", "backward")}
    expected |= {(t, 3, d) for t in range(2) for d in ("forward", "backward")}
    assert {(b.start, b.stride, b.direction) for b in schedule} == expected
    assert len(schedule) == len(expected)
    for batch in schedule:
        assert batch.frames == [batch.start + k * batch.stride for k in range(3)]
        assert batch.frames[-1] < 8
    assert schedule == batch_schedule(8, 3, (1, 3, 5), seed=0)
    assert schedule != batch_schedule(8, 3, (1, 3, 5), seed=1)
    assert schedule != sorted(schedule, key=lambda b: (b.stride, b.start, b.direction))  # shuffled
    # A shot shorter than a batch: all its frames at stride 1.
    short = batch_schedule(2, 5, (1, 3, 5), seed=0)
    assert sorted((b.frames, b.stride) for b in short) == [([0, 1], 1), ([0, 1], 1)]


def test_method_batch_follows_from_the_iteration():
    method, _ = prepared_method(tiny_dip_config(updates_per_batch=4))
    schedule = method.schedule
    for k in range(3):
        steps = range(4 * k + 1, 4 * k + 5)
        assert all(method.batch_for_iteration(i) == schedule[k] for i in steps)
    assert method.batch_for_iteration(5) != method.batch_for_iteration(4)
    assert method.batch_for_iteration(4 * len(schedule) + 1) == schedule[0]  # wraps around
    again, _ = prepared_method(tiny_dip_config(updates_per_batch=4))
    steps = range(1, 40)
    assert [again.batch_for_iteration(i) for i in steps] == [method.batch_for_iteration(i) for i in steps]


def test_noise_maps_are_fixed_and_seeded():
    method, working_set = prepared_method()
    noise = method.noise.clone()
    assert noise.shape == (T, 1, H, W)
    assert noise.min() >= 0.0 and noise.max() <= 0.1 and noise.std() > 0.02
    same, _ = prepared_method()
    other, _ = prepared_method(tiny_dip_config(seed=1))
    assert torch.equal(same.noise, noise)
    assert not torch.equal(other.noise, noise)
    assert not torch.equal(noise[0], noise[1])  # one map per frame
    torch.manual_seed(0)
    network = method.build_network()
    optimizer = method.build_optimizer(network)
    for iteration in (1, 2):
        method.training_step(network, optimizer, working_set, iteration, torch.Generator())
    assert torch.equal(method.noise, noise)  # training never changes the input


# --------------------------------------------------------------------------- training and filling


def test_short_training_lowers_the_image_loss():
    method, working_set = prepared_method(tiny_dip_config(iterations=80, learning_rate=3e-3))
    torch.manual_seed(0)
    network = method.build_network()
    optimizer = method.build_optimizer(network)
    probe = FlowBatch(start=2, stride=1, direction="forward", size=3)
    with torch.no_grad():
        before = method.compute_losses(network, working_set, probe)["image"].item()
    totals = [method.training_step(network, optimizer, working_set, i, torch.Generator()) for i in range(1, 81)]
    with torch.no_grad():
        after = method.compute_losses(network, working_set, probe)["image"].item()
    assert all(np.isfinite(totals))
    assert after < 0.85 * before, (before, after)  # measured: 0.196 -> 0.139


def test_predict_is_the_same_whichever_frames_are_asked_together():
    method, working_set = prepared_method()
    torch.manual_seed(0)
    network = method.build_network()
    optimizer = method.build_optimizer(network)
    method.training_step(network, optimizer, working_set, 1, torch.Generator())
    everything = method.predict(network, working_set, list(range(T)))
    assert everything.shape == (T, 3, H, W) and everything.dtype == torch.float32
    assert everything.abs().max() <= 1.0
    assert torch.allclose(method.predict(network, working_set, [6, 3]), everything[[6, 3]], atol=1e-6)
    assert [inference_window(t, T, 3) for t in range(T)] == [0, 0, 1, 2, 3, 4, 5, 5]
    assert method.provenance() == {"flow_estimator": "dis", "perceptual_features": None}


def random_vgg16_file(folder: Path) -> Path:
    """VGG16 features up to relu3_3 with random weights, saved in torchvision's layout: enough to
    exercise the perceptual path without the real weights."""
    torch.manual_seed(0)
    features = VGGFeatures("vgg16", (3, 8, 15)).features
    path = folder / "vgg16-random.pth"
    torch.save({f"features.{key}": value for key, value in features.state_dict().items()}, path)
    return path


def test_perceptual_loss_is_on_with_weights_and_ignores_the_hole(tmp_path):
    config = dataclasses.replace(
        tiny_dip_config(), perceptual_weight=0.01, vgg_weights=str(random_vgg16_file(tmp_path))
    )
    method, working_set = prepared_method(config)
    assert method.provenance()["perceptual_features"] == "vgg16"
    torch.manual_seed(0)
    network = method.build_network()
    method.training_step(network, method.build_optimizer(network), working_set, 1, torch.Generator())
    assert method.last_losses["perceptual"] > 0
    vgg = VGGFeatures.from_file(Path(config.vgg_weights), "vgg16", (3, 8, 15))
    target = working_set.images[:1].float()
    known = torch.ones(1, 1, H, W, dtype=torch.bool)
    known[..., 8:20, 10:30] = False
    output = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(5)) * 2 - 1
    base = perceptual_loss(vgg, output, target, known)
    changed = output.clone()
    changed[..., 12:16, 18:22] = -1.0  # well inside the hole
    assert torch.equal(perceptual_loss(vgg, changed, target, known), base)
    changed = output.clone()
    changed[..., 26:30, 36:40] = -1.0  # known pixels
    assert perceptual_loss(vgg, changed, target, known) != base


# --------------------------------------------------------------------------- estimators


@pytest.mark.parametrize("name", ["dis", "farneback"])
def test_each_estimator_recovers_a_known_translation(name):
    frames = moving_texture(2, 64, 96, velocity=(2, 3))  # content moves up 2 and left 3 per frame
    flow = make_flow_estimator(name)(frames[0], frames[1])
    assert flow.shape == (64, 96, 2) and flow.dtype == np.float32
    interior = flow[10:-10, 10:-10]
    error = np.hypot(interior[..., 0] + 3.0, interior[..., 1] + 2.0)
    assert np.median(error) < 0.5, np.median(error)


def test_a_registered_estimator_supplies_the_flow_targets(monkeypatch):
    """A learned estimator plugs in by name: the method's targets come from it (here a stub
    that says every pixel moved 1 px right, so every consistent target is exactly that)."""

    class OnePixelRight:
        name = "one-pixel-right"

        def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
            flow = np.zeros((*first.shape[:2], 2), np.float32)
            flow[..., 0] = 1.0
            return flow

    # A copy of the registry for this test: other tests list the estimators available.
    monkeypatch.setattr(optical_flow, "_ESTIMATORS", dict(optical_flow._ESTIMATORS))
    register_flow_estimator(OnePixelRight.name, OnePixelRight)
    config = dataclasses.replace(tiny_dip_config(), flow=FlowConfig(estimator=OnePixelRight.name))
    method, working_set = prepared_method(config)
    assert method.provenance()["flow_estimator"] == "one-pixel-right"
    targets = method._prepared.targets
    assert targets.estimator_name == "one-pixel-right"
    forward = targets.field(1, "forward")
    height, width = working_set.valid_height, working_set.valid_width
    with_neighbour = forward.flow[:-1, :, :height, :width]
    assert torch.all(with_neighbour[:, 0] == 1.0) and torch.all(with_neighbour[:, 1] == 0.0)
    # Its backward flow does not undo its forward flow (both point right), so the
    # forward-backward check trusts none of it: the check applies to any estimator.
    assert not forward.reliable.any()


def test_unknown_estimator_names_the_choices():
    assert make_flow_estimator("farneback").name == "farneback"
    with pytest.raises(ValueError, match="dis, farneback"):
        make_flow_estimator("pwc")

"""LGTSM: the learnable temporal shift, the gated layer, the networks, and the method's training
batches, losses, GAN phase and clip-wise filling."""

from __future__ import annotations

import copy
import io
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from archive_inpaint.config import LGTSMConfig, ProgressiveConfig, TrainConfig
from archive_inpaint.methods.lgtsm import (
    GeneratorDiscriminatorOptimizers,
    LGTSMMethod,
    blend_weights,
    clip_starts,
    generator_reconstruction_loss,
    sample_clip_batch,
    sample_clip_pseudo_holes,
)
from archive_inpaint.models.lgtsm_net import (
    LGTSMGatedConv,
    LGTSMGenerator,
    LGTSMNetConfig,
    LGTSMNetwork,
    TemporalDiscriminatorConfig,
    TemporalPatchDiscriminator,
)
from archive_inpaint.models.temporal_shift import LearnableTemporalShift
from archive_inpaint.training.perceptual import VGGFeatures
from archive_inpaint.training.working_set import WorkingSet, build_working_set
from engine_fixtures import CPU, moving_box_holes, moving_texture, single_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("single_thread")


def lgtsm_config(
    iterations: int = 10,
    *,
    width: int = 4,
    batch_size: int = 2,
    clip_length: int = 4,
    clip_overlap: int = 2,
    learning_rate: float = 2e-3,
    gan_weight: float = 0.0,
    gan_start_fraction: float = 0.75,
) -> LGTSMConfig:
    """A CPU-seconds config; perceptual/style off (no VGG weights in tests)."""
    return LGTSMConfig(
        model=LGTSMNetConfig(width=width),
        discriminator=TemporalDiscriminatorConfig(width=width),
        train=TrainConfig(iterations=iterations, batch_size=batch_size, learning_rate=learning_rate),
        progressive=ProgressiveConfig(max_stages=1),
        clip_length=clip_length,
        clip_overlap=clip_overlap,
        perceptual_weight=0.0,
        style_weight=0.0,
        gan_weight=gan_weight,
        gan_start_fraction=gan_start_fraction,
    )


def texture_shot(num_frames: int = 8, height: int = 32, width: int = 48) -> WorkingSet:
    frames = moving_texture(num_frames, height, width)
    holes = moving_box_holes(num_frames, height, width)
    return build_working_set(frames, holes, 320, CPU)


def constant_frames_shot(values: list[float], size: int = 8) -> WorkingSet:
    """Frame t is the constant ``values[t]`` everywhere; no holes."""
    images = torch.tensor(values, dtype=torch.float16).view(-1, 1, 1, 1).expand(-1, 3, size, size).clone()
    holes = torch.zeros(len(values), 1, size, size, dtype=torch.bool)
    return WorkingSet(images, holes, size, size, size, size)


# --------------------------------------------------------------------------- temporal shift


def test_shift_at_initialisation_is_the_fixed_temporal_shift():
    shift = LearnableTemporalShift(10)  # groups of 2 channels: [0, 2) next, [2, 4) previous
    x = torch.randn(2, 5, 10, 3, 4)
    out = shift(x)
    assert out.shape == x.shape
    assert torch.equal(out[:, :-1, 0:2], x[:, 1:, 0:2])  # frame t gets frame t+1
    assert torch.equal(out[:, -1, 0:2], torch.zeros_like(out[:, -1, 0:2]))
    assert torch.equal(out[:, 1:, 2:4], x[:, :-1, 2:4])  # frame t gets frame t-1
    assert torch.equal(out[:, 0, 2:4], torch.zeros_like(out[:, 0, 2:4]))
    assert torch.equal(out[:, :, 4:], x[:, :, 4:])


def test_shift_is_out_of_place_and_its_six_weights_learn():
    shift = LearnableTemporalShift(8)
    assert sum(p.numel() for p in shift.parameters()) == 6
    x = torch.randn(1, 4, 8, 3, 3, requires_grad=True)
    before = x.detach().clone()
    out = shift(x)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.equal(x.detach(), before)
    assert shift.kernels.grad is not None
    assert bool((shift.kernels.grad != 0).all())


def test_shift_equals_the_papers_shared_kernel_conv3d():
    """The weighted sum of shifted frames is the paper's Conv3d(1->1, (3,1,1), padding 1) applied
    to every channel of a group with the group's kernel, for any learnt kernel values."""
    shift = LearnableTemporalShift(12)
    with torch.no_grad():
        shift.kernels.copy_(torch.randn(2, 3))
    x = torch.randn(2, 5, 12, 3, 4)
    expected = x.clone()
    g = shift.group_size
    for group in range(2):
        channels = x[:, :, group * g : (group + 1) * g]  # (N, T, g, H, W)
        folded = channels.permute(0, 2, 1, 3, 4).reshape(-1, 1, 5, 3, 4)  # channels into the batch
        kernel = shift.kernels[group].detach().view(1, 1, 3, 1, 1)
        conv = F.conv3d(folded, kernel, padding=(1, 0, 0))
        expected[:, :, group * g : (group + 1) * g] = conv.reshape(2, g, 5, 3, 4).permute(0, 2, 1, 3, 4)
    assert torch.allclose(shift(x), expected, atol=1e-6)


def test_gate_sees_the_unshifted_input_and_the_feature_the_shifted_one():
    layer = LGTSMGatedConv(8, 4, 3)
    x = torch.randn(1, 3, 8, 6, 6)
    neighbours_changed = x.clone()
    neighbours_changed[:, [0, 2]] = torch.randn(1, 2, 8, 6, 6)
    with torch.no_grad():
        # Constant feature path: the output is the gate alone.
        layer.feature_conv.weight.zero_()
        layer.feature_conv.bias.fill_(1.0)
        assert torch.equal(layer(x)[:, 1], layer(neighbours_changed)[:, 1])
        # Constant gate: the output is the feature path alone, which sees frames 0 and 2.
        layer.feature_conv.reset_parameters()
        layer.gate_conv.weight.zero_()
        layer.gate_conv.bias.zero_()
        assert not torch.allclose(layer(x)[:, 1], layer(neighbours_changed)[:, 1])


# --------------------------------------------------------------------------- networks


def test_generator_and_discriminator_shapes_and_bounds():
    torch.manual_seed(0)
    generator = LGTSMGenerator(LGTSMNetConfig(width=4))
    video = torch.rand(1, 3, 3, 36, 52) * 2 - 1
    hole = torch.zeros(1, 3, 1, 36, 52)
    hole[..., 10:20, 15:30] = 1.0
    out = generator(video, hole)
    assert out.shape == (1, 3, 3, 36, 52)
    assert out.abs().max() <= 1.0
    # The generator masks its own input: what is under the hole cannot leak into the fill.
    leaked = video.clone()
    leaked[..., 10:20, 15:30] = 1.0
    assert torch.equal(generator(leaked, hole), out)
    with pytest.raises(ValueError):
        generator(video[..., :34, :], hole[..., :34, :])

    discriminator = TemporalPatchDiscriminator(TemporalDiscriminatorConfig(width=4))
    scores = discriminator(video, hole)
    assert scores.shape == (1, 3, 16, 3, 4)
    assert bool(((scores > 0) & (scores < 1)).all())
    assert discriminator(torch.rand(2, 2, 3, 64, 64), torch.zeros(2, 2, 1, 64, 64)).shape == (2, 2, 16, 4, 4)
    # The paper's 320x180 frames keep all six stride-2 layers (its 3x5 patch map).
    assert discriminator.strides(180, 320) == [2] * 6


# --------------------------------------------------------------------------- filling in clips


@pytest.mark.parametrize(
    ("num_frames", "clip_length", "overlap"),
    [(12, 5, 2), (13, 7, 2), (10, 7, 2), (5, 7, 2), (20, 7, 5), (9, 4, 3), (9, 3, 0)],
)
def test_clip_grid_covers_every_frame_with_weights_summing_to_one(num_frames, clip_length, overlap):
    length = min(clip_length, num_frames)
    starts = clip_starts(num_frames, clip_length, overlap)
    assert starts[0] == 0 and starts[-1] == num_frames - length
    grid = starts[:-1]
    assert grid == list(range(0, len(grid) * (length - overlap), length - overlap))
    weights = blend_weights(starts, clip_length, num_frames)
    assert torch.allclose(weights.sum(dim=0), torch.ones(num_frames, dtype=weights.dtype))
    assert bool((weights.max(dim=0).values > 0).all())
    for clip, start in enumerate(starts):
        outside = [f for f in range(num_frames) if not start <= f < start + length]
        assert bool((weights[clip, outside] == 0).all())


class StubGenerator(nn.Module):
    """Every frame of a clip gets the clip's first frame (a proxy for "its start index")."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, video: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return video[:, :1].expand_as(video).clone()


class StubNetwork(nn.Module):
    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator


class ConstantGenerator(nn.Module):
    def forward(self, video: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return torch.full_like(video, 0.25)


def test_predict_with_a_constant_network_gives_that_constant():
    method = LGTSMMethod(lgtsm_config(clip_length=4, clip_overlap=2))
    shot = texture_shot(num_frames=9)
    filled = method.predict(StubNetwork(ConstantGenerator()), shot, list(range(9)))
    assert filled.shape == (9, 3, 32, 48)
    assert torch.allclose(filled, torch.full_like(filled, 0.25), atol=1e-6)


def test_predict_cross_fades_where_clips_overlap():
    values = [t / 16 for t in range(12)]  # frame t shows t/16: the stub returns its clip's start
    shot = constant_frames_shot(values)
    method = LGTSMMethod(lgtsm_config(clip_length=5, clip_overlap=2))
    starts = clip_starts(12, 5, 2)
    assert starts == [0, 3, 6, 7]
    filled = method.predict(StubNetwork(StubGenerator()), shot, list(range(12)))[:, 0, 0, 0].double()
    for frame in range(12):
        covering = [s / 16 for s in starts if s <= frame < s + 5]
        if len(covering) == 1:
            assert filled[frame].item() == pytest.approx(covering[0], abs=1e-6)
        else:  # a blend of the clips, not one of them: no hard switch, no seam
            assert min(covering) + 1e-4 < filled[frame].item() < max(covering) - 1e-4
    assert bool((filled[1:] >= filled[:-1] - 1e-6).all())


def test_predict_computes_only_the_clips_the_frames_need():
    shot = constant_frames_shot([t / 16 for t in range(12)])
    method = LGTSMMethod(lgtsm_config(clip_length=4, clip_overlap=1))
    assert clip_starts(12, 4, 1) == [0, 3, 6, 8]
    full = method.predict(StubNetwork(StubGenerator()), shot, list(range(12)))
    stub = StubGenerator()
    assert torch.equal(method.predict(StubNetwork(stub), shot, [1]), full[[1]])
    assert stub.calls == 1
    stub = StubGenerator()
    assert torch.equal(method.predict(StubNetwork(stub), shot, [3, 1, 3]), full[[3, 1, 3]])
    assert stub.calls == 2  # frame 3 is shared by clips 0 and 1


# --------------------------------------------------------------------------- training batches


def _distinct_holes() -> torch.Tensor:
    """(6, 1, 16, 20) holes whose shapes and placements differ from frame to frame; frame 3 empty."""
    holes = torch.zeros(6, 1, 16, 20, dtype=torch.bool)
    for t in (0, 1, 2, 4, 5):
        holes[t, 0, 2 + t : 4 + t, 3 : 5 + t] = True  # a box growing and moving with t
        holes[t, 0, 10, 2 * t] = True  # and a speck elsewhere
    return holes


def _single_shift_match(clip: np.ndarray, sources: list[np.ndarray]) -> bool:
    """Whether ``clip[i]`` is ``sources[i]`` rolled by one and the same (dy, dx) for every i."""
    height, width = clip.shape[1:]
    return any(
        all(np.array_equal(np.roll(source, (dy, dx), axis=(0, 1)), mask) for source, mask in zip(sources, clip))
        for dy in range(height)
        for dx in range(width)
    )


def test_pseudo_holes_are_one_shift_of_consecutive_masked_frames():
    holes = _distinct_holes()
    pool = torch.tensor([0, 1, 2, 4, 5])
    valid_h, valid_w = 13, 18
    generator = torch.Generator().manual_seed(3)
    sources = holes[:, 0, :valid_h, :valid_w].numpy()
    for _ in range(6):
        clip = sample_clip_pseudo_holes(holes, pool, 3, valid_h, valid_w, generator)
        assert clip.shape == (3, 1, 16, 20)
        assert not clip[:, :, valid_h:].any() and not clip[:, :, :, valid_w:].any()
        valid = clip[:, 0, :valid_h, :valid_w].numpy()
        assert any(
            _single_shift_match(valid, [sources[int(pool[p + i])] for i in range(3)]) for p in range(len(pool) - 2)
        )
    # A pool shorter than the clip repeats its last mask.
    short = sample_clip_pseudo_holes(holes, torch.tensor([2]), 3, valid_h, valid_w, generator)
    assert torch.equal(short[0], short[1]) and torch.equal(short[1], short[2])


def test_loss_ignores_real_hole_pixels_of_the_target():
    torch.manual_seed(0)
    shot = texture_shot()
    network = LGTSMNetwork(LGTSMNetConfig(width=4))
    features = VGGFeatures("vgg16", (3, 8))  # untrained: the test is about which pixels count
    batch = sample_clip_batch(shot, shot.frames_with_holes(), 2, 4, torch.Generator().manual_seed(1))
    assert batch.real.any() and batch.pseudo_only.any()

    def loss_of(images: torch.Tensor) -> float:
        changed = copy.copy(batch)
        changed.images = images
        with torch.no_grad():
            output = network(images, batch.hole.float())
            return float(generator_reconstruction_loss(output, changed, 32, 48, features, 1.0, 10.0))

    reference = loss_of(batch.images)
    in_real_hole = torch.where(batch.real, torch.rand_like(batch.images), batch.images)
    assert loss_of(in_real_hole) == reference
    # The pixels hidden by the pseudo-holes do count: they teach the fill.
    in_pseudo_hole = torch.where(batch.pseudo_only, torch.rand_like(batch.images), batch.images)
    assert loss_of(in_pseudo_hole) != pytest.approx(reference, rel=1e-4)


# --------------------------------------------------------------------------- training


def _train(method: LGTSMMethod, network: nn.Module, optimizer: Any, shot: WorkingSet, iterations: range,
           generator: torch.Generator) -> list[float]:
    return [method.training_step(network, optimizer, shot, i, generator) for i in iterations]


def test_short_training_run_lowers_the_loss():
    torch.manual_seed(0)
    shot = texture_shot()
    method = LGTSMMethod(lgtsm_config(iterations=50, width=8))
    network = method.build_network()
    assert network.discriminator is None
    optimizer = method.build_optimizer(network)
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["amsgrad"]
    method.prepare(shot, CPU)
    losses = _train(method, network, optimizer, shot, range(1, 51), torch.Generator().manual_seed(0))
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5])
    assert method.provenance() == {"perceptual_features": None, "gan": False}


def _flat_state(state: Any) -> list[Any]:
    if isinstance(state, dict):
        return [item for key in sorted(state, key=str) for item in [key, *_flat_state(state[key])]]
    if isinstance(state, (list, tuple)):
        return [item for value in state for item in _flat_state(value)]
    return [state]


def _same(a: Any, b: Any) -> bool:
    flat_a, flat_b = _flat_state(a), _flat_state(b)
    return len(flat_a) == len(flat_b) and all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(flat_a, flat_b)
    )


def test_gan_phase_updates_the_discriminator_and_its_optimizer_state_round_trips():
    torch.manual_seed(0)
    shot = texture_shot(num_frames=6)
    method = LGTSMMethod(lgtsm_config(iterations=4, gan_weight=0.1, gan_start_fraction=0.5))
    network = method.build_network()
    assert network.discriminator is not None
    optimizer = method.build_optimizer(network)
    assert isinstance(optimizer, GeneratorDiscriminatorOptimizers)
    method.prepare(shot, CPU)
    generator = torch.Generator().manual_seed(0)
    initial_d = copy.deepcopy(network.discriminator.state_dict())
    _train(method, network, optimizer, shot, range(1, 3), generator)  # before the GAN phase
    assert _same(network.discriminator.state_dict(), initial_d)
    _train(method, network, optimizer, shot, range(3, 4), generator)
    assert not _same(network.discriminator.state_dict(), initial_d)
    state = optimizer.state_dict()
    assert state["generator"]["state"] and state["discriminator"]["state"]

    # As a checkpoint does: serialise, rebuild, restore; both continue identically.
    buffer = io.BytesIO()
    torch.save({"network": network.state_dict(), "optimizer": state}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    restored_network = method.build_network()
    restored_network.load_state_dict(saved["network"])
    restored = method.build_optimizer(restored_network)
    restored.load_state_dict(saved["optimizer"])
    assert _same(restored.state_dict(), state)
    resumed_generator = torch.Generator().set_state(generator.get_state())
    original = _train(method, network, optimizer, shot, range(4, 5), generator)
    resumed = _train(method, restored_network, restored, shot, range(4, 5), resumed_generator)
    assert original == resumed
    assert _same(restored_network.state_dict(), network.state_dict())
    assert method.provenance()["gan"] is True
    assert method.learnt_settings()["train"]["iterations"] == 4

"""LGTSM (Chang et al. 2019) trained on the shot itself: clips in, clips out.

The paper trains its generator on a large video dataset with free-form masks. Here it learns one
shot, the way IIVI does: each step takes ``train.batch_size`` clips of ``clip_length`` consecutive
frames, hides pseudo-holes in them (the holes of another run of masked frames of the shot,
translated by one random shift for the whole clip, so the pseudo-hole moves as the real masks do)
on top of their real holes, and learns to restore the hidden known pixels:

* known-pixel L1 on the raw output (outside the real hole, inside the unpadded frame);
* perceptual and style terms (VGG16 relu2_2, relu3_3, relu4_3) when VGG weights are at hand,
  measured on the pseudo-hole fill only (see ``perceptual_pair``);
* optionally, for the last ``1 - gan_start_fraction`` of the steps, TSMGAN's LSGAN term, with the
  generator updated before the discriminator as in the paper's code.

Filling runs the generator over clips on a fixed grid over the whole shot; frames covered by two
clips take a linear cross-fade of both, so no seam shows where clips meet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from archive_inpaint.config import LGTSMConfig
from archive_inpaint.methods.base import Method, adam_options
from archive_inpaint.models.lgtsm_net import LGTSMNetwork, fold_time
from archive_inpaint.training.losses import known_pixel_l1
from archive_inpaint.training.perceptual import VGGFeatures, load_vgg_features, perceptual_l1, style_l1
from archive_inpaint.training.working_set import WorkingSet

# torchvision VGG16 ``features`` indices of relu2_2, relu3_3, relu4_3 (the paper's layers).
VGG16_TAPS = (8, 15, 22)


# --------------------------------------------------------------------------- training batches


@dataclass
class ClipBatch:
    """One step's clips: images (B, L, 3, Hp, Wp) float in [-1, 1]; real and hole (B, L, 1, Hp, Wp)
    bool, ``hole`` = real | pseudo (what the network is asked to fill)."""

    images: torch.Tensor
    real: torch.Tensor
    hole: torch.Tensor

    @property
    def pseudo_only(self) -> torch.Tensor:
        """Hidden pixels whose truth is known: where the fill is taught."""
        return self.hole & ~self.real


def sample_clip_pseudo_holes(
    holes: torch.Tensor,
    source_pool: torch.Tensor,
    length: int,
    valid_height: int,
    valid_width: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """(length, 1, Hp, Wp) bool: the holes of ``length`` consecutive frames of ``source_pool`` (the
    frames that have holes, in shot order; the last one repeats when the pool is shorter), all
    rolled by ONE random (dy, dx) within the valid area, wrapping at its border like
    ``pseudo_holes.translate_circular``. One shift for the clip keeps the pseudo-hole's motion
    that of a real mask; a shift per frame would make it jump, which no real hole does."""
    moved = torch.zeros((length, *holes.shape[1:]), dtype=torch.bool, device=holes.device)
    count = len(source_pool)
    if count == 0:
        return moved  # a shot without holes: nothing to imitate
    first = int(torch.randint(max(count - length, 0) + 1, (1,), generator=generator))
    positions = [min(first + offset, count - 1) for offset in range(length)]
    picks = source_pool[positions].to(holes.device)
    dy = int(torch.randint(valid_height, (1,), generator=generator))
    dx = int(torch.randint(valid_width, (1,), generator=generator))
    valid = holes[picks, :, :valid_height, :valid_width]
    moved[:, :, :valid_height, :valid_width] = torch.roll(valid, shifts=(dy, dx), dims=(-2, -1))
    return moved


def sample_clip_batch(
    working_set: WorkingSet,
    source_pool: torch.Tensor,
    batch_size: int,
    clip_length: int,
    generator: torch.Generator,
) -> ClipBatch:
    """``batch_size`` clips at random starts (a shot shorter than a clip is one clip), each with its
    own coherent pseudo-holes."""
    length = min(clip_length, working_set.num_frames)
    starts = torch.randint(working_set.num_frames - length + 1, (batch_size,), generator=generator)
    frame_ids = (starts[:, None] + torch.arange(length)[None]).to(working_set.images.device)
    images = working_set.images[frame_ids].float()
    real = working_set.holes[frame_ids]
    pseudo = torch.stack(
        [
            sample_clip_pseudo_holes(
                working_set.holes,
                source_pool,
                length,
                working_set.valid_height,
                working_set.valid_width,
                generator,
            )
            for _ in range(batch_size)
        ]
    )
    return ClipBatch(images=images, real=real, hole=real | pseudo)


# --------------------------------------------------------------------------- losses


def perceptual_pair(output: torch.Tensor, batch: ClipBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(filled, target) images for the feature losses, equal everywhere but the pseudo-holes.

    VGG features are not local, so the loss cannot simply skip pixels. Both images take the real
    hole from the output, detached: there the truth is the object to remove, and a shared, constant
    value there means it neither counts nor receives a gradient. The remaining pixels are the
    input, except that ``filled`` has the output in the pseudo-holes: the feature losses judge the
    fill of known content in its context, like the paper's composite Y-hat against Y.
    """
    target = torch.where(batch.real, output.detach(), batch.images)
    filled = torch.where(batch.pseudo_only, output, target)
    return filled, target


def generator_reconstruction_loss(
    output: torch.Tensor,
    batch: ClipBatch,
    valid_height: int,
    valid_width: int,
    features: VGGFeatures | None,
    perceptual_weight: float,
    style_weight: float,
) -> torch.Tensor:
    """Known-pixel L1 on the raw output, plus the weighted feature losses when ``features``."""
    loss = known_pixel_l1(
        fold_time(output), fold_time(batch.images), fold_time(batch.real), valid_height, valid_width
    )
    if features is None or (perceptual_weight <= 0 and style_weight <= 0):
        return loss
    filled, target = (
        fold_time(image)[:, :, :valid_height, :valid_width] for image in perceptual_pair(output, batch)
    )
    filled_features = features(filled)
    with torch.no_grad():
        target_features = features(target)
    if perceptual_weight > 0:
        loss = loss + perceptual_weight * perceptual_l1(filled_features, target_features)
    if style_weight > 0:
        loss = loss + style_weight * style_l1(filled_features, target_features)
    return loss


def discriminator_view(video: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """What the discriminator sees of a clip: real-hole pixels zeroed.

    The shot's real holes contain the object to remove. Shown to D as "real", D would learn that
    the object is what real footage looks like and push G to paint it back; shown as G's fill on
    the "fake" side only, D would tell real from fake by those pixels alone. Zeroed on both sides,
    the two views (with the same hole channel) differ only in the pseudo-holes, where the truth is
    known: D judges exactly the fill of known content, as the paper's D judges Y-hat against Y.
    """
    return video * (~real).to(video.dtype)


def lsgan(scores: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(scores, torch.full_like(scores, target))


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``module`` inside (G's adversarial term must not touch D)."""
    flags = [parameter.requires_grad for parameter in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags):
            parameter.requires_grad_(flag)


# --------------------------------------------------------------------------- optimisers


class GeneratorDiscriminatorOptimizers:
    """The generator's and the discriminator's optimisers, checkpointed as one: the trainer saves
    ``state_dict()`` and restores it with ``load_state_dict()``."""

    def __init__(self, generator: torch.optim.Optimizer, discriminator: torch.optim.Optimizer) -> None:
        self.generator = generator
        self.discriminator = discriminator

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.generator.zero_grad(set_to_none=set_to_none)
        self.discriminator.zero_grad(set_to_none=set_to_none)


def split_optimizers(
    optimizer: torch.optim.Optimizer | GeneratorDiscriminatorOptimizers,
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
    if isinstance(optimizer, GeneratorDiscriminatorOptimizers):
        return optimizer.generator, optimizer.discriminator
    return optimizer, None


# --------------------------------------------------------------------------- filling in clips


def clip_starts(num_frames: int, clip_length: int, overlap: int) -> list[int]:
    """Starts of the clips that fill a shot: a fixed grid 0, L - overlap, 2 (L - overlap), ... and a
    last clip aligned to the shot's end (it may overlap its predecessor by more). The grid depends
    on the shot alone, so a frame gets the same fill whichever frames are asked for."""
    length = min(clip_length, num_frames)
    if num_frames <= length:
        return [0]
    stride = length - min(overlap, length - 1)
    return [*range(0, num_frames - length, stride), num_frames - length]


def blend_weights(starts: list[int], clip_length: int, num_frames: int) -> torch.Tensor:
    """(clips, frames) weights: zero outside a clip, each frame's column summing to 1.

    A clip's weight ramps up linearly over its overlap with the previous clip and down over its
    overlap with the next, (k + 1) / (m + 1) for the k-th of m shared frames, so two clips sharing
    m frames cross-fade and their weights already sum to 1. Columns are normalised anyway, for
    the rare frame that three clips share (an end-aligned last clip close to its predecessor).
    """
    length = min(clip_length, num_frames)
    weights = torch.zeros(len(starts), num_frames, dtype=torch.float64)
    for index, start in enumerate(starts):
        shared_before = max(0, starts[index - 1] + length - start) if index > 0 else 0
        shared_after = max(0, start + length - starts[index + 1]) if index + 1 < len(starts) else 0
        for offset in range(length):
            rise = (offset + 1) / (shared_before + 1) if offset < shared_before else 1.0
            fall = (length - offset) / (shared_after + 1) if offset >= length - shared_after else 1.0
            weights[index, start + offset] = min(rise, fall)
    return weights / weights.sum(dim=0, keepdim=True)


# --------------------------------------------------------------------------- the method


class LGTSMMethod(Method):
    name = "lgtsm"
    config: LGTSMConfig

    def __init__(self, config: LGTSMConfig) -> None:
        super().__init__(config)
        self.source_pool: torch.Tensor | None = None
        self.features: VGGFeatures | None = None

    @property
    def uses_gan(self) -> bool:
        return self.config.gan_weight > 0

    def build_network(self) -> LGTSMNetwork:
        return LGTSMNetwork(self.config.model, self.config.discriminator if self.uses_gan else None)

    def build_optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        # The paper: Adam, amsgrad, for G and D alike.
        lr = self.config.train.learning_rate
        model = cast(LGTSMNetwork, network)
        fused = adam_options(self.config, network)
        generator = torch.optim.Adam(model.generator.parameters(), lr=lr, amsgrad=True, **fused)
        if model.discriminator is None:
            return generator
        discriminator = torch.optim.Adam(model.discriminator.parameters(), lr=lr, amsgrad=True, **fused)
        # The trainer only checkpoints and restores the optimiser; the pair supports exactly that.
        return cast(torch.optim.Optimizer, GeneratorDiscriminatorOptimizers(generator, discriminator))

    def prepare(self, working_set: WorkingSet, device: torch.device) -> None:
        self.source_pool = working_set.frames_with_holes().cpu()
        wants_features = self.config.perceptual_weight > 0 or self.config.style_weight > 0
        if wants_features and self.features is None:
            features = load_vgg_features(
                "vgg16", VGG16_TAPS, self.config.vgg_weights, "LGTSM perceptual/style"
            )
            self.features = None if features is None else features.to(device)

    def gan_active(self, iteration: int) -> bool:
        return self.uses_gan and iteration > self.config.gan_start_fraction * self.config.train.iterations

    def training_step(
        self,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        working_set: WorkingSet,
        iteration: int,
        generator: torch.Generator,
    ) -> float:
        """One generator update (and, in the GAN phase, one discriminator update after it);
        returns the generator's total loss."""
        assert self.source_pool is not None, "prepare() first"
        model = cast(LGTSMNetwork, network)
        g_optimizer, d_optimizer = split_optimizers(optimizer)
        cfg = self.config
        batch = sample_clip_batch(
            working_set, self.source_pool, cfg.train.batch_size, cfg.clip_length, generator
        )
        output = model.generator(batch.images, batch.hole.float())
        loss = generator_reconstruction_loss(
            output,
            batch,
            working_set.valid_height,
            working_set.valid_width,
            self.features,
            cfg.perceptual_weight,
            cfg.style_weight,
        )
        discriminator = model.discriminator if self.gan_active(iteration) else None
        if discriminator is not None and d_optimizer is None:
            raise TypeError("the GAN phase needs the optimiser pair from build_optimizer")
        fake = torch.where(batch.hole, output, batch.images)  # the paper's composite Y-hat
        if discriminator is not None:
            loss = loss + cfg.gan_weight * generator_adversarial_loss(discriminator, batch, fake)
        g_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        g_optimizer.step()
        if discriminator is not None:
            assert d_optimizer is not None
            # After G, as the paper's code (hinge loss diverged in the other order, its issue #32).
            discriminator_step(discriminator, d_optimizer, batch, fake.detach())
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, network: nn.Module, working_set: WorkingSet, frame_ids: list[int]) -> torch.Tensor:
        model = cast(LGTSMNetwork, network)
        num_frames = working_set.num_frames
        if any(not 0 <= f < num_frames for f in frame_ids):
            raise IndexError(f"frame ids must be in [0, {num_frames}), got {frame_ids}")
        length = min(self.config.clip_length, num_frames)
        starts = clip_starts(num_frames, length, self.config.clip_overlap)
        weights = blend_weights(starts, length, num_frames)
        wanted = sorted(set(frame_ids))
        row = {frame: index for index, frame in enumerate(wanted)}
        images = working_set.images
        filled = torch.zeros((len(wanted), 3, *images.shape[-2:]), dtype=torch.float32, device=images.device)
        for clip, start in enumerate(starts):
            inside = [f for f in wanted if start <= f < start + length and weights[clip, f] > 0]
            if not inside:
                continue  # only the clips the requested frames need are computed
            clip_images = images[start : start + length].float()[None]
            clip_holes = working_set.holes[start : start + length].float()[None]
            output = model.generator(clip_images, clip_holes)[0]
            share = weights[clip, inside].to(device=images.device, dtype=torch.float32).view(-1, 1, 1, 1)
            offsets = torch.tensor([f - start for f in inside], device=images.device)
            rows = torch.tensor([row[f] for f in inside], device=images.device)
            filled[rows] += share * output[offsets]
        return filled[torch.tensor([row[f] for f in frame_ids], device=images.device, dtype=torch.long)]

    def learnt_settings(self) -> dict[str, Any]:
        learnt = super().learnt_settings()
        if self.uses_gan:
            # The GAN phase starts at a fraction of the iteration ceiling, so the ceiling shapes
            # the weights: a longer run is a different run.
            learnt["train"]["iterations"] = self.config.train.iterations
        return learnt

    def provenance(self) -> dict[str, Any]:
        return {"perceptual_features": None if self.features is None else "vgg16", "gan": self.uses_gan}


def generator_adversarial_loss(discriminator: nn.Module, batch: ClipBatch, fake: torch.Tensor) -> torch.Tensor:
    """LSGAN's generator term (D(fake) - 1)^2, through a frozen D (G's update must not train D)."""
    with frozen(discriminator):
        return lsgan(discriminator(discriminator_view(fake, batch.real), batch.hole.float()), 1.0)


def discriminator_step(
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: ClipBatch,
    fake: torch.Tensor,
) -> float:
    """D loss = 0.5 [(D(real) - 1)^2 + D(fake)^2] (LSGAN), both seen through ``discriminator_view``
    with the same hole channel, so only the pseudo-hole content tells them apart."""
    hole = batch.hole.float()
    real_scores = discriminator(discriminator_view(batch.images, batch.real), hole)
    fake_scores = discriminator(discriminator_view(fake, batch.real), hole)
    loss = 0.5 * (lsgan(real_scores, 1.0) + lsgan(fake_scores, 0.0))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())

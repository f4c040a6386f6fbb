"""DIP-Vid-Flow (Zhang et al., ICCV 2019, "An Internal Learning Approach to Video Inpainting").

A Deep-Image-Prior network maps one fixed noise map per frame to that frame and to its optical
flows to the frames ``s`` before and after (see docs: method spec §2). It learns the known pixels
and the reliable estimated flow; the image-flow consistency loss then makes the frame agree with
its neighbours warped by the predicted flow inside the holes, which is how content seen in one
frame propagates into the hole of another.

Choices of this implementation (the paper's code differs where noted):

* Batches (paper §2.5): ``train.batch_size`` frames {t, t+s, ..., t+(B-1)s} with one flow type
  (stride s, forward or backward). The list of every valid (t, s, direction) is shuffled once from
  the seed and batch k is list[k mod len]; each batch is trained for ``updates_per_batch``
  consecutive steps. The batch is a function of the iteration number alone, so a resumed run
  trains exactly what an uninterrupted one would. The paper's extra "median batch" after every
  50 batches is not reproduced: it only re-weights one window of the shot.
* BatchNorm uses batch statistics only and keeps no running statistics (see
  ``archive_inpaint.models.dip_net``), as the paper's train-mode BN at inference. To make a frame's
  output independent of which frames are requested together, ``predict`` computes every frame in
  a canonical window: the ``batch_size`` consecutive frames starting at
  clamp(t - batch_size // 2, 0, T - batch_size), as the paper's sliding-window inference does.
  Running statistics were rejected: batches mix strides and flow types, so their average matches
  no batch the network was trained on, and DIP networks are known to degrade in eval mode.
* Masked losses are means over the counted elements only (pixels x channels inside the mask),
  not over the whole tensor as the paper's nn.MSELoss: the loss scale, and so the balance of the
  weights, then does not depend on the hole's area or on how much flow is reliable.
* Flow targets come from a pluggable estimator (OpenCV DIS by default) instead of PWC-Net; the
  reliability mask also requires the match to land inside the neighbouring frame.
* The perceptual loss uses the shared VGG16 extractor, which applies ImageNet normalisation to
  RGB input (the paper feeds BGR [0, 1] unnormalised); it is off when no weights are at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from archive_inpaint.config import DIPVidFlowConfig
from archive_inpaint.methods.base import Method, adam_options
from archive_inpaint.models.dip_net import DIPNet, DIPOutput, flow_channel_slice
from archive_inpaint.training.optical_flow import (
    DIRECTIONS,
    FlowDirection,
    FlowField,
    FlowTargets,
    backward_warp,
    make_flow_estimator,
)
from archive_inpaint.training.perceptual import VGGFeatures, load_vgg_features
from archive_inpaint.training.working_set import WorkingSet

NOISE_AMPLITUDE = 0.1  # the paper's input: U(0, 1) * 0.1
VGG_TAPS = (3, 8, 15)  # VGG16 relu1_2, relu2_2, relu3_3


# --------------------------------------------------------------------------- batch schedule


@dataclass(frozen=True)
class FlowBatch:
    """Frames {start, start + stride, ...} (``size`` of them) trained with one flow type."""

    start: int
    stride: int
    direction: FlowDirection
    size: int

    @property
    def frames(self) -> list[int]:
        return [self.start + k * self.stride for k in range(self.size)]


def batch_schedule(num_frames: int, batch_size: int, strides: tuple[int, ...], seed: int) -> list[FlowBatch]:
    """Every valid (t, s, direction) batch, shuffled once by a generator of its own seeded with
    ``seed``. A stride whose batch does not fit in the shot is skipped; a shot shorter than a batch
    trains all its frames at stride 1 (or, without stride 1, as many as the smallest stride fits)."""
    if num_frames < 1:
        raise ValueError("a shot needs at least one frame")
    size = min(batch_size, num_frames)
    if all((size - 1) * s >= num_frames for s in strides):
        size = 1 + (num_frames - 1) // min(strides)
    batches = [
        FlowBatch(start, stride, direction, size)
        for stride in strides
        if (size - 1) * stride < num_frames
        for start in range(num_frames - (size - 1) * stride)
        for direction in DIRECTIONS
    ]
    order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(seed))
    return [batches[i] for i in order.tolist()]


def batch_index(iteration: int, updates_per_batch: int, num_batches: int) -> int:
    """Which entry of the schedule step ``iteration`` (1-based) trains on."""
    if iteration < 1:
        raise ValueError(f"iterations count from 1, got {iteration}")
    return ((iteration - 1) // updates_per_batch) % num_batches


def inference_window(frame: int, num_frames: int, window: int) -> int:
    """First frame of the canonical window of ``window`` consecutive frames that fills ``frame``:
    the frame as central as the shot allows."""
    window = min(window, num_frames)
    return min(max(frame - window // 2, 0), num_frames - window)


# --------------------------------------------------------------------------- losses


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the elements where ``mask`` (N, 1, H, W) is True, i.e. divided by
    (masked pixels x channels), not by the tensor's size; 0 when nothing is masked in."""
    weight = mask.to(prediction.dtype)
    squared = (prediction - target).square() * weight
    counted = weight.sum() * prediction.shape[1]
    return squared.sum() / counted.clamp_min(1.0)


def flow_reconstruction_loss(predicted: torch.Tensor, field: FlowField, frames: torch.Tensor) -> torch.Tensor:
    """MSE between the predicted flow (normalised units, (N, 2, H, W)) and the estimated flow of
    ``frames`` divided by the field's scale, on reliable pixels only: flow into or out of a hole and
    flow that fails the forward-backward check teach nothing."""
    return masked_mse(predicted, field.flow[frames] / field.scale, field.reliable[frames])


def consistency_pairs(batch: FlowBatch) -> tuple[list[int], list[int]]:
    """(source, neighbour) positions within the batch: the source's flow of the batch's type points
    at the neighbour (forward: the next frame of the batch; backward: the previous one)."""
    earlier, later = list(range(batch.size - 1)), list(range(1, batch.size))
    return (earlier, later) if batch.direction == "forward" else (later, earlier)


def image_flow_consistency_loss(
    images: torch.Tensor,
    flows_px: torch.Tensor,
    hole_either: torch.Tensor,
    sources: list[int],
    neighbours: list[int],
) -> torch.Tensor:
    """The neighbour's output warped onto the source by the source's predicted flow (px) must match
    the source's output, which is detached: the gradient reaches the neighbour and the flow, so the
    neighbour is what changes (the paper's choice). Counted inside mask_flow (a hole in either
    frame; elsewhere the image loss already ties both to the video) and where the sample lands in
    the frame. All tensors cover the valid area only, so in-bounds means inside the picture."""
    if not sources:
        return images.new_zeros(())
    warped, in_bounds = backward_warp(images[neighbours], flows_px[sources])
    return masked_mse(warped, images[sources].detach(), hole_either[sources] & in_bounds)


def feature_known_masks(vgg: VGGFeatures, known: torch.Tensor) -> list[torch.Tensor]:
    """Where each tapped feature sees only known pixels: the unknown mask pushed through VGG's
    shape (each 3x3 conv grows it by a pixel, each pool halves it), as the paper does with a fixed
    all-ones network."""
    unknown = (~known).float()
    masks = []
    for index, layer in enumerate(vgg.features):
        if isinstance(layer, nn.Conv2d):
            unknown = F.max_pool2d(unknown, 3, stride=1, padding=1)
        elif isinstance(layer, nn.MaxPool2d):
            unknown = F.max_pool2d(unknown, 2, stride=2)
        if index in vgg.taps:
            masks.append(unknown == 0)
    return masks


def perceptual_loss(
    vgg: VGGFeatures, output: torch.Tensor, target: torch.Tensor, known: torch.Tensor
) -> torch.Tensor:
    """Sum over the taps of the feature MSE where the features see known pixels only."""
    produced = vgg(output)
    with torch.no_grad():
        expected = vgg(target)
    masks = feature_known_masks(vgg, known)
    return torch.stack([masked_mse(p, e, m) for p, e, m in zip(produced, expected, masks)]).sum()


# --------------------------------------------------------------------------- the method


@dataclass
class _Prepared:
    noise: torch.Tensor  # (T, noise_channels, Hp, Wp) float32
    targets: FlowTargets
    schedule: list[FlowBatch]
    vgg: VGGFeatures | None


class DIPVidFlowMethod(Method):
    name: ClassVar[str] = "dip-vid-flow"
    config: DIPVidFlowConfig

    def __init__(self, config: DIPVidFlowConfig) -> None:
        super().__init__(config)
        self._prepared: _Prepared | None = None
        # The last step's loss terms before weighting, for progress logs and tests.
        self.last_losses: dict[str, float] = {}

    def build_network(self) -> nn.Module:
        return DIPNet(self.config.model)

    def build_optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            network.parameters(), lr=self.config.train.learning_rate, **adam_options(self.config, network)
        )

    # ---- derived from the shot

    def prepare(self, working_set: WorkingSet, device: torch.device) -> None:
        train, model = self.config.train, self.config.model
        estimator = make_flow_estimator(self.config.flow.estimator)
        targets = FlowTargets.build(
            working_set, model.flow_strides, estimator, self.config.flow.consistency_threshold
        )
        vgg = None
        if self.config.perceptual_weight > 0:
            vgg = load_vgg_features("vgg16", VGG_TAPS, self.config.vgg_weights, "dip-vid-flow perceptual loss")
            vgg = vgg.to(device) if vgg is not None else None
        self._prepared = _Prepared(
            noise=make_noise(working_set, model.noise_channels, train.seed).to(device),
            targets=targets,
            schedule=batch_schedule(working_set.num_frames, train.batch_size, model.flow_strides, train.seed),
            vgg=vgg,
        )

    def _require_prepared(self) -> _Prepared:
        if self._prepared is None:
            raise RuntimeError("DIPVidFlowMethod.prepare must run before training or filling")
        return self._prepared

    @property
    def noise(self) -> torch.Tensor:
        return self._require_prepared().noise

    @property
    def flow_targets(self) -> FlowTargets:
        return self._require_prepared().targets

    @property
    def schedule(self) -> list[FlowBatch]:
        return self._require_prepared().schedule

    def batch_for_iteration(self, iteration: int) -> FlowBatch:
        schedule = self.schedule
        return schedule[batch_index(iteration, self.config.updates_per_batch, len(schedule))]

    # ---- training

    def compute_losses(
        self, network: nn.Module, working_set: WorkingSet, batch: FlowBatch
    ) -> dict[str, torch.Tensor]:
        """The unweighted loss terms of one forward pass over ``batch``."""
        prepared = self._require_prepared()
        frames = torch.tensor(batch.frames, device=prepared.noise.device)
        output: DIPOutput = network(prepared.noise[frames])
        images = working_set.images[frames].float()
        known = known_pixels(working_set, frames)

        field = prepared.targets.field(batch.stride, batch.direction)
        backward = batch.direction == "backward"
        flows = output.flows[:, flow_channel_slice(self.config.model.flow_strides, batch.stride, backward)]
        # The consistency term works on the picture alone, so "in bounds" means inside the picture.
        valid = (slice(None), slice(None), slice(0, working_set.valid_height), slice(0, working_set.valid_width))
        sources, neighbours = consistency_pairs(batch)
        losses = {
            "image": masked_mse(output.image, images, known),
            "flow": flow_reconstruction_loss(flows, field, frames),
            "consistency": image_flow_consistency_loss(
                output.image[valid],
                (flows * field.scale)[valid],
                field.hole_either[frames][valid],
                sources,
                neighbours,
            ),
        }
        if prepared.vgg is not None:
            losses["perceptual"] = perceptual_loss(prepared.vgg, output.image, images, known)
        return losses

    def weights(self) -> dict[str, float]:
        c = self.config
        return {
            "image": c.image_weight,
            "flow": c.flow_weight,
            "consistency": c.consistency_weight,
            "perceptual": c.perceptual_weight,
        }

    def training_step(
        self,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        working_set: WorkingSet,
        iteration: int,
        generator: torch.Generator,
    ) -> float:
        # ``generator`` is unused: the batch follows from the iteration and nothing else is random.
        network.train()
        losses = self.compute_losses(network, working_set, self.batch_for_iteration(iteration))
        weights = self.weights()
        total = torch.stack([weights[name] * value for name, value in losses.items()]).sum()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        self.last_losses = {name: float(value.detach()) for name, value in losses.items()}
        return float(total.detach())

    # ---- filling

    def predict(self, network: nn.Module, working_set: WorkingSet, frame_ids: list[int]) -> torch.Tensor:
        noise = self._require_prepared().noise
        num_frames = working_set.num_frames
        window = min(self.config.train.batch_size, num_frames)
        starts = {frame: inference_window(frame, num_frames, window) for frame in frame_ids}
        images: dict[int, torch.Tensor] = {}
        with torch.no_grad():
            for start in sorted(set(starts.values())):
                output = network(noise[start : start + window]).image
                for frame, first in starts.items():
                    if first == start:
                        images[frame] = output[frame - start]
        return torch.stack([images[frame] for frame in frame_ids]).float()

    def provenance(self) -> dict[str, Any]:
        prepared = self._prepared
        estimator = prepared.targets.estimator_name if prepared is not None else self.config.flow.estimator
        return {
            "flow_estimator": estimator,
            "perceptual_features": "vgg16" if prepared is not None and prepared.vgg is not None else None,
        }


def known_pixels(working_set: WorkingSet, frames: torch.Tensor) -> torch.Tensor:
    """(N, 1, Hp, Wp) bool: outside the real hole and inside the picture (not the padding)."""
    holes = working_set.holes[frames]
    known = torch.zeros_like(holes)
    known[..., : working_set.valid_height, : working_set.valid_width] = ~holes[
        ..., : working_set.valid_height, : working_set.valid_width
    ]
    return known


def make_noise(working_set: WorkingSet, channels: int, seed: int) -> torch.Tensor:
    """The fixed inputs, (T, channels, Hp, Wp) uniform in [0, 0.1]. Drawn on the CPU from their own
    generator so they are the same on every device and on every (re)start of a run."""
    t, _, height, width = working_set.images.shape
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(t, channels, height, width, generator=generator) * NOISE_AMPLITUDE

"""Single-frame mask propagation (IIVI §4.2): masks for a whole shot from one annotated frame.

Training data comes from the annotated frame alone: each step pastes the object (its pixels
under the annotation) at a random translation into the frame, and the network must find the
pasted copy. The loss is a weighted BCE that penalises a missed object pixel more than a
background pixel taken for object (background weight ``background_weight`` = 0.8, object weight
1), because a slightly generous mask only costs a little extra fill while a missed piece of the
object stays in the output. The original object's place is left out of the loss: the object is
really there, but the target (the pasted copy) says background.

Then every frame goes through the network; probabilities are resized to the frame's size,
thresholded (0.3 by default) and grown by a margin of about one working pixel, because a
missed object pixel costs more than an extra one (see ``MaskPropagationConfig``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.media.masks import dilate_holes
from archive_inpaint.config import MaskPropagationConfig
from archive_inpaint.models.mask_net import MaskNet
from archive_inpaint.training.working_set import resize_frame, to_unit_range, working_size

log = logging.getLogger(__name__)


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, ignore: torch.Tensor, background_weight: float) -> torch.Tensor:
    """BCE with object pixels weighted 1 and background pixels ``background_weight``, over the
    pixels not in ``ignore``."""
    weight = torch.where(target > 0.5, 1.0, background_weight) * (~ignore).to(logits.dtype)
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)


def _padded(size: int, stride: int) -> int:
    return -(-size // stride) * stride


def paste_batch(
    image: torch.Tensor, mask: torch.Tensor, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The object of ``image`` (3, H, W) under ``mask`` (1, H, W) pasted at random circular
    shifts: (inputs (B, 3, H, W), pasted masks (B, 1, H, W))."""
    height, width = mask.shape[-2:]
    inputs, targets = [], []
    for _ in range(batch_size):
        dy = int(torch.randint(height, (1,), generator=generator))
        dx = int(torch.randint(width, (1,), generator=generator))
        moved_mask = torch.roll(mask, (dy, dx), dims=(-2, -1))
        moved_image = torch.roll(image, (dy, dx), dims=(-2, -1))
        inputs.append(image * (1 - moved_mask) + moved_image * moved_mask)
        targets.append(moved_mask)
    return torch.stack(inputs), torch.stack(targets)


@dataclass
class PropagatedMasks:
    network: MaskNet
    loss_history: list[float]
    seconds: float


def train_mask_network(
    frame: np.ndarray,
    annotation: np.ndarray,
    config: MaskPropagationConfig,
    device: torch.device,
    on_step: Callable[[int, int, float], None] | None = None,
) -> PropagatedMasks:
    """Learn to find the object annotated in ``frame`` (H, W, 3) by ``annotation`` (H, W) bool."""
    if not annotation.any():
        raise ValueError("the annotated frame's mask is empty: there is no object to propagate")
    torch.manual_seed(config.seed)
    network = MaskNet(config.model).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    image, mask = _to_working(frame, annotation, config.working_long_side, network.stride, device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    history: list[float] = []
    began = time.perf_counter()
    network.train()
    for iteration in range(1, config.iterations + 1):
        inputs, targets = paste_batch(image, mask, config.batch_size, generator)
        ignore = (mask > 0.5).expand_as(targets)
        loss = weighted_bce(network(inputs.to(device)), targets.to(device), ignore.to(device), config.background_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
        if on_step is not None:
            on_step(iteration, config.iterations, history[-1])
    network.eval()
    return PropagatedMasks(network, history, time.perf_counter() - began)


def _to_working(
    frame: np.ndarray, annotation: np.ndarray | None, long_side: int, stride: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    height, width = frame.shape[:2]
    work_h, work_w = working_size(height, width, long_side)
    pad_h, pad_w = _padded(work_h, stride), _padded(work_w, stride)
    small = to_unit_range(resize_frame(frame, work_h, work_w))
    small = np.pad(small, ((0, pad_h - work_h), (0, pad_w - work_w), (0, 0)), mode="edge")
    image = torch.from_numpy(small).permute(2, 0, 1).contiguous().to(device)
    if annotation is None:
        return image, None
    coverage = cv2.resize(annotation.astype(np.float32), (work_w, work_h), interpolation=cv2.INTER_AREA)
    mask = np.zeros((1, pad_h, pad_w), dtype=np.float32)
    mask[0, :work_h, :work_w] = coverage > 0.5
    return image, torch.from_numpy(mask).to(device)


@torch.no_grad()
def mask_probability(network: MaskNet, frame: np.ndarray, config: MaskPropagationConfig, device: torch.device) -> np.ndarray:
    """(H, W) float32: the network's probability that each pixel of ``frame`` is the object,
    at the frame's own size."""
    network.eval()
    height, width = frame.shape[:2]
    work_h, work_w = working_size(height, width, config.working_long_side)
    image, _ = _to_working(frame, None, config.working_long_side, network.stride, device)
    probability = torch.sigmoid(network(image[None]))[0, 0, :work_h, :work_w].float().cpu().numpy()
    if (work_h, work_w) != (height, width):
        probability = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
    return probability


def margin_px(height: int, width: int, config: MaskPropagationConfig) -> int:
    """``config.margin_working_px`` in the frame's pixels (a working pixel covers several)."""
    work_h, work_w = working_size(height, width, config.working_long_side)
    scale = max(height, width) / max(work_h, work_w)
    return math.ceil(config.margin_working_px * scale - 1e-9)


def probability_to_mask(probability: np.ndarray, config: MaskPropagationConfig) -> np.ndarray:
    """(H, W) bool: ``probability`` above the threshold, grown by the margin."""
    return dilate_holes((probability > config.threshold)[None], margin_px(*probability.shape, config))[0]


def propagate_masks(
    frames: FrameStore,
    annotation: np.ndarray,
    annotated_frame: int,
    config: MaskPropagationConfig,
    device: torch.device,
    output: FrameStore,
    dilate: int = 0,
) -> PropagatedMasks:
    """Masks for every frame of ``frames`` from ``annotation`` (H, W) bool of one frame.

    The annotated frame keeps the user's own mask (it is the one certain mask of the shot);
    every other frame gets the prediction. ``dilate`` grows every mask by that many px.
    """
    trained = train_mask_network(frames.frame(annotated_frame), annotation, config, device)
    # One pass: predict, grow by ``dilate`` and write each frame (the annotated one is not
    # predicted at all).
    hole_share = 0.0
    for index in range(frames.num_frames):
        if index == annotated_frame:
            mask = annotation
        else:
            mask = probability_to_mask(mask_probability(trained.network, frames.frame(index), config, device), config)
        mask = dilate_holes(mask[None], dilate)[0]
        hole_share += float(mask.mean()) / frames.num_frames
        output.write(index, mask[..., None])
    log.info(
        "single-frame mask: trained %d steps in %.1f s; mean predicted hole share %.4f",
        config.iterations,
        trained.seconds,
        hole_share,
    )
    return trained

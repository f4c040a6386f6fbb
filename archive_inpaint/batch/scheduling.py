"""Which shot runs first and how much of a GPU it asks for.

Longest first: a batch ends when its last shot does, so the long shots start at once and the short
ones fill the gaps (the classic LPT rule; with shots ordered shortest first, one long shot started
last would run alone for hours). A shot's cost is a compute proxy: network pixel evaluations of
its training steps (x3: forward and backward) plus those of filling every frame.

Small shots share a GPU: with the GPU's memory known, a shot whose estimated peak fits k times
into it requests 1/k of a GPU (k <= 8), so Ray packs k such shots on one GPU. The estimate is
measured, not guessed: one real training step of the shot's method and config at a small size,
with autograd's saved-tensor hooks counting what backward keeps, scaled to the shot's working
size; plus weights, gradients and Adam moments, the shot resident on the device, and a fixed
allowance for the CUDA context and kernels' workspace. Each shot's measured peak is recorded in
the results next to its estimate, so the estimate can be checked on the cluster's own GPUs.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from archive_inpaint.batch.shot_size import ShotSize
from archive_inpaint.config import MethodConfig
from archive_inpaint.training.stages import plan_stages
from archive_inpaint.training.working_set import build_working_set, padded_size, working_size

# The CUDA context, cuDNN/cuBLAS workspaces and the caching allocator's slack: not visible to the
# measurement on the CPU.
CUDA_OVERHEAD_BYTES = 768 << 20
# Allocator fragmentation and temporaries of the forward pass that backward does not keep.
SAFETY_FACTOR = 1.5
MAX_SHOTS_PER_GPU = 8
# The size the per-step measurement runs at; activations scale with the pixel count.
_PROBE_SIDE = 64
# Shots whose size could not be read are treated as this big (scheduled early, a whole GPU).
UNKNOWN_SIZE = ShotSize(frames=240, height=2160, width=3840)


@dataclass(frozen=True)
class ShotPlan:
    """The scheduler's view of one shot."""

    cost: float  # network pixel evaluations; only the order matters
    gpu_bytes: int  # estimated peak device memory


def plan_shot(size: ShotSize | None, config: MethodConfig) -> ShotPlan:
    shot = size if size is not None and size.frames > 0 else UNKNOWN_SIZE
    return ShotPlan(cost=shot_cost(shot, config), gpu_bytes=estimate_gpu_bytes(shot, config))


def shot_cost(size: ShotSize, config: MethodConfig) -> float:
    work_h, work_w = working_size(size.height, size.width, config.train.working_long_side)
    train = config.train
    cost = 3.0 * train.iterations * train.batch_size * work_h * work_w + size.frames * work_h * work_w
    stages = plan_stages(size.height, size.width, train.working_long_side, config.progressive)
    patch = config.progressive
    for _ in stages[1:]:
        cost += 3.0 * patch.iterations * patch.batch_size * patch.patch_size**2
        # Tiles cover the holes only; without the masks at hand, bound by the whole frame.
        cost += size.frames * size.pixels
    return cost


def estimate_gpu_bytes(size: ShotSize, config: MethodConfig) -> int:
    work_h, work_w = working_size(size.height, size.width, config.train.working_long_side)
    pad_h, pad_w = padded_size(work_h, work_w)
    per_pixel, weights = _step_profile(config)
    activations = per_pixel * pad_h * pad_w
    stages = plan_stages(size.height, size.width, config.train.working_long_side, config.progressive)
    if len(stages) > 1:
        # Patch stages: the same network shape on patch_size crops, batch_size of them per step.
        patch = config.progressive
        per_frame_pixel = per_pixel / max(config.train.batch_size, 1)
        activations = max(activations, int(per_frame_pixel * patch.batch_size * patch.patch_size**2))
    # The working set: float16 frames and bool holes, resident for the whole training.
    resident = size.frames * pad_h * pad_w * (3 * 2 + 1)
    # Weights, gradients and Adam's two moments (float32); a patch stage has its own network.
    optimiser_state = 4 * weights * (2 if len(stages) > 1 else 1)
    return int(SAFETY_FACTOR * (activations + resident + optimiser_state) + CUDA_OVERHEAD_BYTES)


def gpu_fraction(gpu_bytes: int, gpu_memory_bytes: int | None) -> float:
    """The GPU share to request: 1/k for the largest k <= MAX_SHOTS_PER_GPU with k estimates
    fitting in the GPU; a whole GPU when the GPU's memory is unknown or the shot needs it all."""
    if not gpu_memory_bytes or gpu_bytes <= 0:
        return 1.0
    shares = min(MAX_SHOTS_PER_GPU, gpu_memory_bytes // gpu_bytes)
    return 1.0 / shares if shares >= 2 else 1.0


def longest_first(costs: list[float]) -> list[int]:
    """Indices of ``costs`` from the most to the least costly (ties keep manifest order)."""
    return sorted(range(len(costs)), key=lambda index: -costs[index])


def _step_profile(config: MethodConfig) -> tuple[int, int]:
    """(bytes kept for backward by one training step, per working pixel; parameter count)."""
    return _measure(json.dumps(config.to_dict(), sort_keys=True), config)


@functools.lru_cache(maxsize=32)
def _measure(key: str, config: MethodConfig) -> tuple[int, int]:
    del key  # the cache key: configs with equal settings share one measurement
    # The methods' notices (e.g. no perceptual-loss weights here) are about this synthetic step,
    # not about any shot: keep them out of the driver's log.
    logging.disable(logging.WARNING)
    try:
        return _measure_step(config)
    finally:
        logging.disable(logging.NOTSET)


def _measure_step(config: MethodConfig) -> tuple[int, int]:
    from archive_inpaint.methods import make_method
    from archive_inpaint.training.trainer import make_network

    device = torch.device("cpu")
    method = make_method(config)
    network = make_network(config, device, method)
    optimizer = method.build_optimizer(network)
    frames_needed = max(8, 2 * config.train.batch_size + 2)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (frames_needed, _PROBE_SIDE, _PROBE_SIDE, 3), dtype=np.uint8)
    holes = np.zeros((frames_needed, _PROBE_SIDE, _PROBE_SIDE), bool)
    holes[:, 20:40, 16:36] = True
    working_set = build_working_set(frames, holes, _PROBE_SIDE, device)
    method.prepare(working_set, device)
    generator = torch.Generator().manual_seed(0)
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        method.training_step(network, optimizer, working_set, 1, generator)
    # The working set's own storage is counted as resident memory, not as activations.
    for tensor in (working_set.images, working_set.holes):
        kept.pop(tensor.untyped_storage().data_ptr(), None)
    pixels = working_set.images.shape[-2] * working_set.images.shape[-1]
    weights = sum(parameter.numel() for parameter in network.parameters())
    return math.ceil(sum(kept.values()) / pixels), weights

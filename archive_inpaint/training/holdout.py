"""Held-out pixels: evidence for when training has learnt what it can.

On a few frames spread over the shot, one pseudo-hole each (a real mask of another frame,
translated at random, as in training) is hidden for the whole run: the method sees those pixels
neither as input nor in its loss, exactly like a real hole. Their true values are known, so the
fill of them, scored as PSNR, measures how well the network fills holes of the shot's own shapes
and content, which is what the real holes need. When that score stops improving, more steps buy
nothing: training stops (the paper's fixed iteration count becomes a ceiling).

The held-out pixels are drawn from their own generator, seeded from the run's seed, so a resumed
run holds out the same pixels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from archive_inpaint.config import HoldoutConfig
from archive_inpaint.training.pseudo_holes import sample_pseudo_holes
from archive_inpaint.training.working_set import WorkingSet

# Offsets the holdout's generator from the training generator's seed.
_SEED_OFFSET = 7919


@dataclass
class Holdout:
    frame_ids: list[int]
    pixels: torch.Tensor  # (len(frame_ids), 1, Hp, Wp) bool: held out, known, inside the frame

    @property
    def count(self) -> int:
        return int(self.pixels.sum())


def make_holdout(working_set: WorkingSet, config: HoldoutConfig, seed: int) -> Holdout | None:
    """None when off, or when the shot has no hole to borrow a shape from or no known pixel left."""
    pool = working_set.frames_with_holes()
    if not config.enabled or len(pool) == 0:
        return None
    count = min(config.frames, working_set.num_frames)
    frame_ids = sorted({int(i) for i in np.linspace(0, working_set.num_frames - 1, count).round()})
    generator = torch.Generator().manual_seed(seed + _SEED_OFFSET)
    shapes = sample_pseudo_holes(
        working_set.holes, pool, len(frame_ids), working_set.valid_height, working_set.valid_width, generator
    )
    pixels = shapes & ~working_set.holes[frame_ids]
    if not bool(pixels.any()):
        return None
    return Holdout(frame_ids, pixels)


def hide(working_set: WorkingSet, holdout: Holdout | None) -> WorkingSet:
    """The working set training sees: the held-out pixels are holes."""
    if holdout is None:
        return working_set
    holes = working_set.holes.clone()
    holes[holdout.frame_ids] |= holdout.pixels
    return dataclasses.replace(working_set, holes=holes)


def holdout_psnr(prediction: torch.Tensor, original: WorkingSet, holdout: Holdout) -> float:
    """PSNR (dB, peak = full range) of ``prediction`` (N, 3, Hp, Wp in [-1, 1], the network's
    image for ``holdout.frame_ids``) over the held-out pixels."""
    truth = original.images[holdout.frame_ids].float()
    error = (prediction.float().clamp(-1, 1) - truth) / 2.0  # in [0, 1] units
    mask = holdout.pixels.expand_as(error)
    mse = float((error[mask] ** 2).mean())
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


@dataclass
class Evaluation:
    iteration: int
    train_seconds: float  # training time up to this evaluation, evaluations excluded
    eval_seconds: float  # time spent evaluating so far
    psnr: float


class EarlyStopping:
    """Stop once ``patience`` evaluations in a row have not beaten the best by ``min_delta_db``."""

    def __init__(self, config: HoldoutConfig) -> None:
        self.config = config
        self.best = -math.inf
        self.stale = 0

    def should_stop(self, iteration: int, psnr: float) -> bool:
        if psnr > self.best + self.config.min_delta_db:
            self.best, self.stale = psnr, 0
        else:
            self.stale += 1
        patience = self.config.stop_patience
        return patience is not None and self.stale >= patience and iteration >= self.config.min_iterations

"""The internal-training loop, shared by every method: one network per shot, trained on the
shot's known pixels.

The method (``archive_inpaint.methods``) says what a step is: its batch, its losses, its update.
This loop owns what every method needs the same way: seeding, the optimiser, checkpoints and
resume, the time budget, progress. All randomness goes through one seeded generator whose state
is checkpointed, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archive_inpaint.config import MethodConfig
from archive_inpaint.methods import Method, make_method
from archive_inpaint.training.checkpoint import Resumable
from archive_inpaint.training.working_set import WorkingSet

log = logging.getLogger(__name__)

# (iteration done, iteration ceiling, loss of that step)
StepCallback = Callable[[int, int, float], None]
# Called with the path of each checkpoint once it is complete on disk (e.g. to upload it).
CheckpointCallback = Callable[[Path], None]


@dataclass
class TrainingResult:
    network: nn.Module
    iterations: int
    resumed_from: int
    # What the checkpoints are of (the run's or the patch stage's fingerprint); a patch stage
    # builds its own on the whole-frame run's.
    fingerprint: str
    loss_history: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # What the method used that its config does not say (flow estimator, feature encoders).
    provenance: dict[str, Any] = field(default_factory=dict)
    # The method itself, prepared for this shot: it fills the frames (``Method.predict``).
    method: Method | None = None


def run_fingerprint(working_set: WorkingSet, config: MethodConfig) -> str:
    """Identifies what a checkpoint is a checkpoint *of*: the shot and every setting that changes
    the learnt weights (``Method.learnt_settings``)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(working_set.fingerprint().encode())
    digest.update(json.dumps(make_method(config).learnt_settings(), sort_keys=True).encode())
    return digest.hexdigest()


def make_network(config: MethodConfig, device: torch.device, method: Method | None = None) -> nn.Module:
    torch.manual_seed(config.train.seed)
    network = (method or make_method(config)).build_network()
    return network.to(device=device, memory_format=torch.channels_last)


def train(
    working_set: WorkingSet,
    config: MethodConfig,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> TrainingResult:
    """Train the config's method on the shot up to ``config.train.iterations`` (or its time
    budget), resuming from ``checkpoint_dir``."""
    train_cfg = config.train
    method = make_method(config)
    network = make_network(config, device, method)
    optimizer = method.build_optimizer(network)
    generator = torch.Generator().manual_seed(train_cfg.seed)
    fingerprint = run_fingerprint(working_set, config)  # hashes every working image: once per run
    resumable = Resumable(
        network, optimizer, generator, checkpoint_dir, fingerprint, train_cfg.keep_checkpoints
    )
    start, history = resumable.restore()
    if start:
        log.info("resuming training from %s at iteration %d", checkpoint_dir, start)
    began = time.perf_counter()  # the method's preparation (e.g. optical flow) is training time
    method.prepare(working_set, device)
    budget = train_cfg.time_budget_seconds
    reached = start
    network.train()
    for iteration in range(start + 1, train_cfg.iterations + 1):
        loss = method.training_step(network, optimizer, working_set, iteration, generator)
        history.append(loss)
        reached = iteration
        if on_step is not None:
            on_step(iteration, train_cfg.iterations, loss)
        out_of_time = budget is not None and time.perf_counter() - began >= budget
        at_end = iteration == train_cfg.iterations or out_of_time
        if iteration % train_cfg.checkpoint_every == 0 or at_end:
            saved = resumable.save(iteration, history)
            if saved is not None and on_checkpoint is not None:
                on_checkpoint(saved)
        if out_of_time:
            log.info("time budget of %.0f s reached at iteration %d", budget, iteration)
            break
    network.eval()
    return TrainingResult(
        network=network,
        iterations=max(start, reached),
        resumed_from=start,
        fingerprint=fingerprint,
        loss_history=history,
        seconds=time.perf_counter() - began,
        provenance=method.provenance(),
        method=method,
    )

"""The internal-training loop, shared by every method: one network per shot, trained on the
shot's known pixels.

The method (``archive_inpaint.methods``) says what a step is: its batch, its losses, its update.
This loop owns what every method needs the same way: seeding, the optimiser, checkpoints and
resume, the time budget, progress. All randomness goes through one seeded generator whose state
is checkpointed, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archive_inpaint.config import HoldoutConfig, MethodConfig
from archive_inpaint.media.atomic import atomic_file
from archive_inpaint.methods import Method, make_method
from archive_inpaint.training.acceleration import autocast, prepare_network, training_dtype
from archive_inpaint.training.checkpoint import Resumable
from archive_inpaint.training.holdout import EarlyStopping, Evaluation, Holdout, hide, holdout_psnr, make_holdout
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
    # Held-out pixels' PSNR over the run (config.train.holdout), and where it stopped training.
    evaluations: list[Evaluation] = field(default_factory=list)
    stopped_early: bool = False
    # The weights training started from when it did not start from scratch (warm start).
    warm_start: str | None = None


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
    return prepare_network(network, config.train, device)


def save_weights(weights: dict[str, torch.Tensor], path: Path) -> None:
    """Write trained weights for another shot's warm start, whole or not at all."""
    # Through a file object: torch.save rejects the temporary's dot-prefixed name as a path.
    with atomic_file(path) as temporary, open(temporary, "wb") as stream:
        torch.save(weights, stream)


def load_initial_weights(network: nn.Module, path: Path) -> bool:
    """Start from another shot's trained weights (warm start); False, with the reason logged,
    when they do not fit this network (another method or width): training starts afresh."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    except (OSError, RuntimeError, KeyError) as error:
        log.warning("warm start from %s not used: %s", path, error)
        return False
    return True


def train(
    working_set: WorkingSet,
    config: MethodConfig,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    initial_weights: Path | None = None,
) -> TrainingResult:
    """Train the config's method on the shot up to ``config.train.iterations`` (or its time
    budget, or until the held-out pixels stop improving), resuming from ``checkpoint_dir``; a
    fresh run starts from ``initial_weights`` when given (another shot's, same method and width)."""
    train_cfg = config.train
    method = make_method(config)
    network = make_network(config, device, method)
    optimizer = method.build_optimizer(network)
    generator = torch.Generator().manual_seed(train_cfg.seed)
    fingerprint = run_fingerprint(working_set, config)  # hashes every working image: once per run
    resumable = Resumable(
        network, optimizer, generator, checkpoint_dir, fingerprint, train_cfg.keep_checkpoints
    )
    start, history, progress = resumable.restore()
    warm_start = None
    if start:
        log.info("resuming training from %s at iteration %d", checkpoint_dir, start)
    elif initial_weights is not None and load_initial_weights(network, initial_weights):
        warm_start = str(initial_weights)
        log.info("warm start from %s", initial_weights)
    holdout = make_holdout(working_set, train_cfg.holdout, train_cfg.seed)
    training_set = hide(working_set, holdout)
    stopping = EarlyStopping(_stopping_rule(config))
    # A resumed run goes on with the evaluations it had made, so it stops where an uninterrupted
    # run would; a run that had already stopped on evidence stays stopped (a rerun of a finished
    # shot must not train on), unless this configuration no longer stops early.
    evaluations = [Evaluation(*values) for values in progress.get("evaluations", [])]
    for past in evaluations:
        stopping.should_stop(past.iteration, past.psnr)
    stopped_early = bool(progress.get("stopped_early")) and holdout is not None and stopping.config.stop_patience is not None
    if stopped_early:
        log.info("training stopped early at iteration %d in an earlier run: not training on", start)
    # Seconds carried over from before the resume, so evaluations stay on one time axis.
    train_before = evaluations[-1].train_seconds if evaluations else 0.0
    eval_before = evaluations[-1].eval_seconds if evaluations else 0.0
    eval_seconds = 0.0  # this run's
    dtype = training_dtype(train_cfg, device)
    began = time.perf_counter()  # the method's preparation (e.g. optical flow) is training time
    method.prepare(training_set, device)
    budget = train_cfg.time_budget_seconds
    reached = start
    network.train()
    first = train_cfg.iterations + 1 if stopped_early else start + 1
    for iteration in range(first, train_cfg.iterations + 1):
        with autocast(device, dtype):
            loss = method.training_step(network, optimizer, training_set, iteration, generator)
        history.append(loss)
        reached = iteration
        if on_step is not None:
            on_step(iteration, train_cfg.iterations, loss)
        if holdout is not None and (iteration % train_cfg.holdout.eval_every == 0 or iteration == train_cfg.iterations):
            mark = time.perf_counter()
            trained_for = train_before + mark - began - eval_seconds
            psnr = _evaluate(method, network, training_set, working_set, holdout, device, dtype)
            eval_seconds += time.perf_counter() - mark
            evaluations.append(Evaluation(iteration, trained_for, eval_before + eval_seconds, psnr))
            stopped_early = stopping.should_stop(iteration, psnr) and iteration < train_cfg.iterations
        out_of_time = budget is not None and time.perf_counter() - began >= budget
        at_end = iteration == train_cfg.iterations or out_of_time or stopped_early
        if iteration % train_cfg.checkpoint_every == 0 or at_end:
            saved = resumable.save(iteration, history, _progress(evaluations, stopped_early))
            if saved is not None and on_checkpoint is not None:
                on_checkpoint(saved)
        if out_of_time:
            log.info("time budget of %.0f s reached at iteration %d", budget, iteration)
            break
        if stopped_early:
            log.info(
                "held-out PSNR has not improved by %.2f dB in %d evaluations: stopping at iteration %d (best %.2f dB)",
                train_cfg.holdout.min_delta_db, train_cfg.holdout.stop_patience, iteration, stopping.best,
            )
            break
    network.eval()
    provenance = method.provenance()
    if holdout is not None:
        provenance["holdout"] = {
            "frames": holdout.frame_ids,
            "pixels": holdout.count,
            "final_psnr": evaluations[-1].psnr if evaluations else None,
            "stopped_early": stopped_early,
        }
    if warm_start is not None:
        provenance["warm_start"] = warm_start
    return TrainingResult(
        network=network,
        iterations=max(start, reached),
        resumed_from=start,
        fingerprint=fingerprint,
        loss_history=history,
        seconds=time.perf_counter() - began,
        provenance=provenance,
        method=method,
        evaluations=evaluations,
        stopped_early=stopped_early,
        warm_start=warm_start,
    )


def _progress(evaluations: list[Evaluation], stopped_early: bool) -> dict[str, Any]:
    """The loop's state beyond the weights, as plain values a weights-only checkpoint can hold."""
    return {"evaluations": [list(dataclasses.astuple(e)) for e in evaluations], "stopped_early": stopped_early}


def _stopping_rule(config: MethodConfig) -> HoldoutConfig:
    """The holdout's rule, never stopping before a late phase of the schedule has had its say:
    IIVI's regularizers and LGTSM's adversarial fine-tuning start at a share of the step ceiling."""
    holdout = config.train.holdout
    starts = []
    regularizers = getattr(config, "regularizers", None)
    if regularizers is not None and regularizers.enabled:
        starts.append(regularizers.start_fraction)
    if getattr(config, "gan_weight", 0) > 0:
        starts.append(config.gan_start_fraction)  # type: ignore[attr-defined]
    if not starts or holdout.stop_patience is None:
        return holdout
    late = math.ceil(max(starts) * config.train.iterations) + holdout.eval_every * holdout.stop_patience
    return dataclasses.replace(holdout, min_iterations=max(holdout.min_iterations, late))


def _evaluate(
    method: Method,
    network: nn.Module,
    training_set: WorkingSet,
    original: WorkingSet,
    holdout: Holdout,
    device: torch.device,
    dtype: torch.dtype | None,
) -> float:
    network.eval()
    try:
        with torch.no_grad(), autocast(device, dtype):
            prediction = method.predict(network, training_set, holdout.frame_ids)
    finally:
        network.train()
    return holdout_psnr(prediction, original, holdout)

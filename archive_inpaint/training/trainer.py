"""The internal-training loop for IIVI: one network per shot, trained on the shot's known pixels.

Each step draws a batch of frames, hides pseudo-holes (other frames' masks translated at random)
in addition to their real holes, and minimises L1 between the network's coarse and refined outputs
and the frame on every known pixel. All randomness goes through one seeded generator whose state is
checkpointed, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from archive_inpaint.config import IIVIConfig
from archive_inpaint.models.iivi_net import IIVINet
from archive_inpaint.training.checkpoint import Resumable
from archive_inpaint.training.losses import known_pixel_l1
from archive_inpaint.training.regularizers import Regularizers
from archive_inpaint.training.pseudo_holes import sample_pseudo_holes, union_with_real
from archive_inpaint.training.working_set import WorkingSet

log = logging.getLogger(__name__)

# (iteration done, iteration ceiling, loss of that step)
StepCallback = Callable[[int, int, float], None]
# Called with the path of each checkpoint once it is complete on disk (e.g. to upload it).
CheckpointCallback = Callable[[Path], None]


@dataclass
class TrainingResult:
    network: IIVINet
    iterations: int
    resumed_from: int
    # What the checkpoints are of (the run's or the patch stage's fingerprint); a patch stage
    # builds its own on the whole-frame run's.
    fingerprint: str
    loss_history: list[float] = field(default_factory=list)
    seconds: float = 0.0
    contextual_encoder: str | None = None  # the contextual loss's features, when it ran


def run_fingerprint(working_set: WorkingSet, config: IIVIConfig) -> str:
    """Identifies what a checkpoint is a checkpoint *of*: the shot and every setting that changes
    the learnt weights. The checkpoint cadence is left out on purpose, and so is the iteration
    ceiling, so a run can be extended, unless regularizers are on: they start at a share of the
    ceiling, which then shapes the run."""
    learnt = config.to_dict()
    not_learnt = ["checkpoint_every", "keep_checkpoints"]
    if not config.regularizers.enabled:
        not_learnt.append("iterations")
        learnt.pop("regularizers")  # all off: checkpoints of runs before they existed still match
    for name in not_learnt:
        learnt["train"].pop(name)
    learnt.pop("inference")
    learnt.pop("progressive")  # the patch stages have their own checkpoints
    learnt.pop("mask_propagation")  # predicted masks are in the working set's own fingerprint
    digest = hashlib.blake2b(digest_size=8)
    digest.update(working_set.fingerprint().encode())
    digest.update(json.dumps(learnt, sort_keys=True).encode())
    return digest.hexdigest()


def make_network(config: IIVIConfig, device: torch.device) -> IIVINet:
    torch.manual_seed(config.train.seed)
    return IIVINet(config.model).to(device=device, memory_format=torch.channels_last)


def train_step(
    network: IIVINet,
    optimizer: torch.optim.Optimizer,
    working_set: WorkingSet,
    source_pool: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    regularizers: Regularizers | None = None,
) -> float:
    frame_ids = torch.randperm(working_set.num_frames, generator=generator)[:batch_size]
    frame_ids = frame_ids.to(working_set.images.device)
    images = working_set.images[frame_ids].float().contiguous(memory_format=torch.channels_last)
    real = working_set.holes[frame_ids]
    pseudo = sample_pseudo_holes(
        working_set.holes,
        source_pool,
        len(frame_ids),
        working_set.valid_height,
        working_set.valid_width,
        generator,
    )
    hole = union_with_real(real, pseudo).float().contiguous(memory_format=torch.channels_last)
    output = network(images, hole)
    h, w = working_set.valid_height, working_set.valid_width
    loss = known_pixel_l1(output.coarse, images, real, h, w)
    if output.refined is not None:
        loss = loss + known_pixel_l1(output.refined, images, real, h, w)
    if regularizers is not None:
        loss = loss + regularizers.loss(network, images, hole, real, output, h, w, generator)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def train(
    working_set: WorkingSet,
    config: IIVIConfig,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> TrainingResult:
    """Train f on the shot up to ``config.train.iterations``, resuming from ``checkpoint_dir``."""
    train_cfg = config.train
    network = make_network(config, device)
    optimizer = torch.optim.Adam(network.parameters(), lr=train_cfg.learning_rate)
    generator = torch.Generator().manual_seed(train_cfg.seed)
    fingerprint = run_fingerprint(working_set, config)  # hashes every working image: once per run
    resumable = Resumable(
        network, optimizer, generator, checkpoint_dir, fingerprint, train_cfg.keep_checkpoints
    )
    start, history = resumable.restore()
    if start:
        log.info("resuming training from %s at iteration %d", checkpoint_dir, start)

    regularizers = Regularizers(config.regularizers, device) if config.regularizers.enabled else None
    source_pool = working_set.frames_with_holes()
    began = time.perf_counter()
    network.train()
    for iteration in range(start + 1, train_cfg.iterations + 1):
        loss = train_step(
            network,
            optimizer,
            working_set,
            source_pool,
            train_cfg.batch_size,
            generator,
            regularizers if config.regularizers.active_at(iteration, train_cfg.iterations) else None,
        )
        history.append(loss)
        if on_step is not None:
            on_step(iteration, train_cfg.iterations, loss)
        at_end = iteration == train_cfg.iterations
        if iteration % train_cfg.checkpoint_every == 0 or at_end:
            saved = resumable.save(iteration, history)
            if saved is not None and on_checkpoint is not None:
                on_checkpoint(saved)
    network.eval()
    return TrainingResult(
        network=network,
        iterations=max(start, train_cfg.iterations),
        resumed_from=start,
        fingerprint=fingerprint,
        loss_history=history,
        seconds=time.perf_counter() - began,
        contextual_encoder=None if regularizers is None else regularizers.encoder_name,
    )

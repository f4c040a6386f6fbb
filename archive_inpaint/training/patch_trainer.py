"""Training a patch stage of progressive learning (IIVI §3.5; the design is ours: README, High resolution).

Each step draws patches with boundary-aware sampling, hides pseudo-holes in them (another
frame's hole near its boundary, cut to the patch and translated at random, as in whole-frame
training), asks the previous stage for its fill of the patch with the same holes (the prior),
looks for the holes' content in other frames (``inference/propagation.py``; the pseudo-hole's
flow is completed as a real hole's is, so the content found is no better than inference gets),
and minimises L1 on the patch's known pixels. Resumable exactly like whole-frame training: the
network, optimiser, generator state and step live in one checkpoint per stage.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, replace

import numpy as np
import torch

from archive_inpaint.config import IIVIConfig
from archive_inpaint.inference.agreement import agreement_for
from archive_inpaint.inference.stage_predictors import (
    CoarseStagePredictor,
    PatchStagePredictor,
    prior_channels,
)
from archive_inpaint.inference.propagation import ShotMotion
from archive_inpaint.inference.tiles import Tile
from archive_inpaint.methods.base import adam_options
from archive_inpaint.models.iivi_net import IIVINet, IIVINetConfig
from archive_inpaint.training.acceleration import autocast, training_dtype
from archive_inpaint.training.boundary_sampling import BoundaryAwareSampler
from archive_inpaint.training.checkpoint import Resumable
from archive_inpaint.training.losses import known_pixel_l1
from archive_inpaint.training.stage_data import StageData
from archive_inpaint.training.trainer import CheckpointCallback, StepCallback, TrainingResult

log = logging.getLogger(__name__)

def patch_stage_network(config: IIVIConfig, stage_index: int, device: torch.device) -> IIVINet:
    torch.manual_seed(config.train.seed + 1000 * stage_index)
    model = IIVINet(_patch_model_config(config))
    return model.to(device=device, memory_format=torch.channels_last)


def _patch_model_config(config: IIVIConfig) -> IIVINetConfig:
    return replace(config.model, prior_channels=prior_channels(config.content_propagation.patch_stages))


def patch_stage_fingerprint(base_fingerprint: str, stage_index: int, data: StageData, config: IIVIConfig) -> str:
    """The whole-frame run's fingerprint (the shot and stage 0) plus what shapes this stage."""
    learnt = asdict(config.progressive)
    not_learnt_fields = (
        "iterations", "tile_overlap", "tile_margin", "tile_batch_size", "in_memory_limit_bytes"
    )
    for not_learnt in not_learnt_fields:
        learnt.pop(not_learnt)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(repr((base_fingerprint, stage_index, data.stage.height, data.stage.width)).encode())
    digest.update(repr(sorted(learnt.items())).encode())
    digest.update(repr(asdict(config.model)).encode())
    propagation = config.content_propagation
    # Lighting, blending and the agreement check change the content the stage is given, so a stage trained without
    # them is not resumed with them (and a stage without propagation is given none: its digest
    # is unchanged).
    shape = (propagation.patch_stages, propagation.radius)
    if propagation.patch_stages and propagation.lighting:
        shape += ("lighting",)
    if propagation.patch_stages and propagation.blend_sources:
        shape += ("blended",)
    if propagation.patch_stages and propagation.check_agreement:
        shape += ("agreement", propagation.agreement_low, propagation.agreement_high, propagation.agreement_sigma)
        if propagation.agreement_between_sources:
            shape += ("between sources",)
    digest.update(repr(shape).encode())
    return digest.hexdigest()


def pseudo_hole_patch(
    data: StageData, sampler: BoundaryAwareSampler, pool: list[int], tile: Tile, generator: torch.Generator
) -> np.ndarray:
    """Another frame's hole near its boundary, cut to ``tile``'s size and rolled at random."""
    source = pool[int(torch.randint(len(pool), (1,), generator=generator))]
    point = sampler.band_point(source, generator)
    if point is None:
        return np.zeros((tile.height, tile.width), dtype=bool)
    window = sampler.box_around(*point)
    hole = data.hole(source, window)
    dy = int(torch.randint(tile.height, (1,), generator=generator))
    dx = int(torch.randint(tile.width, (1,), generator=generator))
    return np.roll(hole, (dy, dx), axis=(0, 1))


def patch_step(
    predictor: PatchStagePredictor,
    optimizer: torch.optim.Optimizer,
    sampler: BoundaryAwareSampler,
    pool: list[int],
    batch_size: int,
    generator: torch.Generator,
    dtype: torch.dtype | None = None,
) -> float:
    """One optimisation step of a patch stage (``dtype``: autocast, as whole-frame training's
    ``precision``); returns its loss."""
    draws = sampler.draw(batch_size, generator)
    frames = [draw.frame for draw in draws]
    tiles = [draw.tile for draw in draws]
    pseudo = [
        pseudo_hole_patch(predictor.data, sampler, pool, tile, generator)
        if pool
        else np.zeros((tile.height, tile.width), dtype=bool)
        for tile in tiles
    ]
    images, real = predictor.inputs(frames, tiles)
    extra = torch.from_numpy(np.stack(pseudo))[:, None].to(real.device, real.dtype)
    holes = torch.maximum(real, extra)
    with autocast(predictor.device, dtype):
        with torch.no_grad():
            # The previous stage fills the patch with the pseudo-hole hidden as well, and the
            # propagated content is looked for as for a real hole.
            prior = predictor.stage_prior(frames, tiles, holes, pseudo)
        _, output = predictor.run(images, holes, prior)
        height, width = images.shape[-2:]
        real_hole = real > 0.5
        loss = known_pixel_l1(output.coarse[..., :height, :width], images, real_hole, height, width)
        if output.refined is not None:
            loss = loss + known_pixel_l1(output.refined[..., :height, :width], images, real_hole, height, width)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def train_patch_stage(
    data: StageData,
    previous: CoarseStagePredictor | PatchStagePredictor,
    config: IIVIConfig,
    base_fingerprint: str,
    device: torch.device,
    checkpoint_dir=None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    motion: ShotMotion | None = None,
) -> tuple[PatchStagePredictor, TrainingResult]:
    """Train the patch stage of ``data``'s stage on top of ``previous``; ``motion`` (built
    when ``config.content_propagation.patch_stages`` is on) supplies content from other frames."""
    if config.content_propagation.patch_stages != (motion is not None):
        raise ValueError("content_propagation.patch_stages needs the shot's motion, and only then")
    prog = config.progressive
    stage = data.stage
    network = patch_stage_network(config, stage.index, device)
    optimizer = torch.optim.Adam(network.parameters(), lr=prog.learning_rate, **adam_options(config, network))
    # The whole-frame stage's speed settings hold for the patch stages too.
    dtype = training_dtype(config.train, device)
    generator = torch.Generator().manual_seed(config.train.seed + 1000 * stage.index)
    lighting = motion is not None and config.content_propagation.lighting
    blend = motion is not None and config.content_propagation.blend_sources
    agreement = None
    if motion is not None:
        # The check's blur is set at the working size, where the motion (and the prior's detail)
        # was measured.
        agreement = agreement_for(config.content_propagation, stage.width / motion.size[1])
    predictor = PatchStagePredictor(network, data, previous, prog, device, motion, lighting, blend, agreement)
    fingerprint = patch_stage_fingerprint(base_fingerprint, stage.index, data, config)
    resumable = Resumable(
        network, optimizer, generator, checkpoint_dir, fingerprint, config.train.keep_checkpoints
    )
    start, history, _ = resumable.restore()
    if start:
        log.info("stage %d: resuming from iteration %d", stage.index, start)

    # The band is found frame by frame; only its coordinates are kept.
    sampler = BoundaryAwareSampler.from_holes(
        (data.whole_hole(frame) for frame in range(data.num_frames)),
        prog.band_width,
        prog.patch_size,
        prog.patch_size,
        prog.boundary_probability,
    )
    pool = sampler.frames_with_band()
    began = time.perf_counter()
    network.train()
    for iteration in range(start + 1, prog.iterations + 1):
        loss = patch_step(predictor, optimizer, sampler, pool, prog.batch_size, generator, dtype)
        history.append(loss)
        if on_step is not None:
            on_step(iteration, prog.iterations, history[-1])
        at_end = iteration == prog.iterations
        if iteration % config.train.checkpoint_every == 0 or at_end:
            saved = resumable.save(iteration, history)
            if saved is not None and on_checkpoint is not None:
                on_checkpoint(saved)
    network.eval()
    result = TrainingResult(
        network, max(start, prog.iterations), start, fingerprint, history, time.perf_counter() - began
    )
    return predictor, result

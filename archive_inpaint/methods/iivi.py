"""IIVI (Ouyang et al. 2021): the gated-conv network f trained to fill pseudo-holes.

Each step draws a batch of frames, hides pseudo-holes (other frames' masks translated at random)
in addition to their real holes, and minimises L1 between the network's coarse and refined outputs
and the frame on every known pixel; the regularizers (stabilization, contextual loss) join for the
last part of the run when weighted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archive_inpaint.config import IIVIConfig
from archive_inpaint.methods.base import Method
from archive_inpaint.models.iivi_net import IIVINet
from archive_inpaint.training.losses import known_pixel_l1
from archive_inpaint.training.pseudo_holes import sample_pseudo_holes, union_with_real
from archive_inpaint.training.regularizers import Regularizers
from archive_inpaint.training.working_set import WorkingSet


class IIVIMethod(Method):
    name = "iivi"
    config: IIVIConfig

    def __init__(self, config: IIVIConfig) -> None:
        super().__init__(config)
        self.regularizers: Regularizers | None = None
        self.source_pool: torch.Tensor | None = None

    def build_network(self) -> IIVINet:
        return IIVINet(self.config.model)

    def prepare(self, working_set: WorkingSet, device: torch.device) -> None:
        self.source_pool = working_set.frames_with_holes()
        if self.config.regularizers.enabled and self.regularizers is None:
            self.regularizers = Regularizers(self.config.regularizers, device)

    def training_step(
        self,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        working_set: WorkingSet,
        iteration: int,
        generator: torch.Generator,
    ) -> float:
        assert self.source_pool is not None, "prepare() first"
        active = self.config.regularizers.active_at(iteration, self.config.train.iterations)
        return iivi_step(
            network,
            optimizer,
            working_set,
            self.source_pool,
            self.config.train.batch_size,
            generator,
            self.regularizers if active else None,
            self.memory_format,
        )

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.config.train.channels_last else torch.contiguous_format

    @torch.no_grad()
    def predict(self, network: nn.Module, working_set: WorkingSet, frame_ids: list[int]) -> torch.Tensor:
        images = working_set.images[frame_ids].float().contiguous(memory_format=self.memory_format)
        holes = working_set.holes[frame_ids].float().contiguous(memory_format=self.memory_format)
        return network(images, holes).final

    def learnt_settings(self) -> dict[str, Any]:
        # The layout predates the other methods, so checkpoints of earlier runs still match: no
        # method name, and the regularizers only when they are on, with the iteration ceiling
        # (their start is a share of it).
        learnt = super().learnt_settings()
        learnt.pop("method")
        if self.config.regularizers.enabled:
            learnt["train"]["iterations"] = self.config.train.iterations
        else:
            learnt.pop("regularizers")
        return learnt

    def provenance(self) -> dict[str, Any]:
        encoder = None if self.regularizers is None else self.regularizers.encoder_name
        return {"contextual_encoder": encoder}


def iivi_step(
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    working_set: WorkingSet,
    source_pool: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    regularizers: Regularizers | None = None,
    memory_format: torch.memory_format = torch.channels_last,
) -> float:
    frame_ids = torch.randperm(working_set.num_frames, generator=generator)[:batch_size]
    frame_ids = frame_ids.to(working_set.images.device)
    images = working_set.images[frame_ids].float().contiguous(memory_format=memory_format)
    real = working_set.holes[frame_ids]
    pseudo = sample_pseudo_holes(
        working_set.holes,
        source_pool,
        len(frame_ids),
        working_set.valid_height,
        working_set.valid_width,
        generator,
    )
    hole = union_with_real(real, pseudo).float().contiguous(memory_format=memory_format)
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

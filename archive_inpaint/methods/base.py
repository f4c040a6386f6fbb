"""What a per-shot internal-learning method is: a network, its losses and its batch schedule.

Everything else is shared by every method: reading the media, the working set (the shot at the
working size, resident on the device), the training loop with its seeded generator, checkpoints
and resume, progress, the composite at the footage's own resolution and the output. A method
plugs into that loop through this interface and nothing more, so a new method is one module here
plus its network in ``archive_inpaint.models``, never a second pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from archive_inpaint.training.working_set import WorkingSet


class Method(ABC):
    """One method, configured. Stateless between steps except for what ``prepare`` derives from
    the shot (noise maps, flow targets): the batch a step trains on must follow from the
    iteration number and the generator alone, so a resumed run continues exactly as an
    uninterrupted one would."""

    name: ClassVar[str]

    def __init__(self, config: Any) -> None:
        self.config = config

    @abstractmethod
    def build_network(self) -> nn.Module:
        """A freshly initialised network (the trainer seeds torch first and moves it to the device)."""

    def build_optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            network.parameters(), lr=self.config.train.learning_rate, **adam_options(self.config, network)
        )

    def prepare(self, working_set: WorkingSet, device: torch.device) -> None:
        """Derive what training and filling need from the shot, deterministically from the seed
        (called once per run, also when a run resumes, and before filling)."""

    @abstractmethod
    def training_step(
        self,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        working_set: WorkingSet,
        iteration: int,
        generator: torch.Generator,
    ) -> float:
        """One optimisation step (``iteration`` counts from 1 up to ``config.train.iterations``):
        choose the batch, compute the losses, update; return the step's total loss."""

    @abstractmethod
    def predict(self, network: nn.Module, working_set: WorkingSet, frame_ids: list[int]) -> torch.Tensor:
        """The network's image for ``frame_ids`` at the working size: (N, 3, Hp, Wp) in [-1, 1].
        Only its hole pixels are used (the composite keeps every known pixel of the input)."""

    def learnt_settings(self) -> dict[str, Any]:
        """The settings that change the learnt weights (for the checkpoint fingerprint). The
        checkpoint cadence and the time budget never do; the iteration ceiling does only when a
        schedule depends on it, so by default a run can be extended and resumes."""
        learnt = self.config.to_dict()
        # Nor do the speed switches that leave the arithmetic alone (bf16 does not: it stays), or
        # when the holdout is evaluated and training stops (only which pixels it hides).
        for name in (
            "checkpoint_every", "keep_checkpoints", "iterations", "time_budget_seconds",
            "channels_last", "fused_optimizer", "compile",
        ):
            learnt["train"].pop(name)
        learnt["train"]["holdout"] = {"frames": self.config.train.holdout.frames}
        for name in ("inference", "progressive", "content_propagation", "mask_propagation"):
            learnt.pop(name)
        return {"method": self.name, **learnt}

    def provenance(self) -> dict[str, Any]:
        """What a run of this method used that the config does not say (e.g. which flow
        estimator or feature encoder was available)."""
        return {}


def adam_options(config: Any, network: nn.Module) -> dict[str, Any]:
    """Adam's implementation: the fused kernel where the config asks for it and the parameters'
    device has one (CUDA, and the CPU since torch 2.4), else the default (foreach)."""
    device = next(network.parameters()).device.type
    return {"fused": True} if config.train.fused_optimizer and device in ("cuda", "cpu") else {}

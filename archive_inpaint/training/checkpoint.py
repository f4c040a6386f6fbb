"""Training checkpoints: atomic writes, latest-by-name, only for the same shot and configuration.

A checkpoint's file name carries a fingerprint of the shot content and of every setting that
changes what is learnt (not the iteration ceiling), so extending a run resumes it while a changed
mask or width starts afresh instead of silently mixing two trainings.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

_NAME = re.compile(r"^ckpt_(?P<fingerprint>[0-9a-f]+)_(?P<iteration>\d{8})\.pt$")


@dataclass
class TrainingState:
    iteration: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    generator: torch.Tensor
    loss_history: list[float]
    # What the loop needs besides the weights to go on exactly as it would have (plain Python
    # values): e.g. the held-out evaluations so far and whether they already stopped training.
    progress: dict[str, Any] = field(default_factory=dict)


def checkpoint_path(directory: Path, fingerprint: str, iteration: int) -> Path:
    return directory / f"ckpt_{fingerprint}_{iteration:08d}.pt"


def list_checkpoints(directory: Path, fingerprint: str) -> list[Path]:
    """This run's checkpoints, oldest first."""
    if not directory.is_dir():
        return []
    found = [
        path
        for path in directory.iterdir()
        if (match := _NAME.match(path.name)) and match["fingerprint"] == fingerprint
    ]
    return sorted(found)


def save_checkpoint(directory: Path, fingerprint: str, state: TrainingState, keep: int) -> Path:
    """Write to a temporary file and rename, so a crash never leaves a truncated 'latest'."""
    directory.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(directory, fingerprint, state.iteration)
    handle, temp_name = tempfile.mkstemp(prefix=".tmp-ckpt-", dir=directory)
    os.close(handle)
    try:
        # Saved through a file object: torch.save derives an archive name from a path's file name
        # and rejects dot-prefixed temporary names.
        with open(temp_name, "wb") as stream:
            torch.save(
                {
                    "iteration": state.iteration,
                    "model": state.model,
                    "optimizer": state.optimizer,
                    "generator": state.generator,
                    "loss_history": state.loss_history,
                    "progress": state.progress,
                },
                stream,
            )
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    for stale in list_checkpoints(directory, fingerprint)[:-keep]:
        stale.unlink(missing_ok=True)
    return target


def load_latest_checkpoint(directory: Path, fingerprint: str) -> TrainingState | None:
    checkpoints = list_checkpoints(directory, fingerprint)
    if not checkpoints:
        return None
    data = torch.load(checkpoints[-1], map_location="cpu", weights_only=True)
    return TrainingState(
        iteration=int(data["iteration"]),
        model=data["model"],
        optimizer=data["optimizer"],
        generator=data["generator"],
        loss_history=list(data["loss_history"]),
        progress=dict(data.get("progress", {})),  # absent in checkpoints written before it existed
    )


@dataclass
class Resumable:
    """What a training loop checkpoints: one object per loop, shared by every stage's trainer."""

    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    directory: Path | None
    fingerprint: str
    keep: int

    def restore(self) -> tuple[int, list[float], dict[str, Any]]:
        """Load the latest matching checkpoint, if any; (iteration reached, loss history, the
        loop's saved progress)."""
        if self.directory is None or (state := load_latest_checkpoint(self.directory, self.fingerprint)) is None:
            return 0, [], {}
        self.network.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        self.generator.set_state(state.generator)
        return state.iteration, state.loss_history, state.progress

    def save(self, iteration: int, history: list[float], progress: dict[str, Any] | None = None) -> Path | None:
        if self.directory is None:
            return None
        state = TrainingState(
            iteration=iteration,
            model=self.network.state_dict(),
            optimizer=self.optimizer.state_dict(),
            generator=self.generator.get_state(),
            loss_history=history,
            progress=progress or {},
        )
        return save_checkpoint(self.directory, self.fingerprint, state, keep=self.keep)

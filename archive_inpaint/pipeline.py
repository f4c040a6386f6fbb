"""One shot, end to end: read media, build the working set, train f, fill, write media and QC.

``inpaint_arrays`` is the engine on in-memory frames (used by the benchmarks and the batch runner);
``inpaint_files`` adds media in and out around it (used by ``archive-inpaint inpaint``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from archive_inpaint.config import IIVIConfig
from archive_inpaint.inference.fill import fill_shot
from archive_inpaint.media import MediaError, OutputKind, read_frames, read_masks, write_frames
from archive_inpaint.qc import write_contact_sheet
from archive_inpaint.training.trainer import CheckpointCallback, StepCallback, train
from archive_inpaint.training.working_set import build_working_set

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA where there is none is an error, not a
    silent hours-long CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but PyTorch sees no CUDA device")
    return torch.device(name)


@dataclass
class InpaintResult:
    frames: np.ndarray
    iterations: int
    resumed_from: int
    train_seconds: float
    fill_seconds: float
    loss_history: list[float] = field(default_factory=list)


def inpaint_arrays(
    frames: np.ndarray,
    holes: np.ndarray,
    config: IIVIConfig,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> InpaintResult:
    """Train f on ``frames`` (T, H, W, 3) uint8/uint16 with ``holes`` (T, H, W) bool and fill them."""
    if frames.shape[:3] != holes.shape:
        raise ValueError(f"frames {frames.shape} and holes {holes.shape} do not match")
    if not holes.any():
        # Nothing to remove: the output is the input, and no GPU time is spent learning nothing.
        log.warning("the mask is empty in every frame; the output is the input unchanged")
        return InpaintResult(frames.copy(), 0, 0, 0.0, 0.0)
    working_set = build_working_set(frames, holes, config.train.working_long_side, device)
    trained = train(
        working_set,
        config,
        device,
        checkpoint_dir=checkpoint_dir,
        on_step=on_step,
        on_checkpoint=on_checkpoint,
    )
    began = time.perf_counter()
    filled = fill_shot(
        trained.network, working_set, frames, holes, batch_size=config.inference.batch_size
    )
    return InpaintResult(
        frames=filled,
        iterations=trained.iterations,
        resumed_from=trained.resumed_from,
        train_seconds=trained.seconds,
        fill_seconds=time.perf_counter() - began,
        loss_history=trained.loss_history,
    )


@dataclass(frozen=True)
class ShotInputs:
    """Where a shot's media come from and how its mask is read."""

    video: Path
    mask: Path
    start: int = 0
    end: int | None = None
    fps: Fraction | None = None  # for image sequences
    mask_threshold: int = 0
    dilate: int = 0


@dataclass
class FileOutputs:
    video: Path
    contact_sheet: Path


def contact_sheet_path(output: Path) -> Path:
    """Beside the output: ``shot.mkv`` -> ``shot.contact.png``, a sequence folder -> ``folder.contact.png``."""
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}.contact.png")


def inpaint_files(
    inputs: ShotInputs,
    output: Path,
    config: IIVIConfig,
    device: torch.device,
    output_kind: OutputKind | None = None,
    checkpoint_dir: Path | None = None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> tuple[FileOutputs, InpaintResult]:
    for source in (inputs.video, inputs.mask):
        if Path(output).resolve() == Path(source).resolve():
            # The atomic rename would replace a source the user may hold no other copy of.
            raise MediaError(f"output '{output}' would overwrite the input '{source}'")
    video = read_frames(inputs.video, start=inputs.start, end=inputs.end, fps=inputs.fps)
    holes = read_masks(
        inputs.mask,
        num_frames=video.num_frames,
        height=video.height,
        width=video.width,
        fps=video.fps,
        video_path=str(inputs.video),
        start=inputs.start,
        end=inputs.end,
        threshold=inputs.mask_threshold,
        dilate=inputs.dilate,
    )
    result = inpaint_arrays(
        video.frames, holes, config, device, checkpoint_dir, on_step, on_checkpoint
    )
    written = write_frames(result.frames, video.fps, output, output_kind)
    sheet = write_contact_sheet(video.frames, result.frames, holes, contact_sheet_path(output))
    return FileOutputs(video=written, contact_sheet=sheet), result

"""One shot, end to end: read media, build the working set, train f, fill, write media and QC.

``inpaint_arrays`` is the engine on in-memory frames (used by the benchmarks and the batch runner);
``inpaint_files`` adds media in and out around it (used by ``archive-inpaint inpaint``).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from archive_inpaint.config import ContentPropagationConfig, IIVIConfig, MethodConfig
from archive_inpaint.inference.fill import WorkingPredictor, fill_shot_into, method_predictor
from archive_inpaint.inference.progressive_fill import fill_shot_tiled
from archive_inpaint.inference.agreement import agreement_for
from archive_inpaint.inference.propagated_paste import paste_propagated
from archive_inpaint.inference.propagation import ShotMotion, WorkingFills
from archive_inpaint.inference.stage_predictors import CoarseStagePredictor, PatchStagePredictor
from archive_inpaint.media import (
    MediaError,
    OutputKind,
    read_frames_to_store,
    read_masks_to_store,
    write_frames,
)
from archive_inpaint.media.boxes import Box, box_mask, check_boxes_fit, format_boxes
from archive_inpaint.media.kinds import output_kind_for
from archive_inpaint.media.masks import dilate_holes
from archive_inpaint.media.master import Timing, check_output, is_variable_rate, write_master
from archive_inpaint.media.probe import probe_source
from archive_inpaint.provenance import content_digest
from archive_inpaint.qc import (
    write_contact_sheet,
    write_difference_image,
    write_side_by_side_preview,
    write_thumbnail,
)
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.media.reader import StoredFrames
from archive_inpaint.training.mask_propagation import propagate_masks
from archive_inpaint.training.patch_trainer import train_patch_stage
from archive_inpaint.training.stage_data import StageData
from archive_inpaint.training.stages import plan_stages
from archive_inpaint.training.trainer import CheckpointCallback, StepCallback, train
from archive_inpaint.training.working_set import build_working_set

log = logging.getLogger(__name__)


def release_free_memory() -> None:
    """Hand memory freed by training back to the OS before the output is encoded.

    glibc keeps freed heap pages mapped for reuse, so the encoder's own buffers (FFV1 allocates
    about 640 MB for a 4K frame) would be added on top of training's high-water mark instead of
    reusing it. ``malloc_trim`` returns them; it is a no-op elsewhere than glibc.
    """
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


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
    stages: int = 1
    tiles: int = 0
    shape: tuple[int, ...] = ()  # (T, H, W, C) of the shot, wherever its frames are held
    # The last patch stage (None for a whole-frame run): lets a caller fill more frames or time
    # the tiled fill without retraining.
    final_stage: PatchStagePredictor | None = None
    method: str = "iivi"
    # What the method used that its config does not say (e.g. the contextual loss's encoder).
    provenance: dict = field(default_factory=dict)
    # The whole-frame network's trained weights (on the CPU): another shot of the same reel can
    # start from them (warm start). None when nothing was trained.
    weights: dict | None = None
    # Held-out pixels' PSNR over training (config.train.holdout), and whether it stopped training.
    evaluations: list = field(default_factory=list)
    stopped_early: bool = False


def inpaint_arrays(
    frames: np.ndarray,
    holes: np.ndarray,
    config: MethodConfig,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    feather: int = 0,
    initial_weights: Path | None = None,
) -> InpaintResult:
    """Train the config's method on ``frames`` (T, H, W, 3) uint8/uint16 with ``holes`` (T, H, W)
    bool and fill them (``feather``: px of soft edge outside the hole, see inference/feather.py;
    ``initial_weights``: another shot's trained weights to start from)."""
    if frames.shape[:3] != holes.shape:
        raise ValueError(f"frames {frames.shape} and holes {holes.shape} do not match")
    output = FrameStore.from_array(np.empty_like(frames))
    result = inpaint_stores(
        FrameStore.from_array(frames),
        FrameStore.from_array(holes),
        output,
        config,
        device,
        checkpoint_dir,
        on_step,
        on_checkpoint,
        feather,
        initial_weights,
    )
    result.frames = output.to_array()
    return result


def inpaint_stores(
    frames: FrameStore,
    holes: FrameStore,
    output: FrameStore,
    config: MethodConfig,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    feather: int = 0,
    initial_weights: Path | None = None,
) -> InpaintResult:
    """The engine on frames held in stores (in memory or on scratch disk): train every stage the
    footage's size calls for, fill, and write the filled frames into ``output``.

    ``result.frames`` is left empty here; ``inpaint_arrays`` fills it for in-memory callers.
    """
    empty = np.empty((0,), dtype=frames.dtype)
    # Built first: its holes are every frame's hole at the working size, and resizing keeps a
    # non-empty hole non-empty, so the empty-mask check needs no second pass over the masks.
    working_set = build_working_set(frames, holes, config.train.working_long_side, device)
    if not bool(working_set.holes.any()):
        # Nothing to remove: the output is the input, and no GPU time is spent learning nothing.
        log.warning("the mask is empty in every frame; the output is the input unchanged")
        for index in range(frames.num_frames):
            output.write(index, frames.frame(index))
        return InpaintResult(empty, 0, 0, 0.0, 0.0, shape=frames.shape, method=config.method)
    stages = plan_stages(frames.height, frames.width, config.train.working_long_side, config.progressive)
    total = config.train.iterations + (len(stages) - 1) * config.progressive.iterations
    trained = train(
        working_set,
        config,
        device,
        checkpoint_dir=checkpoint_dir,
        on_step=_offset_progress(on_step, 0, total),
        on_checkpoint=on_checkpoint,
        initial_weights=initial_weights,
    )
    train_seconds, history = trained.seconds, list(trained.loss_history)
    learnt = {
        "weights": {name: tensor.detach().cpu() for name, tensor in trained.network.state_dict().items()},
        "evaluations": trained.evaluations,
        "stopped_early": trained.stopped_early,
    }
    if len(stages) == 1:
        began = time.perf_counter()
        predict = method_predictor(trained.method, trained.network, working_set)
        propagation = config.content_propagation
        # The flow is measured on the network's fills at the working size: kept as the fill
        # below makes them, so the network runs once per frame with a hole.
        working_fills = WorkingFills(working_set) if propagation.whole_frame_fill else None
        fill_predict = working_fills.recording(predict) if working_fills is not None else predict
        fill_shot_into(fill_predict, working_set, frames, holes, output, config.inference.batch_size, feather)
        if working_fills is not None:
            motion = _shot_motion(working_fills, predict, propagation)
            # The seams follow the motion, measured at the working size: the ramps span the same
            # share of the picture at any resolution.
            scale = max(1.0, frames.width / motion.size[1])
            feather = round(propagation.seam_feather * scale)
            pasted = paste_propagated(
                motion, frames, holes, output, propagation.lighting, propagation.blend_sources, feather,
                agreement_for(propagation, scale),
            )
            log.info("content from other frames: %.1f%% of the hole pixels", 100.0 * pasted)
        return InpaintResult(
            empty, trained.iterations, trained.resumed_from, train_seconds,
            time.perf_counter() - began, history, shape=frames.shape,
            method=config.method, provenance=trained.provenance, **learnt,
        )
    # Patch stages refine IIVI's whole-frame network (the other methods' configs allow one stage).
    assert isinstance(config, IIVIConfig)
    log.info(
        "progressive learning: %s",
        " -> ".join(f"{stage.width}x{stage.height}" for stage in stages),
    )
    predictor = CoarseStagePredictor(trained.network, working_set)
    motion = None
    if config.content_propagation.patch_stages:
        motion = _shot_motion(
            WorkingFills(working_set),
            method_predictor(trained.method, trained.network, working_set),
            config.content_propagation,
        )
    done = config.train.iterations
    for stage in stages[1:]:
        predictor, stage_result = train_patch_stage(
            StageData(frames, holes, stage),
            predictor,
            config,
            trained.fingerprint,
            device,
            checkpoint_dir=checkpoint_dir,
            on_step=_offset_progress(on_step, done, total),
            on_checkpoint=on_checkpoint,
            motion=motion,
        )
        done += config.progressive.iterations
        train_seconds += stage_result.seconds
        history.extend(stage_result.loss_history)
    began = time.perf_counter()
    tiles = fill_shot_tiled(predictor, frames, holes, output, feather)
    log.info("filled %d tiles", tiles)
    if motion is not None:
        # The encoder comes next, and FFV1 at 4K is the run's largest allocation: the flow
        # fields (recomputed if the final stage is used again) should not sit under it.
        motion.forget_flows()
    # Steps actually run: the whole-frame stage may have stopped early on the held-out pixels.
    iterations = trained.iterations + (len(stages) - 1) * config.progressive.iterations
    return InpaintResult(
        empty, iterations, trained.resumed_from, train_seconds, time.perf_counter() - began, history,
        stages=len(stages), tiles=tiles, shape=frames.shape, final_stage=predictor,
        method=config.method, provenance=trained.provenance, **learnt,
    )


def _shot_motion(
    working_fills: WorkingFills, predict: WorkingPredictor, propagation: ContentPropagationConfig
) -> ShotMotion:
    """The shot's motion for content propagation, measured on the whole-frame network's fill
    (``predict`` runs for the frames ``working_fills`` has not recorded)."""
    began = time.perf_counter()
    already = int(working_fills.recorded.sum())
    motion = working_fills.motion(predict, propagation.radius, propagation.flow_cache_mib << 20)
    log.info(
        "motion for content propagation: %d frames (%d filled during the fill) in %.1f s",
        motion.num_frames, already, time.perf_counter() - began,
    )
    return motion


def _offset_progress(on_step: StepCallback | None, offset: int, total: int) -> StepCallback | None:
    """One progress bar over all stages: stage k's step i is step offset + i of ``total``."""
    if on_step is None:
        return None
    return lambda iteration, _ceiling, loss: on_step(offset + iteration, total, loss)


@dataclass(frozen=True)
class ShotInputs:
    """Where a shot's media come from, which frames, and how its mask is made."""

    video: Path
    mask: Path | None  # None: the mask is the static ``boxes`` alone
    start: int = 0
    end: int | None = None
    fps: Fraction | None = None  # for image sequences
    mask_threshold: int = 0
    dilate: int = 0
    # "per-frame": ``mask`` holds a mask for every frame (or one image for all of them).
    # "single-frame": ``mask`` annotates frame ``mask_frame`` of the range (an image, or a mask
    # video/folder of which only that frame is used); the other frames' masks are predicted.
    mask_mode: str = "per-frame"
    mask_frame: int = 0
    # Static boxes (burnt-in timestamps, logos) added to every frame's mask.
    boxes: tuple[Box, ...] = ()
    # Soft edge: the fill blends into the picture over this many px outside the (dilated) mask.
    feather: int = 0
    # Extra frames processed and delivered on each side of [start, end), clamped to the file:
    # the editor's handles, and more of the shot for the network to learn from.
    handles: int = 0

    def __post_init__(self) -> None:
        if self.mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {', '.join(MASK_MODES)}, got {self.mask_mode!r}")
        if self.mask_frame < 0:
            raise ValueError(f"mask_frame must be >= 0, got {self.mask_frame}")
        if self.mask is None and not self.boxes:
            raise ValueError("a shot needs a mask, boxes, or both")
        if self.mask is None and self.mask_mode == "single-frame":
            raise ValueError("single-frame mask mode needs an annotated mask image")
        for name in ("feather", "handles", "dilate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


MASK_MODES = ("per-frame", "single-frame")


@dataclass
class FileOutputs:
    video: Path
    contact_sheet: Path
    predicted_masks: Path | None = None  # single-frame mode: the masks the shot was filled with
    difference: Path | None = None
    preview: Path | None = None
    thumbnail: Path | None = None
    audio_sidecar: Path | None = None  # an image-sequence output's audio, copied as is
    # What the output was made from and how: source description, range, output kind, tags,
    # content hashes (see provenance.py). Written next to the output by the CLI and batch.
    media: dict = field(default_factory=dict)

    def files(self) -> list[Path]:
        """Every file or folder written, the output first."""
        extra = (self.contact_sheet, self.difference, self.preview, self.thumbnail,
                 self.predicted_masks, self.audio_sidecar)
        return [self.video, *(path for path in extra if path is not None)]


def _stem(output: Path) -> str:
    return output.name[: -len(output.suffix)] if output.suffix else output.name


def predicted_masks_path(output: Path) -> Path:
    """Beside the output: ``shot.mkv`` -> ``shot.masks.mkv`` (FFV1, white = hole)."""
    return output.with_name(f"{_stem(output)}.masks.mkv")


def contact_sheet_path(output: Path) -> Path:
    """Beside the output: ``shot.mkv`` -> ``shot.contact.png``, a sequence folder -> ``folder.contact.png``."""
    return output.with_name(f"{_stem(output)}.contact.png")


def qc_path(output: Path, what: str) -> Path:
    """Beside the output: ``shot.mkv`` -> ``shot.<what>`` (diff.png, preview.mp4, thumb.png...)."""
    return output.with_name(f"{_stem(output)}.{what}")


def inpaint_files(
    inputs: ShotInputs,
    output: Path,
    config: MethodConfig,
    device: torch.device,
    output_kind: OutputKind | str | None = None,
    checkpoint_dir: Path | None = None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    initial_weights: Path | None = None,
) -> tuple[FileOutputs, InpaintResult]:
    """One shot from files to files: the output keeps the source's kind (unless ``output_kind``
    or the output's suffix says otherwise), its untouched samples, audio, timecode and colour
    tags; QC artefacts and the media provenance come with it."""
    output = Path(output)
    written_paths = [output]
    if inputs.mask_mode == "single-frame":
        written_paths.append(predicted_masks_path(output))
    for target in written_paths:
        for source_path in (inputs.video, inputs.mask):
            if source_path is not None and target.resolve() == Path(source_path).resolve():
                # The atomic rename would replace a source the user may hold no other copy of.
                raise MediaError(f"output '{target}' would overwrite the input '{source_path}'")
    source = probe_source(inputs.video)
    kind = output_kind_for(output, output_kind, source)
    # Handles widen the range on both sides, within the file.
    start = max(0, inputs.start - inputs.handles)
    requested_end = None if inputs.end is None else inputs.end + inputs.handles
    # Frames and masks go to scratch disk when large (ProgressiveConfig.in_memory_limit_bytes),
    # so a 4K shot is held a few frames at a time, never whole.
    limit = config.progressive.in_memory_limit_bytes
    video = read_frames_to_store(
        inputs.video, start=start, end=requested_end, fps=inputs.fps, in_memory_limit=limit,
        clamp_end=inputs.handles > 0,
    )
    end = start + video.num_frames
    runs_to_file_end = inputs.end is None or (requested_end is not None and end < requested_end)
    label = f"video '{inputs.video}'"
    with video, ExitStack() as cleanup:
        check_boxes_fit(inputs.boxes, video.height, video.width, label)
        # What the output's container cannot carry (an MXF at 15 fps, AAC into MXF...) fails
        # now, not after hours of training.
        timing = _timing(video)
        check_output(video.store, timing, output, kind, source)
        mask_args = dict(
            num_frames=video.num_frames,
            height=video.height,
            width=video.width,
            fps=video.fps,
            video_path=str(inputs.video),
            start=start,
            end=end,
            threshold=inputs.mask_threshold,
            in_memory_limit=limit,
        )
        masks_written = None
        if inputs.mask is None:
            holes = cleanup.enter_context(
                FrameStore.create((video.num_frames, video.height, video.width, 1), bool, in_memory_limit=limit)
            )
            _add_boxes(holes, inputs.boxes, inputs.dilate, replace=True)
        elif inputs.mask_mode == "per-frame":
            holes = cleanup.enter_context(read_masks_to_store(inputs.mask, dilate=inputs.dilate, **mask_args))
            _add_boxes(holes, inputs.boxes, inputs.dilate)
        else:
            annotated = inputs.mask_frame + (inputs.start - start)
            holes, masks_written = _single_frame_masks(
                inputs, annotated, video, mask_args, config, device, output, cleanup
            )
            _add_boxes(holes, inputs.boxes, inputs.dilate)
        filled = cleanup.enter_context(
            FrameStore.create(video.store.shape, video.store.dtype, in_memory_limit=limit)
        )
        result = inpaint_stores(
            video.store, holes, filled, config, device, checkpoint_dir, on_step, on_checkpoint,
            inputs.feather, initial_weights,
        )
        release_free_memory()
        master = write_master(
            filled, timing, output, kind, source=source, start=start,
            end=None if runs_to_file_end else end, original=video.store, holes=holes,
        )
        outputs = FileOutputs(
            video=master.path,
            contact_sheet=write_contact_sheet(video.store, filled, holes, contact_sheet_path(output)),
            predicted_masks=masks_written,
            difference=write_difference_image(video.store, filled, holes, qc_path(output, "diff.png")),
            preview=write_side_by_side_preview(video.store, filled, video.fps, qc_path(output, "preview.mp4")),
            thumbnail=write_thumbnail(filled[video.num_frames // 2], qc_path(output, "thumb.png")),
            audio_sidecar=master.audio_sidecar,
        )
        outputs.media = {
            "source": source.to_dict(),
            "range": {
                "requested_start": inputs.start, "requested_end": inputs.end,
                "handles": inputs.handles, "start": start, "end": end, "frames": video.num_frames,
            },
            "fps": str(video.fps),
            "mask": {
                "path": None if inputs.mask is None else str(inputs.mask),
                "mode": inputs.mask_mode,
                "boxes": format_boxes(inputs.boxes) or None,
                "dilate": inputs.dilate,
                "feather": inputs.feather,
                "threshold": inputs.mask_threshold,
            },
            "output": master.to_dict(),
        }
    outputs.media["input_digests"] = {
        "video": content_digest(inputs.video),
        "mask": None if inputs.mask is None else content_digest(inputs.mask),
    }
    outputs.media["output_digests"] = {
        path.name: content_digest(path)
        for path in (outputs.video, outputs.predicted_masks, outputs.audio_sidecar)
        if path is not None
    }
    return outputs, result


def _timing(video: StoredFrames) -> Timing:
    """The output's timing: constant rate, or each frame's own timestamp for a variable-rate
    source; with the first frame's time in the source, where a range's audio starts."""
    if not video.timestamps or video.time_base is None:
        return Timing(video.fps)
    first = Fraction(video.timestamps[0]) * video.time_base
    if is_variable_rate(video.timestamps, video.time_base, video.fps):
        return Timing(video.fps, video.timestamps, video.time_base, first_time=first)
    return Timing(video.fps, first_time=first)


def _add_boxes(holes: FrameStore, boxes: tuple[Box, ...], dilate: int, replace: bool = False) -> None:
    """Union the static boxes (grown by ``dilate`` like the mask) into every frame's hole."""
    if not boxes and not replace:
        return
    height, width = holes.shape[1:3]
    static = dilate_holes(box_mask(boxes, height, width)[None], dilate)[0][..., None] if boxes else None
    for index in range(holes.num_frames):
        if replace:
            holes.write(index, static if static is not None else np.zeros((height, width, 1), bool))
        elif static is not None:
            holes.write(index, holes.frame(index) | static)


def _single_frame_masks(
    inputs: ShotInputs,
    annotated: int,
    video: StoredFrames,
    mask_args: dict,
    config: MethodConfig,
    device: torch.device,
    output: Path,
    cleanup: ExitStack,
) -> tuple[FrameStore, Path]:
    """Predict every frame's mask from the annotated one; save them beside the output."""
    if annotated >= video.num_frames:
        raise MediaError(
            f"mask_frame {inputs.mask_frame} is outside the {video.num_frames} frames of "
            f"'{inputs.video}' (counted from the range's first frame)"
        )
    # The annotation is read with the video's checks (size, and frame count for a video/folder).
    with read_masks_to_store(inputs.mask, dilate=0, **mask_args) as given:
        annotation = given.frame(annotated)[..., 0].astype(bool)
    if not annotation.any():
        raise MediaError(
            f"mask '{inputs.mask}' is empty at the annotated frame {inputs.mask_frame}: "
            "nothing to propagate"
        )
    limit = mask_args["in_memory_limit"]
    holes = cleanup.enter_context(
        FrameStore.create((video.num_frames, video.height, video.width, 1), bool, in_memory_limit=limit)
    )
    propagate_masks(
        video.store, annotation, annotated, config.mask_propagation, device, holes, inputs.dilate
    )
    visible = cleanup.enter_context(
        FrameStore.create((video.num_frames, video.height, video.width, 3), np.uint8, in_memory_limit=limit)
    )
    for index in range(video.num_frames):
        visible.write(index, np.repeat(holes.frame(index).astype(np.uint8) * 255, 3, axis=2))
    written = write_frames(visible, video.fps, predicted_masks_path(output), OutputKind.FFV1_MKV)
    return holes, written

"""Inference and composite: fill every frame's hole and change nothing else.

The network runs at the working size. Its result is taken back to the frame's own resolution by
resizing only the fill (bicubic), and the composite copies it into the hole pixels of the original
frame. Every pixel outside the hole is the input pixel, bit for bit, whatever the working size.

With a feather of ``f`` px (see ``feather``) the composite also mixes fill and frame over the
``f`` px around the hole, so the fill's texture fades into the film grain; the hole pixels are
still exactly the fill, and every pixel beyond the band is still the input pixel, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
from torch import nn

from archive_inpaint.inference.feather import blend_bounds, feather_alpha
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.methods.base import Method
from archive_inpaint.training.working_set import WorkingSet


def network_output_to_frames(
    output: torch.Tensor, valid_height: int, valid_width: int, dtype: np.dtype
) -> np.ndarray:
    """(N, 3, Hp, Wp) in [-1, 1] -> (N, h, w, 3) float32 in the frame's integer scale."""
    peak = float(np.iinfo(dtype).max)
    cropped = output[:, :, :valid_height, :valid_width].float().clamp(-1.0, 1.0)
    return ((cropped + 1.0) * (peak / 2.0)).permute(0, 2, 3, 1).cpu().numpy()


def composite(frame: np.ndarray, fill: np.ndarray, hole: np.ndarray, feather: int = 0) -> np.ndarray:
    """The frame with its hole pixels replaced by the rounded fill; other pixels untouched.

    With ``feather`` > 0 the pixels around the hole where ``feather_alpha`` > 0 become
    round(alpha * fill + (1 - alpha) * frame); ``fill`` must be meaningful there too."""
    peak = np.iinfo(frame.dtype).max
    result = frame.copy()
    bounds = blend_bounds(hole, feather) if feather != 0 else None  # (negative: ValueError)
    if bounds is not None:
        # Only the band around the hole is mixed; the hole itself is written below exactly as
        # without a feather (alpha is 1 there), so a feather never changes a hole pixel.
        alpha = feather_alpha(hole[bounds], feather)
        band = (alpha > 0) & ~hole[bounds]
        weight = alpha[band][:, None]
        mixed = weight * fill[bounds][band] + (1.0 - weight) * frame[bounds][band]
        result[bounds][band] = np.clip(np.rint(mixed), 0, peak).astype(frame.dtype)
    result[hole] = np.clip(np.rint(fill[hole]), 0, peak).astype(frame.dtype)
    return result


def composite_upsampled(
    frame: np.ndarray, fill: np.ndarray, hole: np.ndarray, feather: int = 0
) -> np.ndarray:
    """``composite`` with ``fill`` at a lower resolution: it is upsampled (bicubic) only over the
    bounding box of the pixels the composite changes (the hole, grown by ``feather``), with the
    pixel mapping of a whole-frame resize. At 4K a whole-frame float fill would cost 100 MB per
    frame for a hole that may cover a few thousand pixels."""
    height, width = hole.shape
    bounds = blend_bounds(hole, feather)
    if bounds is None:
        return frame.copy()
    rows, cols = bounds
    top, bottom, left, right = rows.start, rows.stop, cols.start, cols.stop
    scale_y, scale_x = fill.shape[0] / height, fill.shape[1] / width
    map_x = ((np.arange(left, right, dtype=np.float32) + 0.5) * scale_x - 0.5)[None, :].repeat(bottom - top, 0)
    map_y = ((np.arange(top, bottom, dtype=np.float32) + 0.5) * scale_y - 0.5)[:, None].repeat(right - left, 1)
    region = cv2.remap(fill, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    result = frame.copy()
    # The box holds every hole pixel, so the feather weights computed on it are the frame's own.
    result[bounds] = composite(frame[bounds], region, hole[bounds], feather)
    return result


# A trained method's image for some frames at the working size: (N, 3, Hp, Wp) in [-1, 1]
# (``Method.predict`` bound to its network and working set).
WorkingPredictor = Callable[[list[int]], torch.Tensor]


def method_predictor(method: Method, network: nn.Module, working_set: WorkingSet) -> WorkingPredictor:
    network.eval()
    return lambda frame_ids: method.predict(network, working_set, frame_ids)


def fill_shot(
    predict: WorkingPredictor,
    working_set: WorkingSet,
    frames: np.ndarray,
    holes: np.ndarray,
    batch_size: int = 4,
    feather: int = 0,
) -> np.ndarray:
    """frames (T, H, W, 3) uint8/uint16 and holes (T, H, W) bool -> filled frames, same shape/dtype.
    ``feather`` > 0 blends the fill into the ``feather`` px around each hole (see ``composite``)."""
    result = np.empty_like(frames)
    fill_shot_into(
        predict,
        working_set,
        FrameStore.from_array(frames),
        FrameStore.from_array(holes),
        FrameStore.from_array(result),
        batch_size,
        feather,
    )
    return result


def fill_shot_into(
    predict: WorkingPredictor,
    working_set: WorkingSet,
    frames: FrameStore,
    holes: FrameStore,
    output: FrameStore,
    batch_size: int = 4,
    feather: int = 0,
) -> None:
    """``fill_shot`` for frames held in stores: one batch of frames in memory at a time."""
    pending: list[int] = []

    def flush() -> None:
        with torch.no_grad():
            predicted = predict(pending)
        fills = network_output_to_frames(
            predicted, working_set.valid_height, working_set.valid_width, frames.dtype
        )
        for frame_id, fill in zip(pending, fills):
            hole = holes.frame(frame_id)[..., 0].astype(bool)
            frame = frames.frame(frame_id)
            if working_set.is_resampled:
                output.write(frame_id, composite_upsampled(frame, fill, hole, feather))
            else:
                output.write(frame_id, composite(frame, fill, hole, feather))
        pending.clear()

    for index in range(frames.num_frames):
        if holes.frame(index).any():
            pending.append(index)
            if len(pending) == batch_size:
                flush()
        else:
            output.write(index, frames.frame(index))
    if pending:
        flush()

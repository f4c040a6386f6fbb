"""Inference and composite: fill every frame's hole and change nothing else.

The network runs at the working size. Its result is taken back to the frame's own resolution by
resizing only the fill (bicubic), and the composite copies it into the hole pixels of the original
frame. Every pixel outside the hole is the input pixel, bit for bit, whatever the working size.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from archive_inpaint.models.iivi_net import IIVINet
from archive_inpaint.training.working_set import WorkingSet


def network_output_to_frames(
    output: torch.Tensor, valid_height: int, valid_width: int, dtype: np.dtype
) -> np.ndarray:
    """(N, 3, Hp, Wp) in [-1, 1] -> (N, h, w, 3) float32 in the frame's integer scale."""
    peak = float(np.iinfo(dtype).max)
    cropped = output[:, :, :valid_height, :valid_width].float().clamp(-1.0, 1.0)
    return ((cropped + 1.0) * (peak / 2.0)).permute(0, 2, 3, 1).cpu().numpy()


def composite(frame: np.ndarray, fill: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The frame with its hole pixels replaced by the rounded fill; other pixels untouched."""
    peak = np.iinfo(frame.dtype).max
    result = frame.copy()
    result[hole] = np.clip(np.rint(fill[hole]), 0, peak).astype(frame.dtype)
    return result


@torch.no_grad()
def predict_working_fills(
    network: IIVINet, working_set: WorkingSet, frame_ids: list[int], dtype: np.dtype
) -> np.ndarray:
    images = working_set.images[frame_ids].float().contiguous(memory_format=torch.channels_last)
    holes = working_set.holes[frame_ids].float().contiguous(memory_format=torch.channels_last)
    output = network(images, holes).final
    return network_output_to_frames(output, working_set.valid_height, working_set.valid_width, dtype)


def fill_shot(
    network: IIVINet,
    working_set: WorkingSet,
    frames: np.ndarray,
    holes: np.ndarray,
    batch_size: int = 4,
) -> np.ndarray:
    """frames (T, H, W, 3) uint8/uint16 and holes (T, H, W) bool -> filled frames, same shape/dtype."""
    network.eval()
    result = frames.copy()
    height, width = holes.shape[1:]
    to_fill = [index for index in range(len(frames)) if holes[index].any()]
    for begin in range(0, len(to_fill), batch_size):
        batch_ids = to_fill[begin : begin + batch_size]
        fills = predict_working_fills(network, working_set, batch_ids, frames.dtype)
        for frame_id, fill in zip(batch_ids, fills):
            if working_set.is_resampled:
                fill = cv2.resize(fill, (width, height), interpolation=cv2.INTER_CUBIC)
            result[frame_id] = composite(frames[frame_id], fill, holes[frame_id])
    return result

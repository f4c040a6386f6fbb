"""Difference image: proof at a glance that nothing outside the mask changed.

Inpainting must leave every unmasked pixel bit-identical.  Each tile shows
|after - before| (largest channel difference), amplified so a one-level change
is visible, with the mask outline on top: anything bright outside the red
outline is a pixel that should not have changed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archive_inpaint.media.frame_store import Frames
from archive_inpaint.media.pixels import to_uint8

from .contact_sheet import (
    assemble,
    check_inputs,
    draw_outline,
    frame_mask,
    labelled,
    pick_frames,
    scaled_mask,
    tile_size,
    write_png,
)


def write_difference_image(
    before: Frames,
    after: Frames,
    masks: Frames,
    path: str | Path,
    num_columns: int = 4,
    max_tile_width: int = 320,
    gain: int = 8,
) -> Path:
    """Write a PNG row of amplified difference tiles, for the contact sheet's frames.

    Differences are taken in the frames' own bit depth, multiplied by `gain`,
    clipped, then shown 8-bit; tiles are downscaled by taking the maximum, so
    a single changed pixel survives the scaling.
    """
    check_inputs(before, after, masks, num_columns, max_tile_width)
    if gain < 1:
        raise ValueError(f"gain must be at least 1, got {gain}")
    frame_hw = before.shape[1:3]
    size = tile_size(frame_hw, max_tile_width)
    tiles = []
    for i in pick_frames(before.shape[0], num_columns):
        diff = amplified_difference(before[i], after[i], gain)
        grey = _max_pool(to_uint8(diff), size)
        image = np.repeat(grey[..., None], 3, axis=2)
        hole = scaled_mask(frame_mask(masks, i, frame_hw), size)
        tiles.append(labelled(draw_outline(image, hole), f"diff #{i}"))
    write_png(assemble([tiles]), path, "difference image")
    return Path(path)


def changed_outside_mask(before: Frames, after: Frames, masks: Frames) -> int:
    """How many pixels (any channel) differ outside the mask, summed over all frames.

    Reads one frame at a time, so FrameStores of long shots stay on disk.
    """
    check_inputs(before, after, masks, 1, 1)
    frame_hw = before.shape[1:3]
    total = 0
    for i in range(before.shape[0]):
        changed = np.any(np.asarray(before[i]) != np.asarray(after[i]), axis=-1)
        total += int(np.count_nonzero(changed & ~frame_mask(masks, i, frame_hw)))
    return total


def amplified_difference(before: np.ndarray, after: np.ndarray, gain: int) -> np.ndarray:
    """max over channels of |after - before| * gain, clipped, in the frames' dtype."""
    before, after = np.asarray(before), np.asarray(after)
    if before.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 pixels, got {before.dtype}")
    # int32: the subtraction must not wrap around, and 65535 * gain must fit.
    diff = np.abs(after.astype(np.int32) - before.astype(np.int32)).max(axis=-1)
    peak = np.iinfo(before.dtype).max
    return np.minimum(diff * gain, peak).astype(before.dtype)


def _max_pool(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale (H, W) to `size` = (width, height), each output pixel the max of its block.

    Averaging (as the contact sheet does) would dilute a lone changed pixel
    into invisibility, which is exactly what this image must show.
    """
    height, width = image.shape
    out_w, out_h = size
    if (out_w, out_h) == (width, height):
        return image
    rows = (np.arange(out_h) * height) // out_h
    cols = (np.arange(out_w) * width) // out_w
    return np.maximum.reduceat(np.maximum.reduceat(image, rows, axis=0), cols, axis=1)

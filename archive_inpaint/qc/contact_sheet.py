"""Before/after contact sheet: a quick visual check of a shot's inpainting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from archive_inpaint.media.atomic import atomic_file
from archive_inpaint.media.errors import MediaError, quote
from archive_inpaint.media.frame_store import Frames
from archive_inpaint.media.pixels import to_uint8

OUTLINE_RGB = (255, 0, 0)  # red mask outline: stands out on most footage
BACKGROUND_RGB = (32, 32, 32)
TEXT_RGB = (255, 255, 255)
LABEL_HEIGHT = 18
GAP = 4
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45


def write_contact_sheet(
    before: Frames,
    after: Frames,
    masks: Frames,
    path: str | Path,
    num_columns: int = 4,
    max_tile_width: int = 320,
) -> Path:
    """Write a PNG: row 1 = frames before with mask outlines, row 2 = after.

    `num_columns` evenly spaced frames are shown (fewer for shorter shots),
    each scaled down to at most `max_tile_width` pixels wide.  Frames and
    masks may be arrays or FrameStores (only the shown frames are read);
    masks are (T, H, W) or, as read_masks_to_store gives them, (T, H, W, 1).
    """
    _check_inputs(before, after, masks, num_columns, max_tile_width)
    indices = pick_frames(before.shape[0], num_columns)
    height, width = before.shape[1:3]
    scale = min(1.0, max_tile_width / width)
    tile_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    top = [
        _tile(before[i], tile_size, f"before #{i}", np.reshape(masks[i], (height, width)))
        for i in indices
    ]
    bottom = [_tile(after[i], tile_size, f"after #{i}", None) for i in indices]
    sheet = _assemble([top, bottom])
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise MediaError(f"could not encode contact sheet {quote(path)}")
    target = Path(path)
    with atomic_file(target) as temp:
        with open(temp, "wb") as handle:
            handle.write(encoded.tobytes())
    return target


def pick_frames(num_frames: int, num_columns: int) -> list[int]:
    """`num_columns` evenly spaced indices from first to last frame, no repeats."""
    count = min(num_columns, num_frames)
    if count == 1:
        return [(num_frames - 1) // 2]
    # Integer rounding of k * (T - 1) / (count - 1): exact, and distinct
    # because the step is >= 1 whenever count <= T.
    last = num_frames - 1
    steps = count - 1
    return [(k * last + steps // 2) // steps for k in range(count)]


def _check_inputs(
    before: Frames, after: Frames, masks: Frames, num_columns: int, max_tile_width: int
) -> None:
    if before.ndim != 4 or before.shape[3] != 3 or before.shape[0] == 0:
        raise ValueError(f"before must have shape (T, H, W, 3) with T > 0, got {before.shape}")
    if after.shape != before.shape:
        raise ValueError(f"after has shape {after.shape} but before has {before.shape}")
    if tuple(masks.shape) not in (tuple(before.shape[:3]), (*before.shape[:3], 1)):
        raise ValueError(f"masks have shape {masks.shape}, expected {before.shape[:3]}")
    if num_columns < 1 or max_tile_width < 1:
        raise ValueError("num_columns and max_tile_width must be positive")


def _tile(
    frame: np.ndarray, size: tuple[int, int], label: str, hole: np.ndarray | None
) -> np.ndarray:
    """An 8-bit RGB tile with a label band on top and an optional mask outline."""
    # Contiguous copy first: OpenCV rejects views with negative strides, and
    # the outline is drawn in place, which must not touch the caller's frames.
    image = np.array(to_uint8(frame), order="C", copy=True)
    if (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if hole is not None:
        # Outline is traced on the downscaled mask so it stays a crisp 1 px
        # line; INTER_AREA + '> 0' keeps holes smaller than a tile pixel visible.
        small = cv2.resize(hole.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA)
        contours, _ = cv2.findContours(
            (small > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        cv2.drawContours(image, contours, -1, OUTLINE_RGB, thickness=1)
    band = np.full((LABEL_HEIGHT, size[0], 3), BACKGROUND_RGB, dtype=np.uint8)
    cv2.putText(band, label, (3, LABEL_HEIGHT - 5), FONT, FONT_SCALE, TEXT_RGB, 1, cv2.LINE_AA)
    return np.vstack([band, image])


def _assemble(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Lay tiles out in a grid separated by GAP-pixel background lines."""
    tile_h, tile_w = rows[0][0].shape[:2]
    columns = len(rows[0])
    sheet = np.full(
        (GAP + len(rows) * (tile_h + GAP), GAP + columns * (tile_w + GAP), 3),
        BACKGROUND_RGB,
        dtype=np.uint8,
    )
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            y = GAP + r * (tile_h + GAP)
            x = GAP + c * (tile_w + GAP)
            sheet[y : y + tile_h, x : x + tile_w] = tile
    return sheet

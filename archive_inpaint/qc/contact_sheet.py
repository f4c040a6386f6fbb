"""Before/after contact sheet: a quick visual check of a shot's inpainting.

The helpers below (tile sizing, mask scaling, outlines, labels, grid layout
and atomic PNG writing) are shared with the difference image, so both QC
images line up tile for tile and look alike.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from archive_inpaint.media.atomic import atomic_file
from archive_inpaint.media.errors import MediaError, quote
from archive_inpaint.media.frame_store import Frames
from archive_inpaint.media.pixels import to_uint8

OUTLINE_RGB = (255, 0, 0)  # red mask outline: stands out on most footage
# Magenta is rare in archive footage (and absent from greyscale film), so a
# tinted region cannot be mistaken for picture content.
TINT_RGB = (255, 0, 255)
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
    """Write a PNG with three rows of the same frames.

    Row 1 = before with mask outlines, row 2 = after, row 3 = after with the
    mask area tinted magenta, so the reviewer sees exactly what was replaced.
    `num_columns` evenly spaced frames are shown (fewer for shorter shots),
    each scaled down to at most `max_tile_width` pixels wide.  Frames and
    masks may be arrays or FrameStores (only the shown frames are read);
    masks are (T, H, W) or, as read_masks_to_store gives them, (T, H, W, 1).
    """
    check_inputs(before, after, masks, num_columns, max_tile_width)
    indices = pick_frames(before.shape[0], num_columns)
    size = tile_size(before.shape[1:3], max_tile_width)
    top, middle, bottom = [], [], []
    for i in indices:
        hole = scaled_mask(frame_mask(masks, i, before.shape[1:3]), size)
        after_image = fit_tile(after[i], size)
        top.append(labelled(draw_outline(fit_tile(before[i], size), hole), f"before #{i}"))
        middle.append(labelled(after_image, f"after #{i}"))
        bottom.append(labelled(tint(after_image, hole), f"mask #{i}"))
    write_png(assemble([top, middle, bottom]), path, "contact sheet")
    return Path(path)


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


def check_inputs(
    before: Frames, after: Frames, masks: Frames, num_columns: int, max_tile_width: int
) -> None:
    """Reject mismatched shapes before anything is written."""
    if before.ndim != 4 or before.shape[3] != 3 or before.shape[0] == 0:
        raise ValueError(f"before must have shape (T, H, W, 3) with T > 0, got {before.shape}")
    if after.shape != before.shape:
        raise ValueError(f"after has shape {after.shape} but before has {before.shape}")
    if tuple(masks.shape) not in (tuple(before.shape[:3]), (*before.shape[:3], 1)):
        raise ValueError(f"masks have shape {masks.shape}, expected {before.shape[:3]}")
    if num_columns < 1 or max_tile_width < 1:
        raise ValueError("num_columns and max_tile_width must be positive")


def tile_size(frame_hw: tuple[int, int], max_tile_width: int) -> tuple[int, int]:
    """(width, height) of a tile: the frame, scaled down only, to fit the width."""
    height, width = frame_hw
    scale = min(1.0, max_tile_width / width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def frame_mask(masks: Frames, index: int, frame_hw: tuple[int, int]) -> np.ndarray:
    """Frame `index`'s mask as (H, W) bool, whether masks carry a channel axis or not."""
    return np.reshape(masks[index], frame_hw).astype(bool, copy=False)


def scaled_mask(hole: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The (H, W) mask at tile `size`; a tile pixel is masked if any source pixel is.

    INTER_AREA + '> 0' keeps holes smaller than a tile pixel visible.
    """
    if (hole.shape[1], hole.shape[0]) == size:
        return hole.astype(bool, copy=False)
    small = cv2.resize(hole.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA)
    return small > 0


def fit_tile(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An 8-bit, contiguous, private copy of `frame` at tile `size`."""
    # Copy first: OpenCV rejects views with negative strides, and outlines
    # are drawn in place, which must not touch the caller's frames.
    image = np.array(to_uint8(np.asarray(frame)), order="C", copy=True)
    if (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def draw_outline(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Trace the tile-sized mask's outer border on `image` in place (1 px, crisp)."""
    contours, _ = cv2.findContours(
        hole.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    cv2.drawContours(image, contours, -1, OUTLINE_RGB, thickness=1)
    return image


def tint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A copy of `image` blended 50% toward TINT_RGB inside the mask only."""
    tinted = image.copy()
    colour = np.array(TINT_RGB, dtype=np.uint16)
    # Rounded mean in uint16: uint8 addition would wrap around.
    tinted[hole] = ((image[hole].astype(np.uint16) + colour + 1) // 2).astype(np.uint8)
    return tinted


def labelled(image: np.ndarray, label: str) -> np.ndarray:
    """`image` with a dark label band on top."""
    band = np.full((LABEL_HEIGHT, image.shape[1], 3), BACKGROUND_RGB, dtype=np.uint8)
    cv2.putText(band, label, (3, LABEL_HEIGHT - 5), FONT, FONT_SCALE, TEXT_RGB, 1, cv2.LINE_AA)
    return np.vstack([band, image])


def assemble(rows: list[list[np.ndarray]]) -> np.ndarray:
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


def write_png(image: np.ndarray, path: str | Path, what: str) -> None:
    """Encode an RGB image as PNG in memory, then write it atomically."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise MediaError(f"could not encode {what} {quote(path)}")
    with atomic_file(Path(path)) as temp:
        with open(temp, "wb") as handle:
            handle.write(encoded.tobytes())

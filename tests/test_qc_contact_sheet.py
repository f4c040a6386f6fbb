"""write_contact_sheet: layout, mask outline, downscaling, 16-bit input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from archive_inpaint.qc import write_contact_sheet
from archive_inpaint.qc.contact_sheet import GAP, LABEL_HEIGHT, pick_frames


def _read_rgb(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8
    return image[..., ::-1]


def _is_red(pixels: np.ndarray) -> np.ndarray:
    return (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)


@pytest.mark.parametrize(
    ("frames", "columns", "expected"),
    [
        (10, 4, [0, 3, 6, 9]),
        (3, 4, [0, 1, 2]),
        (4, 4, [0, 1, 2, 3]),
        (5, 4, [0, 1, 3, 4]),
        (1, 4, [0]),
        (9, 1, [4]),
    ],
)
def test_pick_frames_is_even_and_distinct(frames, columns, expected):
    assert pick_frames(frames, columns) == expected


def test_contact_sheet_layout_outline_and_rows(tmp_path):
    before = np.full((8, 24, 32, 3), 90, dtype=np.uint8)
    after = np.full((8, 24, 32, 3), 160, dtype=np.uint8)
    masks = np.zeros((8, 24, 32), dtype=bool)
    masks[:, 8:16, 10:20] = True

    out = write_contact_sheet(before, after, masks, tmp_path / "qc" / "sheet.png")

    sheet = _read_rgb(out)
    tile_h, tile_w = LABEL_HEIGHT + 24, 32
    assert sheet.shape == (GAP + 2 * (tile_h + GAP), GAP + 4 * (tile_w + GAP), 3)
    top = sheet[GAP + LABEL_HEIGHT : GAP + tile_h, GAP : GAP + tile_w]
    bottom_y = GAP + tile_h + GAP + LABEL_HEIGHT
    bottom = sheet[bottom_y : bottom_y + 24, GAP : GAP + tile_w]
    # Row 1: the before frame with a red rectangle outline around the hole.
    outline = _is_red(top)
    assert outline[8, 10:20].all() and outline[15, 10:20].all()
    assert outline[8:16, 10].all() and outline[8:16, 19].all()
    assert not outline[11:13, 12:18].any()  # outline only, the hole is not filled
    assert (top[~outline] == 90).all()
    # Row 2: the after frame, untouched.
    assert (bottom == 160).all()
    # The label bands contain drawn text.
    assert (sheet[GAP : GAP + LABEL_HEIGHT, GAP : GAP + tile_w] == 255).any()
    assert sorted(p.name for p in out.parent.iterdir()) == ["sheet.png"]


def test_contact_sheet_downscales_16bit_and_short_shots(tmp_path):
    before = np.full((2, 480, 1000, 3), 65535, dtype=np.uint16)
    after = np.zeros((2, 480, 1000, 3), dtype=np.uint16)
    masks = np.zeros((2, 480, 1000), dtype=bool)
    masks[:, 200:202, 500:502] = True  # smaller than one tile pixel after scaling

    out = write_contact_sheet(before, after, masks, tmp_path / "s.png", max_tile_width=250)

    sheet = _read_rgb(out)
    tile_h = LABEL_HEIGHT + 120  # 480 * 250 / 1000
    assert sheet.shape == (GAP + 2 * (tile_h + GAP), GAP + 2 * (250 + GAP), 3)
    top = sheet[GAP + LABEL_HEIGHT : GAP + tile_h, GAP : GAP + 250]
    assert _is_red(top).any()  # a tiny hole is still marked
    assert (top[~_is_red(top)] >= 250).all()  # 16-bit white shown as 8-bit white


def test_contact_sheet_rejects_mismatched_inputs(tmp_path):
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="masks"):
        write_contact_sheet(frames, frames, np.zeros((2, 8, 8), bool), tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []

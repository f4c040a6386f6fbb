"""write_contact_sheet: layout, mask outline, mask tint, downscaling, 16-bit input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from archive_inpaint.qc import write_contact_sheet
from archive_inpaint.qc.contact_sheet import GAP, LABEL_HEIGHT, TINT_RGB, pick_frames


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


def test_contact_sheet_layout_outline_tint_and_rows(tmp_path):
    before = np.full((8, 24, 32, 3), 90, dtype=np.uint8)
    after = np.full((8, 24, 32, 3), 160, dtype=np.uint8)
    masks = np.zeros((8, 24, 32), dtype=bool)
    masks[:, 8:16, 10:20] = True

    out = write_contact_sheet(before, after, masks, tmp_path / "qc" / "sheet.png")

    sheet = _read_rgb(out)
    tile_h, tile_w = LABEL_HEIGHT + 24, 32
    assert sheet.shape == (GAP + 3 * (tile_h + GAP), GAP + 4 * (tile_w + GAP), 3)

    def image(row: int, column: int = 0) -> np.ndarray:
        y = GAP + row * (tile_h + GAP) + LABEL_HEIGHT
        x = GAP + column * (tile_w + GAP)
        return sheet[y : y + 24, x : x + tile_w]

    top, middle, bottom = image(0), image(1), image(2)
    # Row 1: the before frame with a red rectangle outline around the hole.
    outline = _is_red(top)
    assert outline[8, 10:20].all() and outline[15, 10:20].all()
    assert outline[8:16, 10].all() and outline[8:16, 19].all()
    assert not outline[11:13, 12:18].any()  # outline only, the hole is not filled
    assert (top[~outline] == 90).all()
    # Row 2: the after frame, untouched.
    assert (middle == 160).all()
    # Row 3: the after frame, tinted halfway to magenta exactly inside the mask.
    tinted = (160 + np.array(TINT_RGB) + 1) // 2
    assert (bottom[masks[0]] == tinted).all()
    assert (bottom[~masks[0]] == 160).all()
    assert (image(2, 3)[masks[0]] == tinted).all()  # every column, not just the first
    # The label bands contain drawn text.
    for row in range(3):
        y = GAP + row * (tile_h + GAP)
        assert (sheet[y : y + LABEL_HEIGHT, GAP : GAP + tile_w] == 255).any()
    assert sorted(p.name for p in out.parent.iterdir()) == ["sheet.png"]


def test_contact_sheet_tint_follows_each_frames_mask(tmp_path):
    before = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    after = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    masks = np.zeros((3, 16, 16, 1), dtype=bool)  # FrameStore-style channel axis
    masks[0, 0:4, 0:4] = masks[1, 6:10, 6:10] = masks[2, 12:16, 12:16] = True

    sheet = _read_rgb(write_contact_sheet(before, after, masks, tmp_path / "s.png"))

    y = GAP + 2 * (LABEL_HEIGHT + 16 + GAP) + LABEL_HEIGHT
    for column in range(3):
        x = GAP + column * (16 + GAP)
        tinted = sheet[y : y + 16, x : x + 16].any(axis=-1)
        assert np.array_equal(tinted, masks[column, ..., 0])


def test_contact_sheet_downscales_16bit_and_short_shots(tmp_path):
    before = np.full((2, 480, 1000, 3), 65535, dtype=np.uint16)
    after = np.zeros((2, 480, 1000, 3), dtype=np.uint16)
    masks = np.zeros((2, 480, 1000), dtype=bool)
    masks[:, 200:202, 500:502] = True  # smaller than one tile pixel after scaling

    out = write_contact_sheet(before, after, masks, tmp_path / "s.png", max_tile_width=250)

    sheet = _read_rgb(out)
    tile_h = LABEL_HEIGHT + 120  # 480 * 250 / 1000
    assert sheet.shape == (GAP + 3 * (tile_h + GAP), GAP + 2 * (250 + GAP), 3)
    top = sheet[GAP + LABEL_HEIGHT : GAP + tile_h, GAP : GAP + 250]
    assert _is_red(top).any()  # a tiny hole is still marked
    assert (top[~_is_red(top)] >= 250).all()  # 16-bit white shown as 8-bit white
    bottom_y = GAP + 2 * (tile_h + GAP) + LABEL_HEIGHT
    bottom = sheet[bottom_y : bottom_y + 120, GAP : GAP + 250]
    tinted = bottom.any(axis=-1)  # the after frames are black; only the tint shows
    assert 1 <= tinted.sum() <= 4 and tinted[50, 125]  # the tiny hole, in its place


def test_contact_sheet_rejects_mismatched_inputs(tmp_path):
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="masks"):
        write_contact_sheet(frames, frames, np.zeros((2, 8, 8), bool), tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []

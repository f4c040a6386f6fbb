"""Difference image, changed_outside_mask and the side-by-side preview video."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from archive_inpaint.media.errors import MediaError
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.qc import changed_outside_mask, write_difference_image, write_side_by_side_preview
from archive_inpaint.qc.contact_sheet import GAP, LABEL_HEIGHT
from archive_inpaint.qc.preview import preview_size


from test_qc_contact_sheet import _is_red, _read_rgb


def _shot(dtype=np.uint8, frames=4, height=16, width=24):
    rng = np.random.default_rng(0)
    peak = np.iinfo(dtype).max
    before = rng.integers(0, peak // 2, (frames, height, width, 3), dtype=dtype)
    masks = np.zeros((frames, height, width), dtype=bool)
    masks[:, 4:10, 6:14] = True
    after = before.copy()
    after[masks] += peak // 4  # inpainting changed the hole only
    return before, after, masks


# ---------------------------------------------------------------- changed_outside_mask


def test_changed_outside_mask_counts_pixels_not_channels():
    before, after, masks = _shot()
    assert changed_outside_mask(before, after, masks) == 0
    after[1, 0, 0] += 1  # one channel of one pixel
    after[3, 15, 23, :] += 1  # all channels of one pixel
    after[2, 5, 7] += 9  # inside the hole: allowed
    assert changed_outside_mask(before, after, masks) == 2


def test_changed_outside_mask_reads_stores_and_16bit():
    before, after, masks = _shot(np.uint16)
    after[0, 0, 0, 2] += 1  # one 16-bit level: invisible at 8 bits, still a change
    stores = [FrameStore.from_array(a) for a in (before, after, masks)]  # masks (T, H, W, 1)
    assert changed_outside_mask(*stores) == 1


def test_changed_outside_mask_rejects_mismatched_shapes():
    before, after, masks = _shot()
    with pytest.raises(ValueError, match="masks"):
        changed_outside_mask(before, after, masks[:2])


# ---------------------------------------------------------------- difference image


def _tiles(sheet: np.ndarray, height: int, width: int, count: int) -> list[np.ndarray]:
    y = GAP + LABEL_HEIGHT
    return [sheet[y : y + height, GAP + c * (width + GAP) :][:, :width] for c in range(count)]


def test_difference_image_shows_amplified_changes_and_outline(tmp_path):
    before = np.full((4, 16, 24, 3), 100, dtype=np.uint8)
    after = before.copy()
    masks = np.zeros((4, 16, 24), dtype=bool)
    masks[:, 4:10, 6:14] = True
    after[:, 6, 9, 1] = 103  # inside the hole: 3 levels, one channel
    after[2, 14, 2] = 101  # outside the hole, frame 2 only: 1 level

    out = write_difference_image(before, after, masks, tmp_path / "qc" / "diff.png", gain=8)

    sheet = _read_rgb(out)
    assert sheet.shape == (GAP + LABEL_HEIGHT + 16 + GAP, GAP + 4 * (24 + GAP), 3)
    for index, tile in enumerate(_tiles(sheet, 16, 24, 4)):
        outline = _is_red(tile)
        assert outline[4, 6:14].all() and outline[9, 6:14].all()
        assert (tile[6, 9] == 24).all()  # 3 * gain 8, shown grey
        stray = tile[14, 2]
        assert (stray == (8 if index == 2 else 0)).all()
        others = ~outline
        others[6, 9] = others[14, 2] = False
        assert (tile[others] == 0).all()
    assert (sheet[GAP : GAP + LABEL_HEIGHT, GAP : GAP + 24] == 255).any()  # "diff #0"
    assert sorted(p.name for p in out.parent.iterdir()) == ["diff.png"]


def test_difference_image_16bit_clips_and_keeps_lone_pixels_when_downscaled(tmp_path):
    before = np.zeros((1, 64, 400, 3), dtype=np.uint16)
    after = before.copy()
    after[0, 10, 10, 0] = 256  # one 8-bit level at 16 bits; gain 8 -> level 8
    after[0, 40, 300] = 40000  # clips at white
    masks = np.zeros((1, 64, 400, 1), dtype=bool)

    out = write_difference_image(before, after, masks, tmp_path / "d.png", max_tile_width=100)

    tile = _tiles(_read_rgb(out), 16, 100, 1)[0]  # 400 x 64 scaled by 1/4
    grey = tile[..., 0]
    # Max-pooling: a lone pixel survives a 4x downscale at full strength.
    assert grey[2, 2] == 8 and grey[10, 75] == 255
    assert np.count_nonzero(grey) == 2


def test_difference_image_rejects_bad_gain(tmp_path):
    before, after, masks = _shot()
    with pytest.raises(ValueError, match="gain"):
        write_difference_image(before, after, masks, tmp_path / "d.png", gain=0)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- side-by-side preview


def _decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return rate, np.stack(frames)


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [(60, 90, (60, 40)), (41, 33, (32, 40)), (15, 21, (20, 14)), (1, 1, (2, 2))],
)
def test_preview_size_is_even_and_never_upscales(height, width, expected):
    assert preview_size((height, width), 40) == expected  # (width, height)


def test_side_by_side_preview_frames_size_rate_and_halves(tmp_path):
    frames, height, width = 6, 40, 50
    before = np.zeros((frames, height, width, 3), dtype=np.uint16)
    before[..., 2] = 50000  # blue-ish, 16-bit
    after = np.zeros((frames, height, width, 3), dtype=np.uint8)
    after[..., 1] = 200  # green
    fps = Fraction(30000, 1001)

    out = write_side_by_side_preview(
        FrameStore.from_array(before), after, fps, tmp_path / "p" / "preview.mp4",
        max_height=20, max_frames=4,
    )

    rate, video = _decode(out)
    assert rate == fps
    assert video.shape == (4, 20, 2 * 24, 3)  # 50 * 20 / 40 = 25 -> even 24
    left = video[:, 2:-2, 2:22].reshape(-1, 3).mean(axis=0)
    right = video[:, 2:-2, 26:46].reshape(-1, 3).mean(axis=0)
    assert np.allclose(left, [0, 0, 195], atol=12)  # 50000 / 65535 * 255
    assert np.allclose(right, [0, 200, 0], atol=12)
    assert sorted(p.name for p in out.parent.iterdir()) == ["preview.mp4"]


def test_side_by_side_preview_rejects_float_rate_and_reports_bad_path(tmp_path):
    frames = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match="Fraction"):
        write_side_by_side_preview(frames, frames, 25.0, tmp_path / "p.mp4")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(MediaError, match="dir.mp4"):
        write_side_by_side_preview(frames, frames, Fraction(25), tmp_path / "dir.mp4")

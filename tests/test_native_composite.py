"""The native composite converts the fill only around the touched pixels: the samples it takes
must be exactly those of a whole-frame conversion, in every pixel format a master is written in."""

from __future__ import annotations

import av
import numpy as np
import pytest

from archive_inpaint.media.native import (
    BT709,
    LIMITED_RANGE,
    composite_region,
    convert,
    plane_mask,
    plane_view,
    rgb_frame,
    touched_box,
)


def _whole_frame_composite(source, filled, touched, pix_fmt, matrix, colour_range) -> list[np.ndarray]:
    """The reference: the whole fill converted, its samples taken wherever every pixel a sample
    covers is touched."""
    base = convert(source, pix_fmt, matrix, colour_range)
    fill = convert(rgb_frame(filled), pix_fmt, matrix, colour_range)
    planes = []
    for index, plane in enumerate(base.planes):
        target, values = plane_view(base, index).copy(), plane_view(fill, index)
        mask = plane_mask(touched, plane.height, plane.width)
        mask = np.repeat(mask, target.shape[1] // plane.width, axis=1)
        target[mask] = values[mask]
        planes.append(target)
    return planes


def _blobs(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A few random rectangles and a stray pixel, one of them on the frame's edge."""
    touched = np.zeros((height, width), bool)
    touched[rng.integers(0, height), rng.integers(0, width)] = True
    top, left = rng.integers(0, height - 20), rng.integers(0, width - 30)
    touched[top : top + rng.integers(3, 20), left : left + rng.integers(3, 30)] = True
    touched[height - 7 :, rng.integers(0, width - 9) :][:, :9] = True  # on the bottom edge
    return touched


@pytest.mark.parametrize(
    ("pix_fmt", "deep"),
    [
        ("yuv420p", False), ("yuv422p10le", True), ("yuv444p16le", True), ("bgr0", False),
        ("gbrp10le", True), ("gbrp16le", True), ("rgb48le", True), ("yuv422p", False),
    ],
)
@pytest.mark.parametrize(("height", "width"), [(270, 481), (300, 320)])
def test_region_composite_equals_whole_frame_composite(pix_fmt, deep, height, width) -> None:
    if pix_fmt.startswith(("yuv420", "yuv422")) and width % 2:
        width += 1  # the masters' subsampled formats are written at even widths
    rng = np.random.default_rng(height + width)
    dtype, top_value = (np.uint16, 65535) if deep else (np.uint8, 255)
    # Noise: any difference in filter taps or dither phase between the two conversions shows.
    original = rng.integers(0, top_value, (height, width, 3), dtype=dtype)
    filled = rng.integers(0, top_value, (height, width, 3), dtype=dtype)
    source = convert(rgb_frame(original), pix_fmt, BT709, LIMITED_RANGE)
    for _ in range(3):
        touched = _blobs(rng, height, width)
        box = touched_box(touched)
        fill = filled[box[0] : box[1], box[2] : box[3]]
        made = composite_region(source, fill, touched, box, pix_fmt, BT709, LIMITED_RANGE)
        expected = _whole_frame_composite(source, filled, touched, pix_fmt, BT709, LIMITED_RANGE)
        for index, plane in enumerate(expected):
            np.testing.assert_array_equal(plane_view(made, index), plane, err_msg=f"plane {index}")
        # and the test is not vacuous: the fill did land
        assert any((plane_view(made, i) != plane_view(source, i)).any() for i in range(len(expected)))


def test_touched_box_is_aligned_and_covers_the_touched_pixels() -> None:
    touched = np.zeros((500, 700), bool)
    assert touched_box(touched) is None
    touched[200:210, 130:131] = True
    top, bottom, left, right = touched_box(touched)
    assert (top, left) == (128, 64) and bottom % 64 == 0 and right % 64 == 0
    assert top <= 200 - 32 and bottom >= 210 + 32 and left <= 130 - 32 and right >= 131 + 32
    touched[490:, 690:] = True  # the box stops at the frame's edge
    assert touched_box(touched)[1::2] == (500, 700)

"""Static box masks (burnt-in timestamps, logos): parsing, formatting, fit checks, rasterising."""

from __future__ import annotations

import numpy as np
import pytest

from archive_inpaint.media.boxes import Box, box_mask, check_boxes_fit, format_boxes, parse_box, parse_boxes
from archive_inpaint.media.errors import MediaError, quote


def test_parse_box_reads_four_integers_with_whitespace():
    assert parse_box("10,20,30,40") == Box(10, 20, 30, 40)
    assert parse_box("  0 , 5,\t7 ,1 ") == Box(0, 5, 7, 1)
    assert Box(1, 2, 3, 4).right == 4 and Box(1, 2, 3, 4).bottom == 6


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10,20,30", "expected 4 integers"),
        ("10,20,30,40,50", "expected 4 integers"),
        ("", "expected 4 integers"),
        ("10,20,3.5,40", "width '3.5' is not an integer"),
        ("a,20,30,40", "x 'a' is not an integer"),
        ("10,,30,40", "y '' is not an integer"),
        ("-1,20,30,40", "x and y must be >= 0"),
        ("10,20,0,40", "width and height must be > 0"),
        ("10,20,30,-4", "width and height must be > 0"),
    ],
)
def test_parse_box_rejects_bad_text_and_quotes_it(text, reason):
    with pytest.raises(ValueError, match=reason) as caught:
        parse_box(text)
    assert repr(text) in str(caught.value)  # the user sees exactly what they typed


def test_a_box_cannot_be_built_empty_or_negative():
    with pytest.raises(ValueError, match="width and height"):
        Box(0, 0, 0, 5)
    with pytest.raises(ValueError, match="x and y"):
        Box(-2, 0, 3, 5)


def test_parse_boxes_splits_on_semicolons_and_round_trips():
    boxes = parse_boxes("10,20,30,40; 0,0,5,6;")  # a trailing ';' is tolerated
    assert boxes == (Box(10, 20, 30, 40), Box(0, 0, 5, 6))
    text = format_boxes(boxes)
    assert text == "10,20,30,40;0,0,5,6"
    assert parse_boxes(text) == boxes
    assert parse_boxes(None) == () and parse_boxes("") == () and parse_boxes("  ") == ()
    assert format_boxes(()) == "" and parse_boxes(format_boxes(())) == ()
    with pytest.raises(ValueError, match="'1,2,3'"):
        parse_boxes("0,0,4,4;1,2,3")  # one bad box fails the whole list, naming that box


def test_boxes_inside_the_frame_pass_and_a_box_past_an_edge_names_the_file_and_box():
    label = f"video {quote('dash/cam 01.mkv')}"
    check_boxes_fit([Box(0, 0, 64, 36), Box(600, 340, 40, 20)], 360, 640, label)  # touches the corner
    with pytest.raises(MediaError) as caught:
        check_boxes_fit([Box(0, 0, 8, 8), Box(600, 20, 80, 16)], 360, 640, label)
    message = str(caught.value)
    assert "video 'dash/cam 01.mkv'" in message
    assert "600,20,80,16" in message and "640x360" in message
    assert "right edge" in message and "bottom" not in message
    # Partly outside is an error too: clipping would hide a box typed for another resolution.
    with pytest.raises(MediaError, match="bottom edge y\\+height=361"):
        check_boxes_fit([Box(0, 350, 4, 11)], 360, 640, label)


def test_box_mask_marks_exactly_the_boxes():
    mask = box_mask([Box(1, 2, 3, 2), Box(3, 3, 2, 2)], 6, 7)
    expected = np.zeros((6, 7), dtype=bool)
    expected[2:4, 1:4] = True
    expected[3:5, 3:5] = True
    assert mask.dtype == bool and mask.shape == (6, 7)
    assert np.array_equal(mask, expected)
    assert not box_mask((), 6, 7).any()
    assert box_mask([Box(0, 0, 7, 6)], 6, 7).all()
    with pytest.raises(MediaError, match="5,0,3,1"):
        box_mask([Box(5, 0, 3, 1)], 6, 7)  # never silently clipped

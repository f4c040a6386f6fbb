"""read_masks: mask videos, folders, single images, binarisation, dilation, mismatches."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from archive_inpaint.media import MediaError, read_masks

H, W = 24, 32


def _target(num_frames: int, **overrides):
    args = dict(
        num_frames=num_frames, height=H, width=W, fps=Fraction(25), video_path="v.mp4"
    )
    args.update(overrides)
    return args


def _square_masks(count: int) -> np.ndarray:
    """Frame i has a 255 block whose left edge moves with i (frames are distinguishable)."""
    masks = np.zeros((count, H, W), dtype=np.uint8)
    for i in range(count):
        masks[i, 4:8, i : i + 3] = 255
    return masks


def test_mask_video(tmp_path, make_gray_video):
    source = _square_masks(6)
    path = make_gray_video(tmp_path / "m.mkv", source)

    holes = read_masks(path, **_target(6))

    assert holes.dtype == np.bool_ and holes.shape == (6, H, W)
    np.testing.assert_array_equal(holes, source > 0)


def test_mask_video_range_uses_file_numbering(tmp_path, make_gray_video):
    source = _square_masks(8)
    path = make_gray_video(tmp_path / "m.mkv", source)

    holes = read_masks(path, **_target(3), start=2, end=5)
    np.testing.assert_array_equal(holes, source[2:5] > 0)

    tail = read_masks(path, **_target(5), start=3)  # end=None: to the end
    np.testing.assert_array_equal(tail, source[3:] > 0)


def test_colour_mask_video_decodes_as_gray(tmp_path, make_ffv1_video):
    frames = np.zeros((2, H, W, 3), dtype=np.uint8)
    frames[:, 1, 1] = (255, 0, 0)  # pure red still counts as a hole
    frames[:, 2, 2] = (1, 1, 1)
    path = make_ffv1_video(tmp_path / "m.mkv", frames)

    holes = read_masks(path, **_target(2))

    assert holes[:, 1, 1].all() and holes[:, 2, 2].all()
    assert holes.sum() == 4


def test_mask_folder(tmp_path, write_images):
    source = _square_masks(11)
    write_images(tmp_path / "masks", source, ".png")  # frame0..frame10: natural order

    holes = read_masks(tmp_path / "masks", **_target(11))

    np.testing.assert_array_equal(holes, source > 0)
    part = read_masks(tmp_path / "masks", **_target(2), start=9, end=11)
    np.testing.assert_array_equal(part, source[9:11] > 0)


def test_single_mask_image_applies_to_every_frame(tmp_path):
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[10:12, 20:25] = 200
    path = tmp_path / "m.png"
    assert cv2.imwrite(str(path), mask)

    holes = read_masks(path, **_target(5, fps=None), start=7, end=12)

    assert holes.shape == (5, H, W) and holes.dtype == np.bool_
    assert holes.flags.c_contiguous and holes.flags.writeable
    assert all((holes[i] == (mask > 0)).all() for i in range(5))
    holes[0, 0, 0] = True  # a real array: writing one frame leaves the others alone
    assert not holes[1, 0, 0]


def test_binarisation_value_one_is_a_hole_and_threshold_applies(tmp_path):
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[0, 0], mask[0, 1], mask[0, 2] = 1, 128, 129
    path = tmp_path / "m.png"
    assert cv2.imwrite(str(path), mask)

    default = read_masks(path, **_target(1))
    assert default[0, 0, :3].tolist() == [True, True, True]
    assert default.sum() == 3

    thresholded = read_masks(path, **_target(1), threshold=128)
    assert thresholded[0, 0, :3].tolist() == [False, False, True]


def test_colour_mask_image_any_channel_counts(tmp_path):
    bgr = np.zeros((H, W, 3), dtype=np.uint8)
    bgr[0, 0] = (0, 0, 50)  # only red
    bgr[0, 1] = (50, 0, 0)  # only blue
    bgr[0, 2] = (10, 10, 10)
    path = tmp_path / "m.png"
    assert cv2.imwrite(str(path), bgr)

    holes = read_masks(path, **_target(1), threshold=20)

    assert holes[0, 0, :3].tolist() == [True, True, False]


def test_16bit_mask_image(tmp_path):
    mask = np.zeros((H, W), dtype=np.uint16)
    mask[3, 3] = 1
    mask[4, 4] = 40000
    path = tmp_path / "m.png"
    assert cv2.imwrite(str(path), mask)

    assert read_masks(path, **_target(1)).sum() == 2
    assert read_masks(path, **_target(1), threshold=255).sum() == 1


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_dilation_grows_single_pixel_to_disc(tmp_path, radius):
    mask = np.zeros((H, W), dtype=np.uint8)
    cy, cx = 12, 16
    mask[cy, cx] = 255
    path = tmp_path / "m.png"
    assert cv2.imwrite(str(path), mask)

    holes = read_masks(path, **_target(2), dilate=radius)

    ys, xs = np.nonzero(holes[0])
    # Exactly 2N+1 wide and tall, centred on the seed pixel.
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (
        cy - radius, cy + radius, cx - radius, cx + radius
    )
    yy, xx = np.mgrid[:H, :W]
    distance = np.hypot(yy - cy, xx - cx)
    assert holes[0][distance <= radius].all()  # the whole disc is covered
    assert not holes[0][distance > radius + 1].any()  # and nothing beyond it
    if radius >= 2:
        assert not holes[0, cy - radius, cx - radius]  # round, not a square
    np.testing.assert_array_equal(holes[0], holes[1])


def test_dilation_of_mask_video_is_per_frame(tmp_path, make_gray_video):
    source = np.zeros((2, H, W), dtype=np.uint8)
    source[0, 5, 5] = 255
    source[1, 18, 25] = 255
    path = make_gray_video(tmp_path / "m.mkv", source)

    holes = read_masks(path, **_target(2), dilate=1)

    assert holes[0, 4:7, 4:7].sum() == 5 and holes[0].sum() == 5  # plus shape
    assert holes[1, 17:20, 24:27].sum() == 5 and holes[1].sum() == 5


# --- mismatches: every message names both the mask and the video -----------


def test_missing_mask_names_both(tmp_path):
    with pytest.raises(MediaError, match=r"file not found: '.*nomask\.mkv'.*'v\.mp4'"):
        read_masks(tmp_path / "nomask.mkv", **_target(3))


def test_mask_image_of_another_size(tmp_path):
    path = tmp_path / "m.png"
    assert cv2.imwrite(str(path), np.zeros((50, 100), np.uint8))
    with pytest.raises(MediaError, match=r"m\.png' is 100x50 but video 'v\.mp4' is 32x24"):
        read_masks(path, **_target(3))


def test_mask_video_of_another_size(tmp_path, make_gray_video):
    path = make_gray_video(tmp_path / "m.mkv", np.zeros((3, 20, 30), np.uint8))
    with pytest.raises(MediaError, match=r"m\.mkv' is 30x20 but video 'v\.mp4' is 32x24"):
        read_masks(path, **_target(3))


def test_mask_folder_image_of_another_size(tmp_path, write_images):
    write_images(tmp_path / "masks", np.zeros((3, H, W), np.uint8))
    assert cv2.imwrite(str(tmp_path / "masks" / "frame1.png"), np.zeros((H, W + 2), np.uint8))
    with pytest.raises(MediaError, match=r"frame1\.png.*34x24 but video 'v\.mp4' is 32x24"):
        read_masks(tmp_path / "masks", **_target(3))


def test_mask_video_with_fewer_frames(tmp_path, make_gray_video):
    path = make_gray_video(tmp_path / "m.mkv", np.zeros((10, H, W), np.uint8))
    with pytest.raises(
        MediaError,
        match=r"mask '.*m\.mkv' has 10 frames but video 'v\.mp4' has 12 \(range 0\.\.12\)",
    ):
        read_masks(path, **_target(12))


def test_mask_video_with_more_frames(tmp_path, make_gray_video):
    path = make_gray_video(tmp_path / "m.mkv", np.zeros((14, H, W), np.uint8))
    with pytest.raises(MediaError, match=r"m\.mkv' has 14 frames but video 'v\.mp4' has 12"):
        read_masks(path, **_target(12))


def test_mask_video_too_short_for_range(tmp_path, make_gray_video):
    path = make_gray_video(tmp_path / "m.mkv", np.zeros((6, H, W), np.uint8))
    with pytest.raises(MediaError, match=r"m\.mkv' has 6 frames but video 'v\.mp4' range 4\.\.8"):
        read_masks(path, **_target(4), start=4, end=8)


def test_mask_folder_frame_count_mismatch(tmp_path, write_images):
    write_images(tmp_path / "masks", np.zeros((4, H, W), np.uint8))
    with pytest.raises(MediaError, match=r"masks' has 4 frames but video 'v\.mp4' has 5"):
        read_masks(tmp_path / "masks", **_target(5))
    with pytest.raises(MediaError, match=r"masks' has 4 frames but video 'v\.mp4' has 3"):
        read_masks(tmp_path / "masks", **_target(3))


def test_mask_video_fps_mismatch(tmp_path, make_gray_video):
    path = make_gray_video(tmp_path / "m.mkv", np.zeros((3, H, W), np.uint8), Fraction(25))
    with pytest.raises(
        MediaError, match=r"m\.mkv' has fps 25 but video 'v\.mp4' has 30000/1001"
    ):
        read_masks(path, **_target(3, fps=Fraction(30000, 1001)))
    # fps=None skips the comparison (e.g. when the caller has no rate).
    assert read_masks(path, **_target(3, fps=None)).shape == (3, H, W)


def test_corrupt_mask_video_names_both(tmp_path, rng):
    path = tmp_path / "m.mkv"
    path.write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match=r"m\.mkv'.*'v\.mp4'.*not a readable video"):
        read_masks(path, **_target(3))


def test_num_frames_must_agree_with_range(tmp_path):
    path = tmp_path / "m.png"
    assert cv2.imwrite(str(path), np.zeros((H, W), np.uint8))
    with pytest.raises(ValueError, match="num_frames"):
        read_masks(path, **_target(3), start=0, end=5)


def test_unreadable_mask_image_names_both(tmp_path):
    path = tmp_path / "m.png"
    path.write_bytes(b"definitely not a png")
    message = r"m\.png' \(for video 'v\.mp4'\) is not a readable image"
    with pytest.raises(MediaError, match=message):
        read_masks(path, **_target(2))

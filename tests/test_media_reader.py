"""read_frames against real files: image folders, videos, ranges and bad input."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from archive_inpaint.media import FrameSequence, MediaError, read_frames


def test_png_folder_8bit_round_trip(tmp_path, rng, write_images):
    frames = rng.integers(0, 256, (12, 24, 32, 3), dtype=np.uint8)
    write_images(tmp_path / "shot", frames, ".png")

    seq = read_frames(tmp_path / "shot")

    assert isinstance(seq, FrameSequence)
    assert seq.frames.dtype == np.uint8 and seq.bit_depth == 8
    # 12 frames named frame0..frame11: natural order puts frame10 after frame9.
    np.testing.assert_array_equal(seq.frames, frames)
    assert (seq.num_frames, seq.height, seq.width) == (12, 24, 32)
    assert seq.fps == Fraction(24)
    assert seq.path == str(tmp_path / "shot")


def test_tiff_folder_16bit_round_trip_with_range_and_fps(tmp_path, rng, write_images):
    frames = rng.integers(0, 65536, (5, 24, 32, 3), dtype=np.uint16)
    write_images(tmp_path / "shot", frames, ".tif")

    seq = read_frames(tmp_path / "shot", start=1, end=4, fps=Fraction(30000, 1001))

    assert seq.frames.dtype == np.uint16 and seq.bit_depth == 16
    np.testing.assert_array_equal(seq.frames, frames[1:4])
    assert seq.fps == Fraction(30000, 1001)


def test_folder_ignores_other_files_and_expands_gray_and_drops_alpha(tmp_path):
    folder = tmp_path / "shot"
    folder.mkdir()
    gray = np.full((24, 32), 7, dtype=np.uint8)
    bgra = np.zeros((24, 32, 4), dtype=np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 10, 30, 99  # B=10, R=30, alpha=99
    assert cv2.imwrite(str(folder / "f1.png"), gray)
    assert cv2.imwrite(str(folder / "f2.png"), bgra)
    (folder / "notes.txt").write_text("not a frame")
    assert cv2.imwrite(str(folder / ".hidden.png"), gray)

    seq = read_frames(folder)

    assert seq.frames.shape == (2, 24, 32, 3)
    assert (seq.frames[0] == 7).all()
    assert tuple(seq.frames[1, 0, 0]) == (30, 0, 10)


def test_video_decode_count_fps_and_exact_pixels(tmp_path, ramp_frames, make_ffv1_video):
    path = make_ffv1_video(tmp_path / "v.mkv", ramp_frames(10), Fraction(30000, 1001))

    seq = read_frames(path)

    assert seq.num_frames == 10
    assert seq.fps == Fraction(30000, 1001)
    assert isinstance(seq.fps, Fraction)
    assert seq.bit_depth == 8
    np.testing.assert_array_equal(seq.frames, ramp_frames(10))


def test_h264_video_decode(tmp_path, ramp_frames, make_h264_video):
    path = make_h264_video(tmp_path / "v.mp4", ramp_frames(7) * 30, Fraction(24000, 1001))

    seq = read_frames(path, fps=Fraction(24000, 1001))

    assert (seq.num_frames, seq.height, seq.width) == (7, 24, 32)
    assert seq.fps == Fraction(24000, 1001)
    # Lossy, but flat grey frames survive within a couple of levels.
    means = seq.frames.reshape(7, -1).mean(axis=1)
    np.testing.assert_allclose(means, np.arange(7) * 30, atol=3)


def test_frame_range_selects_exact_frames(tmp_path, ramp_frames, make_ffv1_video):
    path = make_ffv1_video(tmp_path / "v.mkv", ramp_frames(10))

    seq = read_frames(path, start=3, end=7)

    assert seq.num_frames == 4
    assert [int(v) for v in seq.frames[:, 0, 0, 0]] == [3, 4, 5, 6]
    assert all((seq.frames[i] == 3 + i).all() for i in range(4))
    tail = read_frames(path, start=8)
    assert [int(v) for v in tail.frames[:, 5, 5, 1]] == [8, 9]


def test_10bit_video_decodes_to_uint16(tmp_path, make_10bit_video):
    frames = np.zeros((3, 24, 32, 3), dtype=np.uint16)
    frames[:, :, :16] = 65535
    path = make_10bit_video(tmp_path / "v10.mkv", frames)

    seq = read_frames(path)

    assert seq.bit_depth == 16 and seq.frames.dtype == np.uint16
    assert seq.frames[:, :, :12].min() > 60000  # white stays near full 16-bit scale
    assert seq.frames[:, :, 20:].max() < 2000


def test_fps_argument_must_match_video(tmp_path, ramp_frames, make_ffv1_video):
    path = make_ffv1_video(tmp_path / "v.mkv", ramp_frames(3), Fraction(25))
    with pytest.raises(MediaError, match=r"v\.mkv.*fps 25 .*30000/1001"):
        read_frames(path, fps=Fraction(30000, 1001))


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(MediaError, match=r"file not found: '.*nope\.mp4'"):
        read_frames(missing)


def test_corrupt_file_random_bytes(tmp_path, rng):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match=r"garbage\.mp4.*not a readable video"):
        read_frames(path)


def test_truncated_mp4(tmp_path, ramp_frames, make_h264_video):
    path = make_h264_video(tmp_path / "full.mp4", ramp_frames(10) * 20)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(MediaError, match=r"cut\.mp4"):
        read_frames(cut)


def test_truncated_mkv_is_detected(tmp_path, rng, make_ffv1_video):
    # An MKV cut short still opens and decodes the frames before the cut; the
    # reader must notice from the declared duration instead of returning less.
    frames = rng.integers(0, 256, (20, 24, 32, 3), dtype=np.uint8)
    path = make_ffv1_video(tmp_path / "full.mkv", frames)
    assert read_frames(path).num_frames == 20
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MediaError, match=r"cut\.mkv.*truncated"):
        read_frames(cut)
    # A range inside the surviving part is still readable.
    assert read_frames(cut, start=0, end=3).num_frames == 3


def test_empty_video_with_stream_but_no_frames(tmp_path):
    # AVI keeps a readable header with a video stream even with zero packets.
    path = tmp_path / "empty.avi"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "bgr0"
        container.start_encoding()
    with av.open(str(path)) as container:  # the fixture really is what we claim
        assert len(container.streams.video) == 1
    with pytest.raises(MediaError, match=r"empty\.avi.*contains no frames"):
        read_frames(path)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_empty_containers_of_other_formats(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        container.start_encoding()
    with pytest.raises(MediaError, match=rf"empty\{suffix}"):
        read_frames(path)


def test_empty_folder(tmp_path):
    (tmp_path / "shot").mkdir()
    with pytest.raises(MediaError, match=r"shot.*contains no frames"):
        read_frames(tmp_path / "shot")


@pytest.mark.parametrize(("start", "end"), [(10, None), (5, 11), (0, 20)])
def test_range_beyond_file(tmp_path, ramp_frames, make_ffv1_video, start, end):
    path = make_ffv1_video(tmp_path / "v.mkv", ramp_frames(10))
    with pytest.raises(MediaError, match=r"v\.mkv' has 10 frames"):
        read_frames(path, start=start, end=end)


@pytest.mark.parametrize(("start", "end"), [(-1, None), (4, 4), (5, 2)])
def test_invalid_range(tmp_path, ramp_frames, make_ffv1_video, start, end):
    path = make_ffv1_video(tmp_path / "v.mkv", ramp_frames(6))
    with pytest.raises(MediaError, match="invalid range"):
        read_frames(path, start=start, end=end)


def test_folder_with_mismatched_sizes_names_offender(tmp_path, write_images):
    folder = tmp_path / "shot"
    write_images(folder, np.zeros((3, 24, 32, 3), np.uint8), ".png")
    assert cv2.imwrite(str(folder / "frame3.png"), np.zeros((20, 32, 3), np.uint8))
    with pytest.raises(MediaError, match=r"frame3\.png.*32x20.*frame0\.png.*32x24"):
        read_frames(folder)


def test_folder_with_mixed_bit_depth_names_offender(tmp_path, write_images):
    folder = tmp_path / "shot"
    write_images(folder, np.zeros((2, 24, 32, 3), np.uint8), ".png")
    assert cv2.imwrite(str(folder / "frame2.png"), np.zeros((24, 32, 3), np.uint16))
    with pytest.raises(MediaError, match=r"frame2\.png.*16-bit.*8-bit"):
        read_frames(folder)


def test_unreadable_image_in_folder(tmp_path, write_images):
    folder = tmp_path / "shot"
    write_images(folder, np.zeros((2, 24, 32, 3), np.uint8), ".png")
    (folder / "frame2.png").write_bytes(b"not a png")
    with pytest.raises(MediaError, match=r"frame2\.png.*not a readable image"):
        read_frames(folder)


def test_float_fps_is_rejected(tmp_path, write_images):
    write_images(tmp_path / "shot", np.zeros((1, 24, 32, 3), np.uint8))
    with pytest.raises(TypeError, match="Fraction"):
        read_frames(tmp_path / "shot", fps=23.976)  # type: ignore[arg-type]


def test_frame_sequence_rejects_inconsistent_bit_depth():
    with pytest.raises(ValueError, match="bit_depth"):
        FrameSequence(np.zeros((1, 2, 2, 3), np.uint8), Fraction(24), "x", 16)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.mka"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        silence = np.zeros((1, 800), np.int16)
        frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(MediaError, match=r"tone\.mka.*no video stream"):
        read_frames(Path(path))


@pytest.mark.parametrize(("size", "expected"), [((1080, 1920), "AUTO"), ((1088, 2048), "SLICE")])
def test_frame_threading_only_up_to_1080p(tmp_path, size, expected):
    """Above 1080p each frame thread's own frames would make decoding memory grow with the core
    count times the frame size: only slice threading there, and frames still decode exactly."""
    from archive_inpaint.media.decode import open_video
    from archive_inpaint.media.encoders import encode_video

    height, width = size
    frames = np.zeros((2, height, width, 3), dtype=np.uint8)
    frames[1, ::7, ::5] = 200
    path = tmp_path / "big.mkv"
    encode_video(frames, Fraction(24), path, container_format="matroska", lossless=True)
    with open_video(path, "big.mkv") as (container, stream):
        assert stream.thread_type.name == expected
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    np.testing.assert_array_equal(np.stack(decoded), frames)

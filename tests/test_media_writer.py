"""write_frames: output kinds, bit-exact FFV1, exact fps, sequences, atomicity."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from archive_inpaint.media import (
    MediaError,
    OutputKind,
    output_kind_for,
    read_frames,
    write_frames,
)
from archive_inpaint.media.atomic import atomic_directory, atomic_file

RATES = [Fraction(24000, 1001), Fraction(30000, 1001), Fraction(25), Fraction(24)]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "tmp" in p.name)


@pytest.mark.parametrize(
    ("path", "explicit", "expected"),
    [
        ("out.mkv", None, OutputKind.FFV1_MKV),
        ("OUT.MKV", None, OutputKind.FFV1_MKV),
        ("out.mp4", None, OutputKind.H264),
        ("out.mov", None, OutputKind.H264),
        ("renders/shot_010", None, OutputKind.PNG_SEQUENCE),
        ("renders/shot_010", "tiff", OutputKind.TIFF_SEQUENCE),
        ("out.mkv", "h264", OutputKind.H264),
        ("out.mkv", OutputKind.FFV1_MKV, OutputKind.FFV1_MKV),
    ],
)
def test_output_kind_for(path, explicit, expected):
    assert output_kind_for(path, explicit) is expected


def test_output_kind_rejects_unknown_suffix_and_kind():
    with pytest.raises(MediaError, match=r"'out\.webm'.*\.webm"):
        output_kind_for("out.webm")
    with pytest.raises(MediaError, match="'prores'"):
        output_kind_for("out.mkv", "prores")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_ffv1_round_trip_is_bit_exact(tmp_path, rng, dtype):
    top = np.iinfo(dtype).max
    frames = rng.integers(0, top + 1, (4, 24, 32, 3), dtype=dtype)
    frames[0, 0, 0] = (0, top, 1)  # extremes survive too

    out = write_frames(frames, Fraction(25), tmp_path / "master.mkv")

    assert out == tmp_path / "master.mkv"
    seq = read_frames(out)
    assert seq.frames.dtype == dtype
    assert seq.bit_depth == (16 if dtype == np.uint16 else 8)
    np.testing.assert_array_equal(seq.frames, frames)


def test_ffv1_stream_settings(tmp_path, ramp_frames):
    out = write_frames(ramp_frames(2), Fraction(25), tmp_path / "m.mkv")
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "ffv1"
        assert stream.codec_context.pix_fmt in ("gbrp", "bgr0")  # lossless RGB either way


@pytest.mark.parametrize("fps", RATES, ids=str)
@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_fps_and_frame_count_survive(tmp_path, ramp_frames, fps, suffix):
    out = write_frames(ramp_frames(5), fps, tmp_path / f"out{suffix}")

    with av.open(str(out)) as container:  # what any FFmpeg-based tool sees
        stream = container.streams.video[0]
        assert stream.average_rate == fps
        assert sum(1 for _ in container.decode(stream)) == 5
    seq = read_frames(out)
    assert seq.fps == fps and seq.num_frames == 5


def test_5994_survives_mkv_via_exact_rate_tag(tmp_path, ramp_frames):
    # Matroska alone cannot represent 60000/1001: FFmpeg reads it back as
    # 19001/317.  The writer's rate tag restores the exact value.
    fps = Fraction(60000, 1001)
    out = write_frames(ramp_frames(3), fps, tmp_path / "out.mkv")
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate != fps
    assert read_frames(out).fps == fps


def test_5994_mkv_from_other_tools_is_snapped(tmp_path, ramp_frames, make_ffv1_video):
    # No rate tag here (fixture encoder): the reader snaps to the NTSC rate.
    path = make_ffv1_video(tmp_path / "other.mkv", ramp_frames(3), Fraction(60000, 1001))
    assert read_frames(path).fps == Fraction(60000, 1001)


@pytest.mark.parametrize(("height", "width"), [(23, 31), (24, 31), (1, 1)])
def test_h264_odd_size(tmp_path, height, width):
    frames = np.full((3, height, width, 3), 128, dtype=np.uint8)

    out = write_frames(frames, Fraction(24), tmp_path / "odd.mp4")

    seq = read_frames(out)
    assert (seq.num_frames, seq.height, seq.width) == (3, height, width)
    assert abs(int(seq.frames.mean()) - 128) <= 2


def test_h264_even_size_uses_420_and_scales_16bit(tmp_path):
    frames = np.full((2, 24, 32, 3), 65535, dtype=np.uint16)
    frames[:, :, :16] = 0
    out = write_frames(frames, Fraction(25), tmp_path / "preview.mov")
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    seq = read_frames(out)
    assert seq.bit_depth == 8
    assert seq.frames[:, :, 20:].min() >= 250 and seq.frames[:, :, :12].max() <= 5


def test_png_sequence_16bit_round_trip(tmp_path, rng):
    frames = rng.integers(0, 65536, (3, 24, 32, 3), dtype=np.uint16)

    out = write_frames(frames, Fraction(24), tmp_path / "renders" / "shot")

    assert out.is_dir()
    assert sorted(p.name for p in out.iterdir()) == [
        "frame_000000.png", "frame_000001.png", "frame_000002.png"
    ]
    stored = cv2.imread(str(out / "frame_000001.png"), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored[..., ::-1], frames[1])  # BGR on disk
    seq = read_frames(out)
    np.testing.assert_array_equal(seq.frames, frames)


def test_tiff_sequence_8bit_round_trip(tmp_path, rng):
    frames = rng.integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    out = write_frames(frames, Fraction(24), tmp_path / "tiffs", OutputKind.TIFF_SEQUENCE)
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.tiff", "frame_000001.tiff"]
    np.testing.assert_array_equal(read_frames(out).frames, frames)


def test_rewriting_a_sequence_replaces_old_frames(tmp_path, ramp_frames):
    target = tmp_path / "shot"
    write_frames(ramp_frames(5), Fraction(24), target)
    write_frames(ramp_frames(2), Fraction(24), target)
    assert len(list(target.iterdir())) == 2  # no stale frames from the longer render
    assert _leftovers(tmp_path) == []


def test_video_write_leaves_no_temp_and_creates_parents(tmp_path, ramp_frames):
    target = tmp_path / "a" / "b" / "out.mkv"
    write_frames(ramp_frames(2), Fraction(25), target)
    write_frames(ramp_frames(3), Fraction(25), target)  # overwrite in place
    assert read_frames(target).num_frames == 3
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.mkv"]


def test_failed_encode_leaves_nothing(tmp_path):
    # libx264 refuses frames wider than 16384 pixels: a real encoder failure
    # raised after the temporary output file has been created.
    frames = np.zeros((1, 2, 16386, 3), dtype=np.uint8)
    target = tmp_path / "out.mp4"
    with pytest.raises(MediaError, match=r"out\.mp4"):
        write_frames(frames, Fraction(25), target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_keeps_previous_output(tmp_path, ramp_frames):
    target = tmp_path / "out.mp4"
    write_frames(ramp_frames(4), Fraction(25), target)
    before = target.read_bytes()
    with pytest.raises(MediaError):
        write_frames(np.zeros((1, 2, 16386, 3), np.uint8), Fraction(25), target)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_incompatible_explicit_kind_fails_cleanly(tmp_path, ramp_frames):
    # The MOV muxer cannot hold FFV1; the error surfaces from PyAV mid-setup.
    with pytest.raises(MediaError, match=r"out\.mov.*ffv1"):
        write_frames(ramp_frames(2), Fraction(25), tmp_path / "out.mov", OutputKind.FFV1_MKV)
    assert list(tmp_path.iterdir()) == []


def test_sequence_target_occupied_by_a_file(tmp_path):
    (tmp_path / "shot").write_text("a file, not a directory")
    with pytest.raises(MediaError, match=r"'.*shot'.*file is in the way"):
        write_frames(np.zeros((1, 4, 4, 3), np.uint8), Fraction(24), tmp_path / "shot")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot"]


def test_failure_while_filling_a_directory_leaves_old_output(tmp_path, ramp_frames):
    target = tmp_path / "shot"
    write_frames(ramp_frames(3), Fraction(24), target)
    with pytest.raises(RuntimeError, match="encoder died"):
        with atomic_directory(target) as temp:
            # The work area is a hidden sibling, invisible to frame readers.
            assert temp.parent == tmp_path
            assert temp.name.startswith(".") and "tmp" in temp.name
            (temp / "frame_000000.png").write_bytes(b"half")
            raise RuntimeError("encoder died")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot"]
    assert read_frames(target).num_frames == 3


def test_temp_file_is_a_hidden_sibling(tmp_path):
    target = tmp_path / "out.mkv"
    with atomic_file(target) as temp:
        assert temp.parent == tmp_path
        assert temp.name.startswith(".") and "tmp" in temp.name
        assert temp.suffix == ".mkv"  # tools that sniff the extension still work
        temp.write_bytes(b"complete")
        assert not target.exists()  # nothing visible until the write finished
    assert target.read_bytes() == b"complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((0, 4, 4, 3), np.uint8),
        np.zeros((2, 4, 4), np.uint8),
        np.zeros((2, 4, 4, 4), np.uint8),
        np.zeros((2, 4, 4, 3), np.float32),
    ],
    ids=["no-frames", "no-channels", "rgba", "float"],
)
def test_invalid_frames_are_rejected(tmp_path, frames):
    with pytest.raises(MediaError, match=r"out\.mkv"):
        write_frames(frames, Fraction(25), tmp_path / "out.mkv")
    assert list(tmp_path.iterdir()) == []


def test_float_fps_is_rejected(tmp_path, ramp_frames):
    with pytest.raises(TypeError):
        write_frames(ramp_frames(1), 29.97, tmp_path / "out.mkv")  # type: ignore[arg-type]


def test_non_contiguous_frames_are_written(tmp_path, rng):
    frames = rng.integers(0, 256, (3, 24, 32, 3), dtype=np.uint8)
    flipped = frames[::-1, :, ::-1]  # negative strides, as views from flips produce
    for target in (tmp_path / "seq", tmp_path / "v.mkv"):
        write_frames(flipped, Fraction(24), target)
        np.testing.assert_array_equal(read_frames(target).frames, flipped)


def test_h264_is_tagged_bt709_and_keeps_saturated_colours(tmp_path):
    frames = np.zeros((2, 24, 32, 3), dtype=np.uint8)
    frames[:, :, :16] = (200, 30, 30)
    frames[:, :, 16:] = (20, 40, 220)
    out = write_frames(frames, Fraction(25), tmp_path / "p.mp4")
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_primaries, frame.color_trc) == (1, 1, 1)
    seq = read_frames(out)
    # A matrix mix-up (BT.601 vs BT.709) shifts these by 10+ levels.
    assert np.abs(seq.frames[:, 4:20, 2:12].astype(int) - (200, 30, 30)).max() <= 4
    assert np.abs(seq.frames[:, 4:20, 20:30].astype(int) - (20, 40, 220)).max() <= 4


def test_exactly_stored_near_ntsc_rate_is_not_snapped(tmp_path, ramp_frames, make_h264_video):
    # MP4 stores 2997/125 exactly (500 ticks of 1/11988 s): it must stay as is,
    # even though it is within 1e-6 of 24000/1001.
    path = make_h264_video(tmp_path / "cam.mp4", ramp_frames(3), Fraction(2997, 125))
    assert read_frames(path).fps == Fraction(2997, 125)


@pytest.mark.parametrize("fps", [Fraction(2997, 125), Fraction(120000, 1001), Fraction(48)])
def test_unusual_rates_survive_our_mkv(tmp_path, ramp_frames, fps):
    out = write_frames(ramp_frames(2), fps, tmp_path / "out.mkv")
    assert read_frames(out).fps == fps

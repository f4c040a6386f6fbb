"""FrameStore and the store-based readers/writers: same pixels, same errors, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from archive_inpaint.media import (
    FrameStore,
    MediaError,
    StoredFrames,
    read_frames,
    read_frames_to_store,
    read_masks,
    read_masks_to_store,
    write_frames,
)
from archive_inpaint.qc import write_contact_sheet

H, W = 24, 32
ON_DISK = 0  # an in_memory_limit that sends every store to scratch disk
IN_MEMORY = 1 << 40

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=[IN_MEMORY, ON_DISK], ids=["memory", "disk"])
def limit(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def _scratch_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


# -- FrameStore ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.bool_])
def test_store_round_trip(tmp_path, rng, limit, dtype):
    channels = 1 if dtype is np.bool_ else 3
    frames = rng.integers(0, 2 if dtype is np.bool_ else 60000, (5, H, W, channels)).astype(dtype)
    store = FrameStore.create(frames.shape, dtype, scratch=tmp_path / "s", in_memory_limit=limit)
    for index, frame in enumerate(frames):
        store.write(index, frame)

    assert store.on_disk == (limit == ON_DISK)
    assert (store.shape, store.dtype, store.ndim, len(store)) == (frames.shape, dtype, 4, 5)
    np.testing.assert_array_equal(store.to_array(), frames)
    np.testing.assert_array_equal(np.stack(list(store)), frames)
    np.testing.assert_array_equal(store[-1], frames[-1])
    np.testing.assert_array_equal(store[np.int64(2)], frames[2])
    np.testing.assert_array_equal(store.rows(3, 5, 17), frames[3, 5:17])
    for top, left, height, width in [(0, 0, H, W), (3, 7, 10, 11), (H - 1, W - 1, 1, 1)]:
        np.testing.assert_array_equal(
            store.region(1, top, left, height, width),
            frames[1, top : top + height, left : left + width],
        )
    store.close()
    assert _scratch_files(tmp_path / "s") == []


def test_disk_store_file_is_removed_on_close_and_exit(tmp_path):
    with FrameStore.create((2, H, W, 3), np.uint8, scratch=tmp_path, in_memory_limit=0) as store:
        assert store.on_disk and store.path is not None and store.path.parent == tmp_path
        assert store.path.stat().st_size == 2 * H * W * 3
    assert _scratch_files(tmp_path) == []
    store.close()  # closing twice is harmless


@pytest.mark.parametrize(
    ("top", "left", "height", "width"),
    [(-1, 0, 2, 2), (0, -1, 2, 2), (H - 1, 0, 2, 1), (0, W - 3, 1, 4), (0, 0, H + 1, W)],
)
def test_region_outside_the_frame_raises(tmp_path, limit, top, left, height, width):
    with FrameStore.create((1, H, W, 3), np.uint8, scratch=tmp_path, in_memory_limit=limit) as s:
        with pytest.raises(IndexError, match="outside"):
            s.region(0, top, left, height, width)


def test_bad_frame_indices_raise(tmp_path, limit):
    with FrameStore.create((2, H, W, 3), np.uint8, scratch=tmp_path, in_memory_limit=limit) as s:
        for index in (2, -3):
            with pytest.raises(IndexError):
                s[index]
            with pytest.raises(IndexError):
                s.write(index, np.zeros((H, W, 3), np.uint8))
        with pytest.raises(TypeError):
            s[0:1]  # type: ignore[index]
        if s.on_disk:  # a write past the end must not have grown the file
            assert s.path is not None and s.path.stat().st_size == 2 * H * W * 3


def test_resize_keeps_frames(tmp_path, rng, limit):
    frames = rng.integers(0, 256, (4, H, W, 3), dtype=np.uint8)
    with FrameStore.create((2, H, W, 3), np.uint8, scratch=tmp_path, in_memory_limit=limit) as s:
        s.write(0, frames[0])
        s.write(1, frames[1])
        s.resize(4)
        np.testing.assert_array_equal(s[2], 0)  # new frames read as zeros
        s.write(2, frames[2])
        s.write(3, frames[3])
        np.testing.assert_array_equal(s.to_array(), frames)
        s.resize(3)
        assert s.shape == (3, H, W, 3)
        np.testing.assert_array_equal(s.to_array(), frames[:3])
        if s.on_disk:
            assert s.path is not None and s.path.stat().st_size == 3 * H * W * 3


def test_from_array_wraps_without_copying():
    holes = np.zeros((3, H, W), bool)
    store = FrameStore.from_array(holes)
    assert store.shape == (3, H, W, 1) and not store.on_disk
    store.write(1, np.ones((H, W, 1), bool))
    assert holes[1].all() and not holes[0].any()


# -- read_frames_to_store -----------------------------------------------------------------------


def _assert_same(stored: StoredFrames, expected, on_disk: bool) -> None:
    assert stored.store.on_disk == on_disk
    assert (stored.fps, stored.bit_depth, stored.path) == (
        expected.fps, expected.bit_depth, expected.path
    )
    assert (stored.num_frames, stored.height, stored.width) == expected.frames.shape[:3]
    assert stored.store.dtype == expected.frames.dtype
    np.testing.assert_array_equal(stored.store.to_array(), expected.frames)


@pytest.mark.parametrize(("start", "end"), [(0, None), (3, None), (2, 7)])
def test_ffv1_mkv_matches_read_frames(tmp_path, rng, limit, make_ffv1_video, start, end):
    frames = rng.integers(0, 256, (9, H, W, 3), dtype=np.uint8)
    path = make_ffv1_video(tmp_path / "v.mkv", frames, Fraction(24000, 1001))
    scratch = tmp_path / "scratch"

    with read_frames_to_store(path, start, end, scratch=scratch, in_memory_limit=limit) as stored:
        _assert_same(stored, read_frames(path, start, end), limit == ON_DISK)
        np.testing.assert_array_equal(stored.store.to_array(), frames[start:end])
        assert stored.fps == Fraction(24000, 1001)
    assert _scratch_files(scratch) == []


def test_h264_mp4_matches_read_frames(tmp_path, rng, limit, make_h264_video):
    frames = rng.integers(0, 256, (8, H, W, 3), dtype=np.uint8)
    path = make_h264_video(tmp_path / "v.mp4", frames)
    for start, end in [(0, None), (1, 6)]:
        with read_frames_to_store(path, start, end, Fraction(25), in_memory_limit=limit) as stored:
            _assert_same(stored, read_frames(path, start, end, Fraction(25)), limit == ON_DISK)


def test_10bit_video_matches_read_frames(tmp_path, rng, make_10bit_video):
    frames = rng.integers(0, 65536, (3, H, W, 3), dtype=np.uint16)
    path = make_10bit_video(tmp_path / "v.mkv", frames)
    with read_frames_to_store(path, in_memory_limit=ON_DISK) as stored:
        _assert_same(stored, read_frames(path), on_disk=True)
        assert stored.bit_depth == 16


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_folder_matches_read_frames(tmp_path, rng, limit, write_images, dtype):
    frames = rng.integers(0, np.iinfo(dtype).max + 1, (6, H, W, 3)).astype(dtype)
    write_images(tmp_path / "shot", frames, ".png")
    fps = Fraction(30000, 1001)
    with read_frames_to_store(tmp_path / "shot", 1, 5, fps, in_memory_limit=limit) as stored:
        _assert_same(stored, read_frames(tmp_path / "shot", 1, 5, fps), limit == ON_DISK)
        assert stored.bit_depth == (16 if dtype == np.uint16 else 8)
    with read_frames_to_store(tmp_path / "shot", in_memory_limit=limit) as stored:
        _assert_same(stored, read_frames(tmp_path / "shot"), limit == ON_DISK)
        assert stored.fps == Fraction(24)


def test_single_image_matches_read_frames(tmp_path, rng, limit, write_images):
    (file,) = write_images(tmp_path, rng.integers(0, 256, (1, H, W, 3), dtype=np.uint8))
    with read_frames_to_store(file, in_memory_limit=limit) as stored:
        _assert_same(stored, read_frames(file), limit == ON_DISK)


@pytest.mark.parametrize(
    "suffix",
    [".avi", ".nut", ".h264"],  # a frame count; a duration short by a frame; nothing at all
)
@pytest.mark.parametrize("frame_limit", [None, 0, 3], ids=["memory", "disk", "grows-to-disk"])
def test_containers_with_wrong_or_missing_counts(
    tmp_path, ramp_frames, make_ffv1_video, make_h264_video, suffix, frame_limit
):
    # The store is sized from the container's declared count (or duration) and must grow or
    # shrink to the frames actually decoded; a store that outgrows its in-memory limit moves
    # to disk on the way.
    make = make_h264_video if suffix == ".h264" else make_ffv1_video
    path = make(tmp_path / f"v{suffix}", ramp_frames(20) * 10)
    limit = IN_MEMORY if frame_limit is None else frame_limit * H * W * 3
    scratch = tmp_path / "scratch"
    for start, end in [(0, None), (5, None), (19, None), (4, 9)]:
        expected = read_frames(path, start, end)
        stored = read_frames_to_store(path, start, end, scratch=scratch, in_memory_limit=limit)
        big = (expected.num_frames * H * W * 3) > limit
        _assert_same(stored, expected, on_disk=big)
        assert len(_scratch_files(scratch)) == int(big)  # no copy left behind when moving
        stored.close()
        assert _scratch_files(scratch) == []


def _empty_avi(path: Path) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        container.start_encoding()
    return path


def _frame_error_cases(tmp_path, rng, make_ffv1_video, write_images):
    video = make_ffv1_video(tmp_path / "v.mkv", rng.integers(0, 256, (10, H, W, 3), np.uint8))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    sizes = tmp_path / "sizes"
    write_images(sizes, np.zeros((3, H, W, 3), np.uint8))
    assert cv2.imwrite(str(sizes / "frame3.png"), np.zeros((H - 4, W, 3), np.uint8))
    depths = tmp_path / "depths"
    write_images(depths, np.zeros((2, H, W, 3), np.uint8))
    assert cv2.imwrite(str(depths / "frame2.png"), np.zeros((H, W, 3), np.uint16))
    (tmp_path / "empty").mkdir()
    return {
        "missing": (tmp_path / "nope.mkv", {}),
        "start-beyond": (video, {"start": 10}),
        "end-beyond": (video, {"start": 5, "end": 11}),
        "empty-range": (video, {"start": 4, "end": 4}),
        "negative-start": (video, {"start": -1}),
        "fps-mismatch": (video, {"fps": Fraction(30)}),
        "float-fps": (video, {"fps": 25.0}),
        "truncated": (cut, {}),
        "garbage": (garbage, {}),
        "no-frames": (_empty_avi(tmp_path / "empty.avi"), {}),
        "empty-folder": (tmp_path / "empty", {}),
        "folder-sizes": (sizes, {}),
        "folder-depths": (depths, {}),
        "folder-range": (sizes, {"start": 1, "end": 9}),
    }


def _same_error(read, stream, scratch: Path) -> str:
    with pytest.raises(Exception) as expected:
        read()
    with pytest.raises(Exception) as actual:
        stream()
    assert type(actual.value) is type(expected.value)
    assert str(actual.value) == str(expected.value)
    assert _scratch_files(scratch) == []  # a failed read leaves no scratch file
    return str(actual.value)


def test_errors_match_read_frames(tmp_path, rng, make_ffv1_video, write_images):
    scratch = tmp_path / "scratch"
    cases = _frame_error_cases(tmp_path, rng, make_ffv1_video, write_images)
    for name, (path, kwargs) in cases.items():
        message = _same_error(
            lambda: read_frames(path, **kwargs),
            lambda: read_frames_to_store(path, **kwargs, scratch=scratch, in_memory_limit=0),
            scratch,
        )
        assert name == "float-fps" or Path(path).name in message, name


def test_stored_frames_checks_bit_depth():
    with pytest.raises(ValueError, match="bit_depth"):
        StoredFrames(FrameStore.from_array(np.zeros((1, 2, 2, 3), np.uint8)), Fraction(24), "x", 16)


# -- read_masks_to_store ------------------------------------------------------------------------


def _gray_masks(rng: np.random.Generator, count: int) -> np.ndarray:
    """Sparse specks of varying grey (threshold and dilation both matter) on black."""
    values = rng.integers(0, 256, (count, H, W), dtype=np.uint8)
    return np.where(rng.random((count, H, W)) < 0.05, values, 0).astype(np.uint8)


def _mask_args(num_frames: int, **overrides):
    args = dict(num_frames=num_frames, height=H, width=W, fps=Fraction(25), video_path="v.mkv")
    args.update(overrides)
    return args


def _assert_masks_equal(store: FrameStore, expected: np.ndarray) -> None:
    assert store.shape == (*expected.shape, 1) and store.dtype == np.bool_
    np.testing.assert_array_equal(store.to_array()[..., 0], expected)


@pytest.mark.parametrize("source", ["video", "folder", "image"])
def test_masks_match_read_masks(tmp_path, rng, limit, make_gray_video, write_images, source):
    masks = _gray_masks(rng, 8)
    if source == "video":
        path = make_gray_video(tmp_path / "m.mkv", masks)
    elif source == "folder":
        path = tmp_path / "m"
        write_images(path, masks)
    else:
        (path,) = write_images(tmp_path / "one", masks[:1])
    scratch = tmp_path / "scratch"
    for args in [
        _mask_args(8),
        _mask_args(8, threshold=100, dilate=2),
        _mask_args(3, start=2, end=5, dilate=1),
        _mask_args(5, start=3, threshold=50),
    ]:
        expected = read_masks(path, **args)
        with read_masks_to_store(path, **args, scratch=scratch, in_memory_limit=limit) as store:
            assert store.on_disk == (limit == ON_DISK)
            _assert_masks_equal(store, expected)
    assert _scratch_files(scratch) == []


def test_mask_errors_match_read_masks(tmp_path, rng, make_gray_video, write_images):
    masks = _gray_masks(rng, 5)
    video = make_gray_video(tmp_path / "m.mkv", masks)
    wrong_size = make_gray_video(tmp_path / "small.mkv", np.zeros((5, H - 2, W), np.uint8))
    folder = tmp_path / "m"
    write_images(folder, masks)
    (image,) = write_images(tmp_path / "one", np.zeros((1, H, W + 2), np.uint8))
    scratch = tmp_path / "scratch"
    cases = [
        (video, _mask_args(6)),  # shorter than the video
        (video, _mask_args(4)),  # longer than the video
        (video, _mask_args(4, start=3, end=7)),
        (video, _mask_args(5, fps=Fraction(24))),
        (wrong_size, _mask_args(5)),
        (wrong_size, _mask_args(6)),  # count and size both wrong: the count is reported
        (folder, _mask_args(4)),
        (folder, _mask_args(5, height=H + 1)),
        (image, _mask_args(5)),
        (tmp_path / "nope", _mask_args(5)),
        (video, _mask_args(5, threshold=-1)),
        (video, _mask_args(2, start=0, end=3)),
    ]
    for path, args in cases:
        _same_error(
            lambda: read_masks(path, **args),
            lambda: read_masks_to_store(path, **args, scratch=scratch, in_memory_limit=0),
            scratch,
        )
    message = _same_error(
        lambda: read_masks(wrong_size, **_mask_args(6)),
        lambda: read_masks_to_store(wrong_size, **_mask_args(6), in_memory_limit=0),
        scratch,
    )
    assert "has 5 frames" in message


# -- writing and QC from a store ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_write_ffv1_from_disk_store_is_bit_exact(tmp_path, rng, dtype):
    frames = rng.integers(0, np.iinfo(dtype).max + 1, (5, H, W, 3)).astype(dtype)
    store = FrameStore.create(frames.shape, dtype, scratch=tmp_path / "s", in_memory_limit=0)
    for index, frame in enumerate(frames):
        store.write(index, frame)
    assert store.on_disk

    out = write_frames(store, Fraction(24000, 1001), tmp_path / "out.mkv")

    decoded = read_frames(out)
    assert decoded.fps == Fraction(24000, 1001) and decoded.frames.dtype == dtype
    np.testing.assert_array_equal(decoded.frames, store.to_array())
    store.close()


@pytest.mark.parametrize("target", ["seq", "v.mp4"])
def test_write_sequence_and_preview_from_store(tmp_path, rng, target):
    frames = rng.integers(0, 256, (3, H, W, 3), dtype=np.uint8)
    with FrameStore.create(frames.shape, np.uint8, scratch=tmp_path, in_memory_limit=0) as store:
        for index, frame in enumerate(frames):
            store.write(index, frame)
        out = write_frames(store, Fraction(25), tmp_path / target)
    decoded = read_frames(out)
    assert decoded.frames.shape == frames.shape
    if target == "seq":  # PNG is lossless
        np.testing.assert_array_equal(decoded.frames, frames)


def test_writer_rejects_invalid_store(tmp_path):
    store = FrameStore.from_array(np.zeros((2, H, W), np.uint8))  # one channel
    with pytest.raises(MediaError, match=r"out\.mkv.*\(T, H, W, 3\)"):
        write_frames(store, Fraction(25), tmp_path / "out.mkv")
    with pytest.raises(MediaError, match="numpy array or a FrameStore"):
        write_frames([np.zeros((H, W, 3), np.uint8)], Fraction(25), tmp_path / "out.mkv")


def test_contact_sheet_from_stores_equals_from_arrays(tmp_path, rng):
    before = rng.integers(0, 256, (6, H, W, 3), dtype=np.uint8)
    after = rng.integers(0, 256, (6, H, W, 3), dtype=np.uint8)
    holes = rng.random((6, H, W)) < 0.1

    def on_disk(frames: np.ndarray) -> FrameStore:
        shape = frames.shape if frames.ndim == 4 else (*frames.shape, 1)  # holes: (T, H, W, 1)
        store = FrameStore.create(shape, frames.dtype, scratch=tmp_path / "s", in_memory_limit=0)
        for index, frame in enumerate(frames):
            store.write(index, frame)
        return store

    from_arrays = write_contact_sheet(before, after, holes, tmp_path / "a.png", num_columns=3)
    from_stores = write_contact_sheet(
        on_disk(before), on_disk(after), on_disk(holes), tmp_path / "b.png", num_columns=3
    )
    assert from_arrays.read_bytes() == from_stores.read_bytes()
    with pytest.raises(ValueError, match="masks"):
        write_contact_sheet(before, after, on_disk(holes[:5]), tmp_path / "c.png")


# -- memory -------------------------------------------------------------------------------------

_MEASURE = """
import json, resource, sys
from pathlib import Path
from archive_inpaint.media import read_frames, read_frames_to_store

def peak():
    # VmHWM, not ru_maxrss: Linux carries a parent's maximum RSS over fork+exec into the child's
    # ru_maxrss, so inside a large pytest process every child would start "at" its parent's size.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

path, mode, scratch = sys.argv[1:4]
read_frames(path, end=1)  # libraries and the decoder warmed up: the baseline includes them
before = peak()
if mode == "store":
    stored = read_frames_to_store(path, scratch=Path(scratch), in_memory_limit=0)
    shape, on_disk, probe = stored.store.shape, stored.store.on_disk, int(stored.store[59][0, 0, 0])
    stored.close()
else:
    video = read_frames(path)
    shape, on_disk, probe = video.frames.shape, False, int(video.frames[59, 0, 0, 0])
print(json.dumps({"grown": peak() - before, "shape": shape, "on_disk": on_disk, "probe": probe}))
"""


def _synthetic_720p(path: Path, count: int) -> None:
    """A compressible moving gradient, encoded frame by frame (never all in memory)."""
    ys, xs = np.mgrid[0:720, 0:1280]
    base = np.stack([xs, ys, xs + ys], axis=2).astype(np.uint8)
    time_base = Fraction(1, 25)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "bgr0"
        stream.time_base = time_base
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(base + np.uint8(index), format="rgb24")
            frame.pts, frame.time_base = index, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _measure(path: Path, mode: str, scratch: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), mode, str(scratch)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_disk_store_keeps_peak_memory_below_the_shot_size(tmp_path):
    count = 60
    path = tmp_path / "big.mkv"
    _synthetic_720p(path, count)
    decoded_size = count * 720 * 1280 * 3  # 166 MB of uint8 RGB

    stored = _measure(path, "store", tmp_path / "scratch")
    in_memory = _measure(path, "array", tmp_path / "scratch")

    assert stored["shape"] == in_memory["shape"] == [count, 720, 1280, 3]
    assert stored["on_disk"] and stored["probe"] == in_memory["probe"] == count - 1
    assert stored["grown"] < 0.5 * decoded_size, stored
    assert in_memory["grown"] >= decoded_size, in_memory
    assert _scratch_files(tmp_path / "scratch") == []

"""Archive-grade media: every format in and out, bit depth, exact rate and count, audio copied
untouched, timecode and colour tags carried, VFR timing, mask controls, provenance hashes."""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from archive_inpaint.media import MediaError, read_frames
from archive_inpaint.media.boxes import Box
from archive_inpaint.media.dpx import with_industry_headers
from archive_inpaint.media.images import list_images
from archive_inpaint.media.kinds import OutputKind, default_output_kind, output_kind_for, output_suffix
from archive_inpaint.media.master import Timing, check_output, write_master
from archive_inpaint.media.native import plane_mask
from archive_inpaint.media.probe import probe_source
from archive_inpaint.pipeline import ShotInputs, inpaint_files
from engine_fixtures import CPU, tiny_config
from media_fixtures import (
    NTSC_FILM,
    audio_payloads,
    colour_tags,
    encode,
    native_planes,
    rgb16_frames,
    video_timestamps,
)

FRAMES = 6


def _holes(count: int = FRAMES, height: int = 32, width: int = 48) -> np.ndarray:
    holes = np.zeros((count, height, width), bool)
    for t in range(count):
        holes[t, 8:20, 10 + 2 * t : 26 + 2 * t] = True
    return holes


def _mask_folder(folder: Path, holes: np.ndarray) -> Path:
    folder.mkdir()
    for index, hole in enumerate(holes):
        cv2.imwrite(str(folder / f"m_{index:04d}.png"), hole.astype(np.uint8) * 255)
    return folder


def _run(video: Path, mask: Path | None, output: Path, **inputs) -> tuple:
    return inpaint_files(
        ShotInputs(video=video, mask=mask, **inputs), output, tiny_config(2), CPU, None, output.parent / "ck"
    )


def _assert_native_exact_outside(source: list, output: list, holes: np.ndarray, start: int = 0) -> None:
    """Every sample of every plane equal outside the touched region (chroma: samples covering
    any hole pixel may differ)."""
    assert len(output) == len(holes)
    for index, (out_planes, hole) in enumerate(zip(output, holes)):
        for plane_index, (a, b) in enumerate(zip(source[start + index], out_planes)):
            rows, samples = a.shape
            per_pixel = max(1, samples // _plane_width(hole, rows, samples))
            changed = a != b
            touched = plane_mask(hole, rows, samples // per_pixel) if plane_index else hole
            # a chroma sample is kept only if none of its pixels is in the hole: test the complement
            keep = ~_any_touched(hole, rows, samples // per_pixel)
            keep = np.repeat(keep, per_pixel, axis=1)
            assert not changed[keep].any(), f"frame {index} plane {plane_index}: {changed[keep].sum()} samples changed"
            del touched


def _plane_width(hole: np.ndarray, rows: int, samples: int) -> int:
    width = hole.shape[1]
    return width if samples % width == 0 and samples // width in (1, 3, 4) else samples


def _any_touched(hole: np.ndarray, rows: int, columns: int) -> np.ndarray:
    return ~plane_mask(~hole, rows, columns)


@pytest.fixture
def holes() -> np.ndarray:
    return _holes()


# ---- Inputs: every container and sequence format ---------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "container", "codec", "pix_fmt"),
    [
        (".mov", "mov", "prores_ks", "yuv422p10le"),
        (".mp4", "mp4", "libx264", "yuv420p"),
        (".mkv", "matroska", "ffv1", "yuv422p10le"),
        (".mxf", "mxf", "mpeg2video", "yuv422p"),
        (".avi", "avi", "ffv1", "yuv420p"),
    ],
)
def test_containers_keep_exact_rate_and_frame_count(tmp_path, suffix, container, codec, pix_fmt):
    video = encode(tmp_path / f"in{suffix}", rgb16_frames(FRAMES), codec=codec, pix_fmt=pix_fmt,
                   container=container)
    shot = read_frames(video)
    assert shot.num_frames == FRAMES and shot.fps == NTSC_FILM
    assert shot.bit_depth == (16 if "10" in pix_fmt else 8)
    # Same kind back where we write it; MPEG-2 comes back as the lossless master.
    expected = {"prores_ks": OutputKind.PRORES_422HQ, "libx264": OutputKind.H264}.get(codec, OutputKind.FFV1_MKV)
    source = probe_source(video)
    assert default_output_kind(source) is expected
    # ... and in the input's own container: MXF and AVI included.
    assert output_suffix(expected, source) == suffix


# ---- Fidelity through the whole pipeline -------------------------------------------------------


def test_10bit_ffv1_yuv_master_is_sample_exact_outside_the_mask(tmp_path, holes):
    video = encode(tmp_path / "master.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="yuv422p10le",
                   container="matroska", colour=(1, 1, 1, 1))
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "out.mkv")
    with av.open(str(outputs.video)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv422p10le"
    _assert_native_exact_outside(native_planes(video), native_planes(outputs.video), holes)
    # and the hole did change
    assert not np.array_equal(read_frames(outputs.video).frames[holes], read_frames(video).frames[holes])


def test_16bit_tiff_sequence_comes_back_as_16bit_tiff_exact_outside(tmp_path, holes):
    frames = rgb16_frames(FRAMES)
    folder = tmp_path / "scan"
    folder.mkdir()
    for index, pixels in enumerate(frames):
        cv2.imwrite(str(folder / f"scan_{index:05d}.tif"), pixels[..., ::-1])
    outputs, _ = _run(folder, _mask_folder(tmp_path / "m", holes), tmp_path / "restored")
    files = list_images(outputs.video)
    assert [f.suffix for f in files] == [".tiff"] * FRAMES
    result = read_frames(outputs.video)
    assert result.bit_depth == 16 and result.frames.dtype == np.uint16
    assert np.array_equal(result.frames[~holes], frames[~holes])


def test_10bit_dpx_sequence_comes_back_as_10bit_dpx_exact_outside(tmp_path, holes):
    folder = tmp_path / "dpx"
    folder.mkdir()
    for index, pixels in enumerate(rgb16_frames(FRAMES)):
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb48le").reformat(format="gbrp10le")
        encoder = av.codec.CodecContext.create("dpx", "w")
        encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "gbrp10le"
        encoder.time_base = Fraction(1, 24)
        (folder / f"reel1_{index:07d}.dpx").write_bytes(b"".join(bytes(p) for p in encoder.encode(frame)))
    outputs, _ = _run(folder, _mask_folder(tmp_path / "m", holes), tmp_path / "restored")
    files = list_images(outputs.video)
    assert [f.suffix for f in files] == [".dpx"] * FRAMES
    source = [native_planes(f)[0] for f in list_images(folder)]
    result = [native_planes(f)[0] for f in files]
    with av.open(str(files[0])) as container:
        assert next(container.decode(video=0)).format.name == "gbrp10le"
    _assert_native_exact_outside(source, result, holes)


def _dpx_timecodes(folder: Path) -> list[str | None]:
    """Each file's timecode as FFmpeg's DPX decoder reads it from the TV header."""
    codes = []
    for path in list_images(folder):
        with av.open(str(path)) as container:
            codes.append(next(container.decode(video=0)).metadata.get("timecode"))
    return codes


def test_dpx_scans_keep_each_frames_timecode(tmp_path, holes):
    """A scan's DPX files carry their timecodes (written into the TV header, which FFmpeg's own
    DPX encoder leaves out); a range starts at its first frame's, and a MOV's start timecode
    becomes the DPX files' timecodes. The image data is the same as without the header."""
    folder = tmp_path / "scan"
    folder.mkdir()
    encoder = av.codec.CodecContext.create("dpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 48, 32, "gbrp10le"
    encoder.time_base = Fraction(1, 24)
    plain = []
    for index, pixels in enumerate(rgb16_frames(FRAMES)):
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb48le").reformat(format="gbrp10le")
        data = b"".join(bytes(p) for p in encoder.encode(frame))
        plain.append(data)
        (folder / f"scan_{index:07d}.dpx").write_bytes(with_industry_headers(data, Fraction(24), f"01:00:00:{20 + index:02d}"))
    tagged = list_images(folder)[0].read_bytes()
    assert len(tagged) == struct.unpack_from("<I", tagged, 16)[0] == len(plain[0]) + 384
    assert struct.unpack_from("<I", tagged, 4)[0] == struct.unpack_from("<I", tagged, 808)[0] == 2048
    assert _dpx_timecodes(folder) == [f"01:00:00:{20 + i:02d}" for i in range(FRAMES)]
    assert probe_source(folder).timecode == "01:00:00:20"
    with av.open(str(list_images(folder)[0])) as container, av.open(io.BytesIO(plain[0]), format="dpx_pipe") as bare:
        assert np.array_equal(next(container.decode(video=0)).to_ndarray(format="rgb48le"),
                              next(bare.decode(video=0)).to_ndarray(format="rgb48le"))

    mask = _mask_folder(tmp_path / "m", holes)
    outputs, _ = _run(folder, mask, tmp_path / "restored", start=2, fps=Fraction(24))
    # 01:00:00:22 is frame 2's; at 24 fps the frames after it roll over to the next second.
    assert _dpx_timecodes(outputs.video) == ["01:00:00:22", "01:00:00:23", "01:00:01:00", "01:00:01:01"]
    source = [native_planes(f)[0] for f in list_images(folder)]
    _assert_native_exact_outside(source, [native_planes(f)[0] for f in list_images(outputs.video)], holes[2:], start=2)

    mov = encode(tmp_path / "reel.mov", rgb16_frames(FRAMES), codec="prores_ks", pix_fmt="yuv422p10le",
                 container="mov", fps=NTSC_FILM, options={"profile": "3"}, timecode="10:00:00:00")
    outputs, _ = inpaint_files(ShotInputs(video=mov, mask=mask), tmp_path / "frames", tiny_config(2), CPU, "dpx")
    assert _dpx_timecodes(outputs.video) == [f"10:00:00:{i:02d}" for i in range(FRAMES)]


def test_16bit_dpx_sequence_comes_back_as_16bit_dpx_exact_outside(tmp_path, holes):
    folder = tmp_path / "dpx16"
    folder.mkdir()
    frames = rgb16_frames(FRAMES)
    encoder = av.codec.CodecContext.create("dpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 48, 32, "rgb48le"
    encoder.time_base = Fraction(1, 24)
    for index, pixels in enumerate(frames):
        picture = av.VideoFrame.from_ndarray(pixels, format="rgb48le")
        picture.pts = index
        (folder / f"f_{index:04d}.dpx").write_bytes(b"".join(bytes(p) for p in encoder.encode(picture)))
    outputs, _ = _run(folder, _mask_folder(tmp_path / "m", holes), tmp_path / "restored")
    files = list_images(outputs.video)
    assert [f.suffix for f in files] == [".dpx"] * FRAMES
    with av.open(str(files[0])) as container:
        assert next(container.decode(video=0)).format.name.startswith("rgb48")
    result = read_frames(outputs.video)
    assert result.bit_depth == 16 and np.array_equal(result.frames[~holes], frames[~holes])
    assert not np.array_equal(result.frames[holes], frames[holes])


def test_prores_10bit_keeps_profile_depth_rate_timecode_colour_and_audio(tmp_path):
    video = encode(
        tmp_path / "shot.mov", rgb16_frames(10), codec="prores_ks", pix_fmt="yuv422p10le", container="mov",
        options={"profile": "3"}, audio="pcm_s16le", timecode="01:00:00:00", colour=(1, 1, 1, 1),
    )
    holes = _holes(10)
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "out.mov", start=3, end=9)
    info = probe_source(outputs.video)
    assert (info.codec, info.pix_fmt, info.profile) == ("prores", "yuv422p10le", "HQ")
    assert info.timecode == "01:00:00:03"  # moved by the range's first frame
    assert (info.colour.primaries, info.colour.transfer, info.colour.matrix, info.colour.range) == (1, 1, 1, 1)
    shot = read_frames(outputs.video)
    assert shot.num_frames == 6 and shot.fps == NTSC_FILM
    assert info.audio and info.audio[0].codec == "pcm_s16le"
    # The range's audio: the packets that start within frames 3..9's time span, untouched, each
    # at its original time relative to the pictures (a packet cannot be cut without re-encoding).
    begin, finish = Fraction(3003, 24000), Fraction(9009, 24000)
    with av.open(str(video)) as container:
        kept = [(p.pts * p.time_base, bytes(p)) for p in container.demux(container.streams.audio[0])
                if p.size and begin <= p.pts * p.time_base < finish]
    with av.open(str(outputs.video)) as container:
        copied = [(p.pts * p.time_base, bytes(p)) for p in container.demux(container.streams.audio[0]) if p.size]
    assert len(copied) == len(kept) >= 5
    assert [payload for _, payload in copied] == [payload for _, payload in kept]
    assert [moment for moment, _ in copied] == [moment - begin for moment, _ in kept]


def test_audio_packets_are_byte_identical(tmp_path, holes):
    video = encode(tmp_path / "a.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="yuv420p",
                   container="matroska", audio="pcm_s24le")
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "out.mkv")
    assert audio_payloads(outputs.video) == audio_payloads(video)
    assert outputs.media["output"]["audio_streams"] == 1


def test_sequence_output_keeps_the_audio_beside_it(tmp_path, holes):
    video = encode(tmp_path / "a.mov", rgb16_frames(FRAMES), codec="prores_ks", pix_fmt="yuv422p10le",
                   container="mov", audio="pcm_s16le")
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "frames", )
    assert outputs.audio_sidecar is not None
    assert audio_payloads(outputs.audio_sidecar) == audio_payloads(video)


def test_variable_frame_rate_keeps_each_timestamp(tmp_path, holes):
    stamps = [0, 40, 90, 120, 200, 230]  # ms: no constant rate
    video = encode(tmp_path / "vfr.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="yuv420p",
                   container="matroska", fps=Fraction(25), timestamps=stamps, time_base=Fraction(1, 1000))
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "out.mkv")
    assert outputs.media["output"]["variable_frame_rate"] is True
    assert video_timestamps(outputs.video)[0] == stamps


def test_constant_rate_is_not_mistaken_for_variable(tmp_path, holes):
    video = encode(tmp_path / "cfr.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="yuv420p",
                   container="matroska")
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "out.mkv")
    assert outputs.media["output"]["variable_frame_rate"] is False
    assert read_frames(outputs.video).fps == NTSC_FILM


# ---- Every output kind --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(OutputKind))
def test_every_output_kind_writes_a_readable_shot(tmp_path, kind):
    # 96x64: x265 is unstable on pictures smaller than its 64 px coding tree.
    holes = _holes(FRAMES, 64, 96)
    source_path = encode(tmp_path / "src.mkv", rgb16_frames(FRAMES, 64, 96), codec="ffv1", pix_fmt="yuv422p10le",
                         container="matroska", timecode="10:00:00:00", colour=(1, 1, 1, 1))
    source = probe_source(source_path)
    original = read_frames(source_path).frames
    filled = original.copy()
    filled[holes] = 12345
    suffix = {OutputKind.FFV1_MKV: ".mkv", OutputKind.H264: ".mp4", OutputKind.H265: ".mp4"}.get(kind, ".mov")
    target = tmp_path / ("out" if kind.value in ("png", "tiff", "dpx") else f"out{suffix}")
    report = write_master(filled, Timing(NTSC_FILM), target, kind, source=source, original=original, holes=holes)
    result = read_frames(target, fps=NTSC_FILM if target.is_dir() else None)
    assert result.num_frames == FRAMES
    # The source's own 10-bit 4:2:2 where the codec takes it; the kind's own format otherwise.
    assert report.pix_fmt == {
        OutputKind.FFV1_MKV: "yuv422p10le", OutputKind.PRORES_422HQ: "yuv422p10le",
        OutputKind.PRORES_4444: "yuv444p10le", OutputKind.H264: "yuv420p", OutputKind.H265: "yuv420p10le",
        OutputKind.PNG_SEQUENCE: "rgb48", OutputKind.TIFF_SEQUENCE: "rgb48", OutputKind.DPX_SEQUENCE: "gbrp10le",
    }[kind]
    assert report.changed_outside_holes == 0
    deep = kind is not OutputKind.H264
    assert result.bit_depth == (16 if deep else 8), report.pix_fmt
    if kind in (OutputKind.FFV1_MKV,):
        _assert_native_exact_outside(native_planes(source_path), native_planes(target), holes)
    if kind in (OutputKind.PNG_SEQUENCE, OutputKind.TIFF_SEQUENCE):
        assert np.array_equal(result.frames[~holes], original[~holes])
    if not target.is_dir():
        info = probe_source(target)
        assert info.timecode == "10:00:00:00" and info.colour.matrix == 1
        assert result.fps == NTSC_FILM


# ---- MXF and AVI out ----------------------------------------------------------------------------


def test_mxf_and_avi_output_kinds_follow_the_suffix_and_the_source(tmp_path):
    prores = probe_source(encode(tmp_path / "p.mxf", rgb16_frames(2), codec="prores_ks", pix_fmt="yuv422p10le",
                                 container="mxf", options={"profile": "3"}))
    h264 = probe_source(encode(tmp_path / "h.mov", rgb16_frames(2), codec="libx264", pix_fmt="yuv420p",
                               container="mov"))
    assert output_kind_for("out.mxf") is OutputKind.FFV1_MKV
    assert output_kind_for("out.avi") is OutputKind.FFV1_MKV
    assert output_kind_for("out.mxf", None, prores) is OutputKind.PRORES_422HQ  # ProRes stays ProRes
    assert output_kind_for("out.mxf", None, h264) is OutputKind.FFV1_MKV  # no H.264 in MXF: lossless
    assert output_kind_for("out.avi", None, prores) is OutputKind.FFV1_MKV
    assert output_kind_for("out.mxf", "prores-4444") is OutputKind.PRORES_4444
    with pytest.raises(MediaError, match=r"'out\.avi' as prores-422hq.*\.mov or \.mkv or \.mxf"):
        output_kind_for("out.avi", "prores-422hq")
    with pytest.raises(MediaError, match=r"'out\.webm'.*\.mxf \(FFV1 or ProRes\), \.avi \(FFV1\)"):
        output_kind_for("out.webm")
    # Batch outputs are named by output_suffix: a delivery codec made from an MKV master goes in
    # its usual container, an MXF or MOV source keeps its own.
    ffv1 = probe_source(encode(tmp_path / "m.mkv", rgb16_frames(2), codec="ffv1", pix_fmt="yuv422p10le",
                               container="matroska"))
    assert output_suffix(OutputKind.PRORES_422HQ, ffv1) == ".mov"
    assert output_suffix(OutputKind.H264, ffv1) == ".mp4"
    assert output_suffix(OutputKind.FFV1_MKV, ffv1) == ".mkv"
    assert output_suffix(OutputKind.PRORES_4444, prores) == ".mxf"
    assert output_suffix(OutputKind.H265, h264) == ".mov"


def test_mxf_ffv1_master_comes_back_as_mxf_exact_outside_with_timecode_and_audio(tmp_path):
    video = encode(tmp_path / "reel.mxf", rgb16_frames(10), codec="ffv1", pix_fmt="yuv422p10le", container="mxf",
                   timecode="01:00:00:00", audio="pcm_s24le", colour=(1, 1, 1, 1))
    holes = _holes(10)
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "out.mxf", start=2, end=8)
    info = probe_source(outputs.video)
    assert (info.container, info.codec, info.pix_fmt) == ("mxf", "ffv1", "yuv422p10le")
    assert info.timecode == "01:00:00:02"  # the source's, moved by the range's first frame
    shot = read_frames(outputs.video)
    assert shot.num_frames == 6 and shot.fps == NTSC_FILM
    _assert_native_exact_outside(native_planes(video), native_planes(outputs.video), holes[2:8], start=2)
    assert not np.array_equal(shot.frames[holes[2:8]], read_frames(video).frames[2:8][holes[2:8]])
    # MXF keeps PCM audio as one packet per frame: the range's six, byte for byte.
    assert info.audio and info.audio[0].codec == "pcm_s24le"
    assert audio_payloads(outputs.video) == audio_payloads(video)[2:8]


@pytest.mark.parametrize(
    ("pix_fmt", "profile", "kind", "name"),
    [("yuv422p10le", "3", OutputKind.PRORES_422HQ, "HQ"), ("yuv444p10le", "4", OutputKind.PRORES_4444, "4444")],
)
def test_prores_mxf_comes_back_as_prores_mxf_at_its_profile(tmp_path, holes, pix_fmt, profile, kind, name):
    video = encode(tmp_path / "mezz.mxf", rgb16_frames(FRAMES), codec="prores_ks", pix_fmt=pix_fmt,
                   container="mxf", options={"profile": profile}, timecode="10:00:00:00", colour=(1, 1, 1, 1))
    source = probe_source(video)
    assert default_output_kind(source) is kind and output_suffix(kind, source) == ".mxf"
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "out.mxf")
    info = probe_source(outputs.video)
    # (FFmpeg decodes 4444 as 12-bit whatever was encoded: compare with the source as decoded)
    assert (info.container, info.codec, info.pix_fmt, info.profile) == ("mxf", "prores", source.pix_fmt, name)
    assert outputs.media["output"]["pix_fmt"] == pix_fmt  # encoded at 10 bits, as the source was
    assert info.timecode == "10:00:00:00"
    shot = read_frames(outputs.video)
    assert shot.num_frames == FRAMES and shot.fps == NTSC_FILM and shot.bit_depth == 16


@pytest.mark.parametrize("pix_fmt", ["bgr0", "yuv420p"])
def test_avi_ffv1_comes_back_as_avi_exact_outside_the_mask(tmp_path, holes, pix_fmt):
    video = encode(tmp_path / "capture.avi", rgb16_frames(FRAMES), codec="ffv1", pix_fmt=pix_fmt, container="avi",
                   timecode="00:59:58:00", audio="pcm_s16le")
    source = probe_source(video)
    assert output_suffix(default_output_kind(source), source) == ".avi"
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "out.avi")
    info = probe_source(outputs.video)
    assert (info.container, info.codec, info.pix_fmt) == ("avi", "ffv1", pix_fmt)
    assert info.timecode == "00:59:58:00"  # in AVI's INFO list
    shot = read_frames(outputs.video)
    assert shot.num_frames == FRAMES and shot.fps == NTSC_FILM
    _assert_native_exact_outside(native_planes(video), native_planes(outputs.video), holes)
    assert audio_payloads(outputs.video) == audio_payloads(video)
    # AVI has no colour fields: the report says none were carried rather than claim any.
    assert outputs.media["output"]["colour"] == {"primaries": None, "transfer": None, "matrix": None, "range": None}


def test_avi_output_of_a_tagged_source_drops_the_tags_and_says_so(tmp_path, holes):
    video = encode(tmp_path / "hdr.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="yuv422p10le",
                   container="matroska", colour=(9, 16, 9, 2))
    original = read_frames(video).frames
    report = write_master(original, Timing(NTSC_FILM), tmp_path / "out.avi", OutputKind.FFV1_MKV,
                          source=probe_source(video), original=original, holes=holes)
    assert report.colour.to_dict() == {"primaries": None, "transfer": None, "matrix": None, "range": None}
    assert colour_tags(tmp_path / "out.avi")[0] == (2, 2, 2, 0)  # unspecified
    _assert_native_exact_outside(native_planes(video), native_planes(tmp_path / "out.avi"), holes)


@pytest.mark.parametrize(
    ("case", "source_args", "target", "reason"),
    [
        ("rate", {"fps": Fraction(15)}, "out.mxf", r"15 fps is not an MXF edit rate \(.*24000/1001"),
        ("ntsc-120", {"fps": Fraction(120000, 1001)}, "out.mxf", r"120000/1001 fps is not an MXF edit rate"),
        ("aac", {"audio": "aac"}, "out.mxf", r"audio \(aac, 48000 Hz\) cannot be copied into MXF.*pcm_s16le"),
        ("vfr", {"fps": Fraction(25), "timestamps": [0, 40, 90, 120, 200, 230], "time_base": Fraction(1, 1000)},
         "out.mxf", "variable frame rate and MXF holds one edit rate"),
        ("vfr", {"fps": Fraction(25), "timestamps": [0, 40, 90, 120, 200, 230], "time_base": Fraction(1, 1000)},
         "out.avi", "variable frame rate and AVI holds one constant rate"),
        ("srgb", {"colour": (1, 13, 1, 1)}, "out.mxf", r"no label for the source's colour transfer \(code 13\)"),
    ],
)
def test_what_mxf_or_avi_cannot_carry_is_refused_before_writing(tmp_path, holes, case, source_args, target, reason):
    video = encode(tmp_path / "src.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="yuv420p", container="matroska",
                   **source_args)
    source = probe_source(video)
    shot = read_frames(video)
    timing = Timing(shot.fps)
    if "timestamps" in source_args:
        timing = Timing(Fraction(25), tuple(source_args["timestamps"]), Fraction(1, 1000))
    pattern = rf"'.*{re.escape(target)}'.*{reason}.*\.mkv"
    with pytest.raises(MediaError, match=pattern):
        check_output(shot.frames, timing, tmp_path / target, OutputKind.FFV1_MKV, source)
    with pytest.raises(MediaError, match=pattern):
        write_master(shot.frames, timing, tmp_path / target, OutputKind.FFV1_MKV, source=source,
                     original=shot.frames, holes=holes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mkv"]  # not even a half file


def test_a_container_that_cannot_carry_the_shot_fails_before_training(tmp_path, holes):
    """The product path checks the output container right after decoding: an MXF at 15 fps is
    refused before a single training step (hours of GPU time on a real shot), with nothing written."""
    video = encode(tmp_path / "src.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="yuv420p",
                   container="matroska", fps=Fraction(15))
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), holes[0].astype(np.uint8) * 255)

    def trained(*_: object) -> None:
        raise AssertionError("a training step ran before the output was checked")

    with pytest.raises(MediaError, match=r"'.*out\.mxf'.*15.*\.mkv"):
        inpaint_files(ShotInputs(video=video, mask=mask), tmp_path / "out.mxf", tiny_config(100000), CPU,
                      checkpoint_dir=tmp_path / "ckpt", on_step=trained)
    assert not (tmp_path / "ckpt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "src.mkv"]


def test_prores_refuses_a_full_range_source(tmp_path, holes):
    video = encode(tmp_path / "full.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="yuv422p10le",
                   container="matroska", colour=(1, 1, 1, 2))
    shot = read_frames(video)
    for target in ("out.mov", "out.mxf", "out.mkv"):
        with pytest.raises(MediaError, match=rf"'.*{re.escape(target)}'.*ProRes cannot say the source is full range"):
            write_master(shot.frames, Timing(NTSC_FILM), tmp_path / target, OutputKind.PRORES_422HQ,
                         source=probe_source(video), original=shot.frames, holes=holes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.mkv"]


# ---- Colour tags other than the BT.709 default ----------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "container", "codec", "pix_fmt", "options", "colour"),
    [
        # BT.2020 primaries, PQ, BT.2020 non-constant matrix, full range: in FFV1 (MKV and MXF)
        (".mkv", "matroska", "ffv1", "yuv422p10le", None, (9, 16, 9, 2)),
        (".mxf", "mxf", "ffv1", "yuv444p10le", None, (9, 16, 9, 2)),
        # HLG; ProRes is always limited range (see test_prores_refuses_a_full_range_source)
        (".mov", "mov", "prores_ks", "yuv422p10le", {"profile": "3"}, (9, 18, 9, 1)),
        (".mxf", "mxf", "prores_ks", "yuv422p10le", {"profile": "3"}, (9, 16, 9, 1)),
        # SD: BT.601 (SMPTE 170M) in MKV, whose codes MXF would fold into equivalents
        (".mkv", "matroska", "ffv1", "yuv420p", None, (6, 6, 6, 1)),
    ],
)
def test_non_default_colour_tags_come_back_exactly(tmp_path, holes, suffix, container, codec, pix_fmt, options,
                                                   colour):
    video = encode(tmp_path / f"graded{suffix}", rgb16_frames(FRAMES), codec=codec, pix_fmt=pix_fmt,
                   container=container, options=options, colour=colour)
    assert colour_tags(video) == (colour, colour)  # the fixture did tag the source
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / f"out{suffix}")
    assert probe_source(outputs.video).codec == probe_source(video).codec  # same kind back
    stream_tags, frame_tags = colour_tags(outputs.video)
    assert stream_tags == colour and frame_tags == colour
    names = ("primaries", "transfer", "matrix", "range")
    assert outputs.media["output"]["colour"] == dict(zip(names, colour))
    if codec == "ffv1":  # full range stays full range: the untouched samples are the source's
        _assert_native_exact_outside(native_planes(video), native_planes(outputs.video), holes)


# ---- Mask controls ------------------------------------------------------------------------------


def test_boxes_alone_make_the_mask_and_nothing_else_changes(tmp_path):
    frames = rgb16_frames(FRAMES)
    video = encode(tmp_path / "dash.mkv", frames, codec="ffv1", pix_fmt="bgr0", container="matroska")
    outputs, _ = _run(video, None, tmp_path / "out.mkv", boxes=(Box(2, 3, 20, 6), Box(30, 24, 12, 5)))
    box = np.zeros((32, 48), bool)
    box[3:9, 2:22] = True
    box[24:29, 30:42] = True
    source, result = read_frames(video).frames, read_frames(outputs.video).frames
    changed = (source != result).any(axis=-1)
    assert not changed[:, ~box].any()
    assert changed[:, box].any()
    assert outputs.media["mask"]["boxes"] == "2,3,20,6;30,24,12,5"


def test_a_box_outside_the_frame_is_a_clear_error(tmp_path):
    video = encode(tmp_path / "dash.mkv", rgb16_frames(2), codec="ffv1", pix_fmt="bgr0", container="matroska")
    with pytest.raises(MediaError, match=r"40,20,20,20.*dash\.mkv"):
        _run(video, None, tmp_path / "out.mkv", boxes=(Box(40, 20, 20, 20),))


def test_feather_blends_a_band_and_leaves_the_rest_exact(tmp_path, holes):
    video = encode(tmp_path / "f.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="bgr0", container="matroska")
    outputs, _ = _run(video, _mask_folder(tmp_path / "m", holes), tmp_path / "out.mkv", feather=3)
    source, result = read_frames(video).frames, read_frames(outputs.video).frames
    changed = (source != result).any(axis=-1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    band = np.stack([cv2.dilate(h.astype(np.uint8), kernel) > 0 for h in holes])
    assert not changed[~band].any()
    assert changed[band & ~holes].any()  # the soft edge did blend outside the hole
    assert outputs.media["output"]["changed_outside_holes"] == int(changed[~holes].sum())


def test_handles_widen_the_range_and_clamp_at_the_end(tmp_path):
    video = encode(tmp_path / "h.mkv", rgb16_frames(10), codec="ffv1", pix_fmt="bgr0", container="matroska",
                   timecode="00:00:10:00", fps=Fraction(25))
    holes = _holes(10)
    mask = _mask_folder(tmp_path / "m", holes)
    outputs, result = _run(video, mask, tmp_path / "mid.mkv", start=4, end=6, handles=2)
    assert read_frames(outputs.video).num_frames == 6
    assert probe_source(outputs.video).timecode == "00:00:10:02"
    assert outputs.media["range"] == {"requested_start": 4, "requested_end": 6, "handles": 2,
                                      "start": 2, "end": 8, "frames": 6}
    outputs, _ = _run(video, mask, tmp_path / "tail.mkv", start=7, end=10, handles=2)
    assert outputs.media["range"]["start"] == 5 and outputs.media["range"]["end"] == 10


# ---- Provenance ---------------------------------------------------------------------------------


def test_cli_writes_provenance_with_content_hashes(tmp_path, holes):
    from typer.testing import CliRunner

    from archive_inpaint.cli import app

    video = encode(tmp_path / "p.mkv", rgb16_frames(FRAMES), codec="ffv1", pix_fmt="yuv422p10le",
                   container="matroska")
    mask = _mask_folder(tmp_path / "m", holes)
    output = tmp_path / "out.mkv"
    result = CliRunner().invoke(app, ["inpaint", str(video), "-m", str(mask), "-o", str(output),
                                      "--iterations", "2", "--width", "4", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out.provenance.json").read_text())
    media = record["media"]
    assert media["input_digests"]["video"]["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
    assert media["output_digests"]["out.mkv"]["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
    assert len(media["input_digests"]["mask"]["files"]) == FRAMES
    assert media["source"]["pix_fmt"] == "yuv422p10le" and media["output"]["native_composite"] is True
    assert media["output"]["changed_outside_holes"] == 0
    assert record["config"]["train"]["iterations"] == 2 and record["method"] == "iivi"
    assert "ffmpeg" in record["versions"] and record["device"]["type"] == "cpu"
    timings = record["timings"]
    assert timings["train_seconds"] > 0 and timings["fill_seconds"] > 0
    assert timings["total_seconds"] >= timings["train_seconds"] + timings["fill_seconds"]
    for name in ("out.contact.png", "out.diff.png", "out.preview.mp4", "out.thumb.png"):
        assert (tmp_path / name).is_file() and name in record["outputs"]


def _write_dpx_scan(folder: Path, frames: int, header) -> None:
    """10-bit DPX files; ``header(data)`` adds (or not) the film and TV headers."""
    folder.mkdir()
    encoder = av.codec.CodecContext.create("dpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 48, 32, "gbrp10le"
    encoder.time_base = Fraction(1, 24)
    for index, pixels in enumerate(rgb16_frames(frames)):
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb48le").reformat(format="gbrp10le")
        data = b"".join(bytes(p) for p in encoder.encode(frame))
        (folder / f"scan_{index:07d}.dpx").write_bytes(header(data))


def test_a_dpx_scan_runs_at_the_rate_its_headers_state(tmp_path, holes):
    """No --fps: the rate the DPX header states (23.976 as a float is 24000/1001, exactly), and
    the output's headers state it again; --fps overrides it; no stated rate: 24."""
    ntsc = tmp_path / "ntsc"
    _write_dpx_scan(ntsc, FRAMES, lambda data: with_industry_headers(data, NTSC_FILM, "01:00:00:00"))
    assert read_frames(ntsc).fps == NTSC_FILM
    assert read_frames(ntsc, fps=Fraction(25)).fps == 25
    outputs, _ = _run(ntsc, _mask_folder(tmp_path / "m", holes), tmp_path / "restored")
    assert read_frames(outputs.video).fps == NTSC_FILM

    # A tool that wrote the rate rounded to two decimals means the same rate.
    rounded = tmp_path / "rounded"

    def rounded_rate(data: bytes) -> bytes:
        tagged = bytearray(with_industry_headers(data, Fraction(24)))
        struct.pack_into("<f", tagged, 1724, 29.97)  # film header's frame rate (file is little-endian)
        return bytes(tagged)

    _write_dpx_scan(rounded, 2, rounded_rate)
    assert read_frames(rounded).fps == Fraction(30000, 1001)

    plain = tmp_path / "plain"
    _write_dpx_scan(plain, 2, lambda data: data)  # FFmpeg's encoder states no rate
    assert read_frames(plain).fps == 24

    # A video without a timecode, restored to DPX: its files state the video's rate.
    mov = encode(tmp_path / "reel.mov", rgb16_frames(FRAMES), codec="prores_ks", pix_fmt="yuv422p10le",
                 container="mov", fps=NTSC_FILM, options={"profile": "3"})
    outputs, _ = inpaint_files(ShotInputs(video=mov, mask=_mask_folder(tmp_path / "m2", holes)), tmp_path / "frames",
                               tiny_config(2), CPU, "dpx")
    assert read_frames(outputs.video).fps == NTSC_FILM
    # Its timecode is undefined (FFmpeg's decoder says 00:00:00;00 for that), so it has none.
    assert probe_source(outputs.video).timecode is None

"""Generated media for the archive-grade tests: any codec, pixel format, container, rate, audio,
timecode and colour tags, written with PyAV so the tests read real files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

NTSC_FILM = Fraction(24000, 1001)


def rgb16_frames(count: int, height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint16 frames with smooth structure plus per-pixel noise (so every sample
    differs and a wrong copy shows)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(count):
        base = np.stack([(x + 3 * t) * 900, (y + 2 * t) * 1500, (x + y + t) * 600], axis=-1) % 50000
        frames.append((base + rng.integers(0, 8000, (height, width, 3))).astype(np.uint16))
    return np.stack(frames)


def encode(
    path: Path,
    frames: np.ndarray,
    *,
    codec: str,
    pix_fmt: str,
    container: str | None = None,
    fps: Fraction = NTSC_FILM,
    options: dict[str, str] | None = None,
    audio: str | None = None,
    timecode: str | None = None,
    colour: tuple[int, int, int, int] | None = None,
    timestamps: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """Encode RGB frames (uint8/uint16) as ``codec``/``pix_fmt``; optional PCM/AAC audio
    (``audio`` = codec name), timecode tag, colour tags (primaries, transfer, matrix, range)
    and explicit per-frame timestamps (variable frame rate)."""
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.time_base = time_base or Fraction(fps.denominator, fps.numerator)
        stream.codec_context.time_base = stream.time_base  # frame pts are in this time base
        if options:
            stream.options = options
        if timecode:
            if output.format.name == "avi":
                output.metadata["timecode"] = timecode  # AVI's INFO list (ISMP): no stream tags
            else:
                stream.metadata["TIMECODE" if output.format.name == "matroska" else "timecode"] = timecode
        if colour:
            context = stream.codec_context
            context.color_primaries, context.color_trc, context.colorspace, context.color_range = colour
        sound = None
        if audio:
            sound = output.add_stream(audio, rate=48000)
            sound.layout = "stereo"
        for index, pixels in enumerate(frames):
            fmt = "rgb48le" if pixels.dtype == np.uint16 else "rgb24"
            options_ = {}
            if colour:
                options_ = {"dst_colorspace": colour[2], "dst_color_range": colour[3]}
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=fmt)
            frame = frame.reformat(format=pix_fmt, **options_)
            if colour:
                frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range = colour
            frame.pts = timestamps[index] if timestamps is not None else index
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
        if sound is not None:
            _add_audio(output, sound, seconds=float(len(frames) / fps))
    return path


def _add_audio(output, sound, seconds: float) -> None:
    rng = np.random.default_rng(7)
    samples = int(seconds * 48000)
    pts = 0
    while pts < samples:
        chunk = av.AudioFrame.from_ndarray(
            rng.integers(-8000, 8000, (1, 2 * 1024), dtype=np.int16), format="s16", layout="stereo"
        )
        chunk.sample_rate, chunk.pts = 48000, pts
        for packet in sound.encode(chunk):
            output.mux(packet)
        pts += 1024
    for packet in sound.encode(None):
        output.mux(packet)


def audio_payloads(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def colour_tags(path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(primaries, transfer, matrix, range) as a file's video stream declares them and as its
    first decoded frame says, read with PyAV directly (not through the probe under test)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        frame = next(container.decode(stream))
        names = ("color_primaries", "color_trc", "colorspace", "color_range")
        return tuple(int(getattr(context, n)) for n in names), tuple(int(getattr(frame, n)) for n in names)


def native_planes(path: Path) -> list[list[np.ndarray]]:
    """Every frame of a video (or DPX/PNG sequence file list) as its native planes."""
    from archive_inpaint.media.native import plane_view

    with av.open(str(path)) as container:
        return [[plane_view(f, i).copy() for i in range(len(f.planes))] for f in container.decode(video=0)]


def video_timestamps(path: Path) -> tuple[list[int], Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(stream)]
        return pts, Fraction(stream.time_base)

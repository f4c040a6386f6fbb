"""Low-level encoders: FFV1/H.264 through PyAV and image sequences through OpenCV.

These write to whatever path they are given; atomicity and path policy live
in writer.py.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import av.video.stream
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from .errors import MediaError, quote
from .frame_store import Frames
from .pixels import to_uint8
from .rates import FPS_TAG

# FFV1 version 3 with per-slice CRCs is the archival profile (self-checking,
# multithreaded); g=1 makes every frame a keyframe so any frame is decodable
# on its own.
FFV1_OPTIONS = {"level": "3", "slicecrc": "1", "g": "1"}
# crf 18 is visually lossless for previews at a moderate size.
H264_OPTIONS = {"crf": "18"}

# FFmpeg's AVCOL_SPC_BT709, AVCOL_PRI_BT709 and AVCOL_TRC_BT709 are all 1.
_BT709 = 1

SEQUENCE_PATTERN = "frame_{index:06d}{suffix}"


@cache
def ffv1_rgb_format(bit_depth: int) -> str:
    """Lossless RGB pixel format FFV1 accepts at this depth.

    'gbrp' is preferred for 8-bit, but FFmpeg's FFV1 encoder (libavcodec 62
    here) does not list it -- 8-bit RGB goes in as packed 'bgr0' -- and an
    unlisted format makes avcodec_open2 fail.  Both are lossless for RGB.
    """
    if bit_depth == 16:
        return "gbrp16le"
    formats = av.codec.Codec("ffv1", "w").video_formats or []
    supported = {fmt.name for fmt in formats}
    return "gbrp" if "gbrp" in supported else "bgr0"


def encode_video(
    frames: Frames,
    fps: Fraction,
    path: Path,
    *,
    container_format: str,
    lossless: bool,
) -> None:
    """Encode (T, H, W, 3) RGB frames into `path` with exact per-frame timestamps.

    Only shape, dtype and iteration are used, so a FrameStore streams from disk.
    """
    # One tick per frame: pts = frame index is then exact for any rational rate.
    time_base = Fraction(fps.denominator, fps.numerator)
    sixteen = lossless and frames.dtype == np.uint16
    in_format = "rgb48le" if sixteen else "rgb24"
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream("ffv1" if lossless else "libx264", rate=fps)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.time_base = time_base
        # Lets the reader recover rates Matroska cannot store exactly (see rates.py).
        stream.metadata[FPS_TAG] = str(fps)
        if lossless:
            pix_fmt = ffv1_rgb_format(16 if sixteen else 8)
            stream.pix_fmt = pix_fmt
            stream.options = dict(FFV1_OPTIONS)
        else:
            pix_fmt = _configure_h264(stream)
        for index, pixels in enumerate(frames):
            if not sixteen:
                pixels = to_uint8(pixels)  # per frame: no full-clip uint32 copy
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=in_format)
            if not lossless:
                frame = _to_bt709(frame, pix_fmt)
            frame.pts = index
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):  # flush delayed (B-)frames
            container.mux(packet)


def _configure_h264(stream: av.video.stream.VideoStream) -> str:
    """Set up a libx264 stream; return its pixel format."""
    # 4:2:0 needs even dimensions; odd sizes fall back to 4:4:4 rather than
    # cropping or padding the picture.
    even = stream.width % 2 == 0 and stream.height % 2 == 0
    pix_fmt = "yuv420p" if even else "yuv444p"
    stream.pix_fmt = pix_fmt
    stream.options = dict(H264_OPTIONS)
    # Untagged YUV is shown as BT.601 by some players and BT.709 by others;
    # converting with BT.709 and tagging it lets compliant players (and our
    # reader, which honours the tag) show the colours that were encoded.
    context = stream.codec_context
    context.colorspace = _BT709
    context.color_primaries = _BT709
    context.color_trc = _BT709
    context.color_range = int(ColorRange.MPEG)
    return pix_fmt


def _to_bt709(frame: av.VideoFrame, pix_fmt: str) -> av.VideoFrame:
    return frame.reformat(
        format=pix_fmt, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )


def write_image_sequence(frames: Frames, folder: Path, suffix: str) -> None:
    """Write frame_000000<suffix>, ... keeping 16-bit samples for uint16 input."""
    for index, pixels in enumerate(frames):
        file = folder / SEQUENCE_PATTERN.format(index=index, suffix=suffix)
        # imwrite reports failure by returning False, not by raising.
        bgr = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(file), bgr):
            raise MediaError(f"could not write image {quote(file)}")

"""Still images: listing frame folders and reading single images (OpenCV; DPX through FFmpeg)."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import MediaError, quote
from .rates import stated_rate

# DPX (the film-scan format, 10-bit log or 16-bit) is read by FFmpeg: OpenCV has no DPX reader.
DPX_SUFFIXES = frozenset({".dpx"})
IMAGE_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".jpg", ".jpeg"}) | DPX_SUFFIXES

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[object, ...], str]:
    """Sort key where 'frame2' < 'frame10'.

    re.split with a capturing group always alternates text, number, text, ...
    so the odd positions are exactly the digit runs and int never meets str at
    the same position; the raw name breaks ties ('f1.png' vs 'f01.png').
    """
    parts = tuple(
        int(part) if index % 2 else part.lower()
        for index, part in enumerate(_DIGITS.split(name))
    )
    return parts, name


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """Image files of a frame folder in natural order.

    Hidden files are skipped: that excludes our own '.tmp' write directories
    and OS litter such as macOS '._frame1.png' resource forks.
    """
    files = [
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and is_image_file(p)
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image_raw(path: Path, label: str, context: str = "") -> np.ndarray:
    """Read an image as stored: (H, W) or (H, W, C), BGR(A) order, uint8/uint16.

    Errors read "<label> '<path>'<context> ...", so callers can name a related
    file in `context` (e.g. " (for video 'v.mp4')").
    """
    name = f"{label} {quote(path)}{context}"
    if path.suffix.lower() in DPX_SUFFIXES:
        return _read_dpx(path, name)
    # imread returns None instead of raising, so check explicitly.
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise MediaError(f"{name} is not a readable image")
    if image.dtype not in (np.uint8, np.uint16):
        raise MediaError(
            f"{name} has unsupported sample type {image.dtype} "
            "(only 8-bit and 16-bit integer images are supported)"
        )
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise MediaError(f"{name} has {image.shape[2]} channels")
    return image


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Raw OpenCV image -> (H, W, 3) RGB: gray is replicated, alpha dropped."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    # Drop alpha and reverse BGR in one view, then copy to a compact array.
    return np.ascontiguousarray(image[:, :, 2::-1])


def _read_dpx(path: Path, name: str) -> np.ndarray:
    """A DPX frame in read_image_raw's layout: BGR, 16-bit for anything deeper than 8 bits.

    10- and 12-bit samples are scaled to the full 16-bit range by FFmpeg's converter (bit
    replication), which the DPX writer reverses exactly, so a 10-bit DPX survives a round trip.
    """
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.FFmpegError, OSError, StopIteration) as exc:
        raise MediaError(f"{name} is not a readable image: {exc}") from exc
    deep = max(component.bits for component in frame.format.components) > 8
    return frame.to_ndarray(format="bgr48le" if deep else "bgr24")


def header_rate(path: Path) -> Fraction | None:
    """The frame rate an image file's header states (a DPX scan's film or TV header, which
    FFmpeg's DPX decoder reads), or None: other formats have no timing, and a DPX header may
    leave the rate undefined (FFmpeg's own DPX encoder writes none)."""
    if path.suffix.lower() not in DPX_SUFFIXES:
        return None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            next(container.decode(stream))
            rate = stream.codec_context.framerate
    except (av.FFmpegError, OSError, StopIteration):
        return None  # the frame reader names the file and its problem
    if not rate or rate <= 0:
        return None
    return stated_rate(Fraction(rate))

"""Pixel depth conversion shared by lossy writers and QC images."""

from __future__ import annotations

import numpy as np


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """uint8 unchanged; uint16 rounded to the nearest 8-bit level (65535 -> 255)."""
    if frames.dtype == np.uint8:
        return frames
    if frames.dtype != np.uint16:
        raise ValueError(f"expected uint8 or uint16 pixels, got {frames.dtype}")
    # uint32 intermediate: 65535 * 255 overflows uint16.
    scaled = (frames.astype(np.uint32) * 255 + 32767) // 65535
    return scaled.astype(np.uint8)

"""The classical fills the engine is compared against.

* Telea (OpenCV ``cv2.inpaint``, radius 5), frame by frame: a purely spatial fill, the floor any
  video method has to clear.
* The per-pixel temporal median of the shot's known pixels: the strongest cheap method on a
  static camera (it *is* the clean plate wherever the pixel was ever uncovered) and a weak one when
  the camera or subject moves, which is exactly the contrast the two benchmark clips are for.
"""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.footage import temporal_median

TELEA_RADIUS = 5


def telea(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """One (H, W, 3) uint8 frame with its ``hole`` filled by Telea's method; other pixels kept."""
    if not hole.any():
        return frame.copy()
    # cv2.inpaint treats the channels alike, so RGB order needs no conversion.
    return cv2.inpaint(frame, hole.astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)


def telea_shot(frames: np.ndarray, holes: np.ndarray) -> np.ndarray:
    return np.stack([telea(frame, hole) for frame, hole in zip(frames, holes, strict=True)])


def temporal_median_shot(frames: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Fill each hole pixel with the median of that pixel over the frames where it is known.

    A pixel that is a hole in every frame has no known value; it is filled by Telea on the frame
    after the median fill, so Telea works from the median-filled surroundings rather than from
    another hole.
    """
    median, ever_known = temporal_median(frames, known=~holes)
    filled = frames.copy()
    for index in range(len(frames)):
        hole = holes[index]
        if not hole.any():
            continue
        filled[index][hole] = median[hole]
        never_known = hole & ~ever_known
        if never_known.any():
            filled[index] = telea(filled[index], never_known)
    return filled

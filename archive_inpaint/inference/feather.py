"""Feathering: the weights of a soft composite, so a fill blends into the film grain around it.

A hard composite puts the fill's texture right next to the frame's own grain, and on grainy
film the hole's outline can show as a line. With a feather of ``f`` px the composite also
takes in the ``f`` px around the hole, mixing fill and frame with a weight ``alpha`` that
falls linearly with the (Euclidean) distance ``d`` from the hole:

    alpha = max(0, 1 - d / (f + 1))

so alpha is exactly 1 in the hole (d = 0), 1 - 1/(f + 1) next to it, 1/(f + 1) at d = f (the
last pixel straight out from the hole's edge) and exactly 0 from d = f + 1 on. The ``+ 1``
keeps the last band pixel from getting weight 0, which would make a feather of 1 a no-op.
Pixels with alpha > 0 (the "blend region") all lie within ``f`` rows and columns of the hole.

Only the hole's bounding box grown by ``f`` is ever transformed: at 4K a full-frame float
distance map would cost 33 MB for a hole that may be a timestamp in a corner.
"""

from __future__ import annotations

import cv2
import numpy as np


def _check_feather(feather: int) -> None:
    if feather < 0:
        raise ValueError(f"feather must be >= 0 px, got {feather}")


def blend_bounds(hole: np.ndarray, feather: int) -> tuple[slice, slice] | None:
    """(rows, cols) of a box holding the whole blend region of ``hole`` (H, W) bool: the hole's
    bounding box grown by ``feather`` px, clipped to the frame. None when there is no hole.
    With feather 0 it is exactly the hole's bounding box."""
    _check_feather(feather)
    rows, cols = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
    if not len(rows):
        return None
    height, width = hole.shape
    top, bottom = max(0, int(rows[0]) - feather), min(height, int(rows[-1]) + 1 + feather)
    left, right = max(0, int(cols[0]) - feather), min(width, int(cols[-1]) + 1 + feather)
    return slice(top, bottom), slice(left, right)


def _alpha_of_box(hole: np.ndarray, feather: int) -> np.ndarray:
    """``feather_alpha`` of a crop that holds every hole pixel (so every distance is right)."""
    if feather == 0:
        return hole.astype(np.float32)
    # distanceTransform gives each non-zero pixel its distance to the nearest zero pixel: on the
    # complement of the hole, that is the distance to the hole. MASK_PRECISE: exact Euclidean
    # distances, so the band is round rather than a diamond or an octagon.
    distance = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # d / (f + 1) >= 1 exactly when d >= f + 1 (rounded division is monotone and (f+1)/(f+1)
    # is exact), so the clip makes alpha exactly 0 there.
    return np.clip(1.0 - distance / np.float32(feather + 1), 0.0, 1.0).astype(np.float32)


def feather_alpha(hole: np.ndarray, feather: int) -> np.ndarray:
    """(H, W) float32 composite weight of the fill for ``hole`` (H, W) bool: 1.0 in the hole,
    ``1 - d / (feather + 1)`` at distance ``d`` outside it, exactly 0 from ``feather + 1`` on.
    Feather 0 gives the hole itself as 0.0/1.0. The result for a crop of the frame that holds
    every hole pixel equals the same crop of the whole frame's result."""
    alpha = np.zeros(hole.shape, dtype=np.float32)
    bounds = blend_bounds(hole, feather)
    if bounds is not None:
        alpha[bounds] = _alpha_of_box(hole[bounds], feather)
    return alpha


def blend_region(hole: np.ndarray, feather: int) -> np.ndarray:
    """(H, W) bool: the pixels a feathered composite changes (alpha > 0), i.e. the hole dilated
    by a disc of radius just under ``feather + 1``. Feather 0 gives the hole."""
    region = np.zeros(hole.shape, dtype=bool)
    bounds = blend_bounds(hole, feather)
    if bounds is not None:
        region[bounds] = _alpha_of_box(hole[bounds], feather) > 0
    return region

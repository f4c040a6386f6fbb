"""Losses of internal training."""

from __future__ import annotations

import torch


def known_pixel_l1(
    prediction: torch.Tensor,
    target: torch.Tensor,
    real_hole: torch.Tensor,
    valid_height: int,
    valid_width: int,
) -> torch.Tensor:
    """Mean absolute error over the pixels whose true value is known.

    Known = outside the real hole and inside the unpadded frame. Pseudo-hole pixels are known and
    count: they are what teaches the fill. Real-hole pixels carry the object to remove and must not
    count, or the network would learn to paint it back. Normalised by the number of known values so
    the loss scale does not depend on the hole area.
    """
    region = (slice(None), slice(None), slice(0, valid_height), slice(0, valid_width))
    weight = (~real_hole[region]).to(prediction.dtype)
    error = (prediction[region] - target[region]).abs() * weight
    known_values = weight.sum() * prediction.shape[1]
    return error.sum() / known_values.clamp_min(1.0)

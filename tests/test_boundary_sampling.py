"""Boundary-aware sampling: the configured share of patch centres comes from the boundary band."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from archive_inpaint.training.boundary_sampling import BoundaryAwareSampler, boundary_band


def _holes(num_frames: int = 4, height: int = 120, width: int = 160) -> list[np.ndarray]:
    holes = []
    for index in range(num_frames):
        hole = np.zeros((height, width), dtype=bool)
        hole[30 + 5 * index : 60 + 5 * index, 50:90] = True
        holes.append(hole)
    return holes


def test_band_is_dilation_minus_erosion():
    hole = np.zeros((60, 60), dtype=bool)
    hole[20:40, 20:40] = True
    band = boundary_band(hole, 3)
    assert band[20, 30] and band[18, 30] and band[22, 30]  # both sides of the edge
    assert not band[30, 30]  # deep inside the hole
    assert not band[5, 5]  # far outside
    assert not boundary_band(np.zeros((10, 10), dtype=bool), 3).any()


@pytest.mark.parametrize("probability", [0.0, 0.3, 0.8])
def test_the_configured_share_of_centres_falls_in_the_band(probability):
    holes = _holes()
    bands = [boundary_band(hole, 6) for hole in holes]
    band_fraction = float(np.mean([band.mean() for band in bands]))
    sampler = BoundaryAwareSampler.from_holes(holes, 6, 32, 32, probability)
    draws = sampler.draw(4000, torch.Generator().manual_seed(1))
    in_band = np.mean([bands[d.frame][d.centre] for d in draws])
    # Band draws always land in the band; uniform draws land there at the band's area share.
    expected = probability + (1 - probability) * band_fraction
    sigma = math.sqrt(expected * (1 - expected) / len(draws))
    assert abs(in_band - expected) < 4 * sigma + 1e-9
    share_from_band = np.mean([d.from_band for d in draws])
    assert abs(share_from_band - probability) < 4 * math.sqrt(probability * (1 - probability) / len(draws)) + 1e-9


def test_band_draws_cover_all_frames_in_proportion_to_their_band():
    holes = _holes()
    holes[0][:] = False  # a frame with no hole has no band to draw from
    sampler = BoundaryAwareSampler.from_holes(holes, 4, 32, 32, 1.0)
    frames = [d.frame for d in sampler.draw(2000, torch.Generator().manual_seed(2))]
    assert 0 not in frames and set(frames) == {1, 2, 3}


def test_boxes_stay_inside_the_frame_and_are_reproducible():
    sampler = BoundaryAwareSampler.from_holes(_holes(), 6, 48, 64, 0.5)
    first = sampler.draw(500, torch.Generator().manual_seed(7))
    again = sampler.draw(500, torch.Generator().manual_seed(7))
    assert first == again
    for draw in first:
        tile = draw.tile
        assert (tile.height, tile.width) == (48, 64)
        assert 0 <= tile.top and tile.bottom <= 120 and 0 <= tile.left and tile.right <= 160


def test_an_empty_mask_falls_back_to_uniform_draws():
    empty = [np.zeros((50, 50), dtype=bool)] * 2
    sampler = BoundaryAwareSampler.from_holes(empty, 4, 16, 16, 0.9)
    assert sampler.band_pixels == 0
    assert not any(d.from_band for d in sampler.draw(50, torch.Generator().manual_seed(0)))

"""The stabilization regularizer (IIVI §3.4, eq. 4-5): fills that change as the input changes.

Regions hidden in every frame (deficiency) have no content to propagate, and a network free to
fill them differently in every frame makes them flicker. Stabilization asks for equivariance to
small camera-like changes: apply a random small transform g to a frame (a homography within a
few pixels and about a degree, a zoom of a few percent, a brightness change and a slight blur;
geometry only for the masks) and penalise

    | (f(g(x)) - f(x)) - (g(X) - X) |   on known pixels: outside M and g(M), inside the frame,

i.e. the output must change the way the input changed. The public code uses an affine warp
only; the homography and the photometric part follow the paper's text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TransformRanges:
    max_shift_px: float = 2.0  # translation, and each corner's extra perspective offset
    max_rotation_deg: float = 1.0
    zoom: tuple[float, float] = (0.97, 1.03)
    max_brightness: float = 0.1  # additive, in [-1, 1] image units (5% of the range)
    max_blur_sigma: float = 1.0


@dataclass
class SmallTransform:
    """A batch of transforms: sampling grids (N, H, W, 2) and what lands inside the source."""

    grid: torch.Tensor
    inside: torch.Tensor  # (N, 1, H, W) bool: the output pixel samples inside the frame
    brightness: torch.Tensor  # (N, 1, 1, 1)
    blur_sigma: list[float]

    def warp_image(self, image: torch.Tensor) -> torch.Tensor:
        warped = F.grid_sample(image, self.grid, mode="bilinear", padding_mode="border", align_corners=False)
        blurred = torch.stack([_gaussian_blur(item, sigma) for item, sigma in zip(warped, self.blur_sigma)])
        return (blurred + self.brightness).clamp(-1.0, 1.0)

    def warp_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Geometry only, nearest: a warped mask stays binary."""
        return F.grid_sample(mask.float(), self.grid, mode="nearest", padding_mode="border", align_corners=False)


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma < 0.05:
        return image
    radius = max(1, math.ceil(2.5 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[0]
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
    horizontal = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(horizontal, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)[0]


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def sample_homography(height: int, width: int, ranges: TransformRanges, generator: torch.Generator) -> np.ndarray:
    """3x3 homography taking output pixel coordinates to source pixel coordinates."""
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    angle = math.radians(_uniform(generator, -ranges.max_rotation_deg, ranges.max_rotation_deg))
    zoom = _uniform(generator, *ranges.zoom)
    rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) * zoom
    shift = np.array([_uniform(generator, -ranges.max_shift_px, ranges.max_shift_px) for _ in range(2)])
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float64)
    moved = (corners - centre) @ rotate.T + centre + shift
    moved += np.array(
        [[_uniform(generator, -ranges.max_shift_px, ranges.max_shift_px) for _ in range(2)] for _ in range(4)]
    )
    return cv2.getPerspectiveTransform(corners.astype(np.float32), moved.astype(np.float32))


def sample_transforms(
    batch: int, height: int, width: int, ranges: TransformRanges, generator: torch.Generator, device: torch.device
) -> SmallTransform:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    grids, inside = [], []
    for _ in range(batch):
        source = sample_homography(height, width, ranges, generator) @ points
        u, v = source[0] / source[2], source[1] / source[2]
        inside.append(((u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)).reshape(height, width))
        # Pixel centres to grid_sample's normalised coordinates (align_corners=False).
        grids.append(np.stack([(u + 0.5) / width * 2 - 1, (v + 0.5) / height * 2 - 1], axis=-1).reshape(height, width, 2))
    brightness = torch.tensor(
        [_uniform(generator, -ranges.max_brightness, ranges.max_brightness) for _ in range(batch)]
    ).view(batch, 1, 1, 1)
    sigmas = [_uniform(generator, 0.0, ranges.max_blur_sigma) for _ in range(batch)]
    return SmallTransform(
        grid=torch.from_numpy(np.stack(grids)).float().to(device),
        inside=torch.from_numpy(np.stack(inside))[:, None].to(device),
        brightness=brightness.to(device),
        blur_sigma=sigmas,
    )


def stabilization_residual_l1(
    output: torch.Tensor,
    transformed_output: torch.Tensor,
    image: torch.Tensor,
    transformed_image: torch.Tensor,
    known: torch.Tensor,
) -> torch.Tensor:
    """Mean over ``known`` pixels of |(f(g(x)) - f(x)) - (g(X) - X)| (eq. 5)."""
    residual = (transformed_output - output) - (transformed_image - image)
    weight = known.to(residual.dtype)
    return (residual.abs() * weight).sum() / (weight.sum() * residual.shape[1]).clamp_min(1.0)

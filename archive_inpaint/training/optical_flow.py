"""Optical flow for DIP-Vid-Flow: estimators, warping, the forward-backward check and the
per-shot flow targets (see docs: method spec §2.3).

The paper supervises its flow head with PWC-Net flow. Here the estimator is pluggable: OpenCV's
DIS and Farneback need no weights and are always available; a learned estimator registers itself
by name with ``register_flow_estimator`` where its weights exist.

Conventions: a flow field is in pixels, channel 0 = dx, channel 1 = dy, and ``flow[y, x]`` from
frame a to frame b says that the content at (x, y) in a is at (x + dx, y + dy) in b. So
``backward_warp(b, flow_ab)`` brings b onto a's pixel grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from archive_inpaint.training.working_set import WorkingSet

FlowDirection = Literal["forward", "backward"]
DIRECTIONS: tuple[FlowDirection, ...] = ("forward", "backward")

# A bilinear sample of an all-ones image below this touched the zero padding outside the frame.
IN_BOUNDS_LEVEL = 0.999
# A warped hole mask above this touches a hole pixel. Not exactly 0: flows that are integers up
# to rounding put ~1e-7 of weight on a neighbour and would grow every hole by a pixel.
WARPED_HOLE_LEVEL = 1e-3
# Normalisation scales are at least this (px): a static shot's max |flow| is ~0 and dividing by it
# would blow the targets up.
MIN_FLOW_SCALE = 1.0


# --------------------------------------------------------------------------- estimators


@runtime_checkable
class FlowEstimator(Protocol):
    """Dense flow between two uint8 RGB frames (H, W, 3) -> (H, W, 2) float32, in pixels."""

    name: str

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray: ...


def _gray(frame: np.ndarray) -> np.ndarray:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB frame (H, W, 3), got {frame.dtype} {frame.shape}")
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


class DISFlowEstimator:
    """OpenCV's Dense Inverse Search: fast, robust to large motion, no weights."""

    name = "dis"

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self._dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        flow = self._dis.calc(_gray(first), _gray(second), None)
        return np.ascontiguousarray(flow, dtype=np.float32)


class FarnebackFlowEstimator:
    """OpenCV's Farneback polynomial-expansion flow: smoother than DIS, weaker on large motion."""

    name = "farneback"

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        flow = cv2.calcOpticalFlowFarneback(
            _gray(first), _gray(second), None,
            pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0,
        )
        return np.ascontiguousarray(flow, dtype=np.float32)


_ESTIMATORS: dict[str, Callable[[], FlowEstimator]] = {
    DISFlowEstimator.name: DISFlowEstimator,
    FarnebackFlowEstimator.name: FarnebackFlowEstimator,
}


def register_flow_estimator(name: str, factory: Callable[[], FlowEstimator]) -> None:
    """Make ``name`` available to ``make_flow_estimator`` (and so to ``FlowConfig.estimator``)."""
    _ESTIMATORS[name] = factory


def available_flow_estimators() -> tuple[str, ...]:
    return tuple(_ESTIMATORS)


def make_flow_estimator(name: str) -> FlowEstimator:
    try:
        factory = _ESTIMATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown flow estimator {name!r}; choose one of {', '.join(available_flow_estimators())}"
        ) from None
    return factory()


# --------------------------------------------------------------------------- warping


def _sampling_grid(flow: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) pixel flow -> grid_sample's (N, H, W, 2) grid for align_corners=True, where
    -1 and +1 are the centres of the first and last pixels, so x + dx maps exactly."""
    _, _, height, width = flow.shape
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, height, 1)
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, width)
    x = (xs + flow[:, 0]) * (2.0 / max(width - 1, 1)) - 1.0
    y = (ys + flow[:, 1]) * (2.0 / max(height - 1, 1)) - 1.0
    return torch.stack((x, y), dim=-1)


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` (N, C, H, W) at x + flow(x) (bilinear): the neighbour brought onto this
    frame's grid. Returns (warped, in_bounds); in_bounds (N, 1, H, W) bool is False where the
    sample falls (partly) outside the image, where warped is meaningless."""
    if flow.shape[0] != image.shape[0] or flow.shape[1] != 2 or flow.shape[2:] != image.shape[2:]:
        raise ValueError(f"flow {tuple(flow.shape)} does not match image {tuple(image.shape)}")
    grid = _sampling_grid(flow.to(image.dtype))
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    ones = torch.ones_like(image[:, :1])
    coverage = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped, coverage >= IN_BOUNDS_LEVEL


def consistency_score(forward_flow: torch.Tensor, backward_flow: torch.Tensor) -> torch.Tensor:
    """exp(-|f_ab(x) + f_ba(x + f_ab(x))|^2 / 2) per pixel of frame a, (N, 1, H, W): 1 where going
    to b and back returns to x, ~0 where it does not (occlusion, a wrong match). Samples outside
    b read zero flow, as in the paper, so they pass only where the forward flow is tiny."""
    returned, _ = backward_warp(backward_flow, forward_flow)
    error = (forward_flow + returned).square().sum(dim=1, keepdim=True)
    return torch.exp(-error / 2.0)


# --------------------------------------------------------------------------- targets


@dataclass
class FlowField:
    """One flow type (stride, direction) for every frame of the shot, at the padded size.

    Frames without that neighbour (near the shot's ends) have zero flow and nothing reliable.
    """

    flow: torch.Tensor  # (T, 2, Hp, Wp) float32 px, the estimator's flow to frame t +/- stride
    reliable: torch.Tensor  # (T, 1, Hp, Wp) bool: consistent, in bounds, known in both frames
    hole_either: torch.Tensor  # (T, 1, Hp, Wp) bool: hole in frame t or at its match (mask_flow)
    scale: float  # px per normalised unit: max |flow component| over the shot, >= MIN_FLOW_SCALE


@dataclass
class FlowTargets:
    """Targets of every flow type the network predicts; ``field(stride, direction)``."""

    fields: dict[tuple[int, FlowDirection], FlowField]
    estimator_name: str

    def field(self, stride: int, direction: FlowDirection) -> FlowField:
        return self.fields[(stride, direction)]

    @classmethod
    def build(
        cls,
        working_set: WorkingSet,
        strides: tuple[int, ...],
        estimator: FlowEstimator,
        consistency_threshold: float = 0.5,
    ) -> FlowTargets:
        """Estimate both directions for every pair (t, t + s) on the valid (unpadded) area, check
        them against each other and against the holes, and pad to the working set's size (zero
        flow, nothing reliable in the padding: it is not picture)."""
        frames = _uint8_frames(working_set)
        holes = working_set.holes[:, :, : working_set.valid_height, : working_set.valid_width]
        device = working_set.images.device
        fields = {}
        for stride in strides:
            forward = _FieldBuilder.allocate(working_set, device)
            backward = _FieldBuilder.allocate(working_set, device)
            for first in range(working_set.num_frames - stride):
                second = first + stride
                to_second = _as_tensor(estimator(frames[first], frames[second]), device)
                to_first = _as_tensor(estimator(frames[second], frames[first]), device)
                forward.fill(first, to_second, to_first, holes[first], holes[second], consistency_threshold)
                backward.fill(second, to_first, to_second, holes[second], holes[first], consistency_threshold)
            fields[(stride, "forward")] = forward.finish()
            fields[(stride, "backward")] = backward.finish()
        return cls(fields=fields, estimator_name=estimator.name)


def _uint8_frames(working_set: WorkingSet) -> np.ndarray:
    """(T, h, w, 3) uint8 RGB of the valid area: what the OpenCV estimators take."""
    valid = working_set.images[:, :, : working_set.valid_height, : working_set.valid_width]
    pixels = ((valid.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(pixels.permute(0, 2, 3, 1).cpu().numpy())


def _as_tensor(flow: np.ndarray, device: torch.device) -> torch.Tensor:
    """(h, w, 2) -> (1, 2, h, w) float32 on ``device``."""
    return torch.from_numpy(np.asarray(flow, dtype=np.float32)).permute(2, 0, 1)[None].to(device)


@dataclass
class _FieldBuilder:
    """A FlowField being filled pair by pair (valid area written, padding left at zero/False)."""

    flow: torch.Tensor
    reliable: torch.Tensor
    hole_either: torch.Tensor
    valid_height: int
    valid_width: int
    max_magnitude: float = 0.0

    @classmethod
    def allocate(cls, working_set: WorkingSet, device: torch.device) -> _FieldBuilder:
        t, _, hp, wp = working_set.holes.shape
        return cls(
            flow=torch.zeros(t, 2, hp, wp, dtype=torch.float32, device=device),
            reliable=torch.zeros(t, 1, hp, wp, dtype=torch.bool, device=device),
            hole_either=torch.zeros(t, 1, hp, wp, dtype=torch.bool, device=device),
            valid_height=working_set.valid_height,
            valid_width=working_set.valid_width,
        )

    def fill(
        self,
        frame: int,
        flow: torch.Tensor,
        reverse: torch.Tensor,
        hole: torch.Tensor,
        neighbour_hole: torch.Tensor,
        threshold: float,
    ) -> None:
        """``flow`` (1, 2, h, w) from ``frame`` to its neighbour, ``reverse`` back; holes (1, h, w)."""
        warped_hole, in_bounds = backward_warp(neighbour_hole[None].float(), flow)
        hole_either = hole[None] | (warped_hole > WARPED_HOLE_LEVEL)
        # The paper's rule (consistent, hole in neither frame) plus in-bounds: a match outside the
        # neighbour cannot be checked, and its "consistency" reads zero flow there.
        reliable = (consistency_score(flow, reverse) > threshold) & ~hole_either & in_bounds
        region = (slice(None), slice(0, self.valid_height), slice(0, self.valid_width))
        self.flow[frame][region] = flow[0]
        self.reliable[frame][region] = reliable[0]
        self.hole_either[frame][region] = hole_either[0]
        self.max_magnitude = max(self.max_magnitude, float(flow.abs().max()))

    def finish(self) -> FlowField:
        scale = max(self.max_magnitude, MIN_FLOW_SCALE)
        return FlowField(flow=self.flow, reliable=self.reliable, hole_either=self.hole_either, scale=scale)

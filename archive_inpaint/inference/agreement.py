"""How far content propagated from other frames may be trusted where a network has its own fill.

Inside a hole the flow is completed from the flow around it, one smooth field, so content that
moves on its own behind the hole (a car passing behind a static railing) is fetched from the
wrong place, and nothing in the flow says so. The network, trained on the whole shot, is roughly
right there at its own (working) resolution. So both are blurred to about that resolution and
where they differ the content is not trusted: it keeps the detail the network cannot give, not
structure the network contradicts. Used by the whole-frame fill (propagated_paste.py, against
the network's own fill) and by the patch stages (stage_predictors.py, against their prior).

But the network is only roughly right: far above its working size (4K from a 320 px network) its
fill is off by more than the thresholds even where the content is right, and right content was
rejected (BENCHMARKS.md, high resolution). Where a hole pixel is shown by a frame before and a
frame after it, the two sources judge each other instead (``AgreementCheck.judge``): a static or
rigidly moving scene shows the same thing in both, whatever the network's resolution, while
content moving on its own is fetched from two different wrong places, which disagree. The
network decides only where one side shows the pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from archive_inpaint.config import ContentPropagationConfig


@dataclass(frozen=True)
class AgreementCheck:
    """How far pasted content may differ from the network's fill at low frequencies: both are
    blurred (Gaussian, ``sigma`` px of the frame pasted into) and the content is trusted fully up
    to a mean absolute difference of ``low`` per channel, not at all from ``high`` (values in
    [-1, 1]: 0.06 is about 8 code values of 255), linearly between."""

    low: float
    high: float
    sigma: float
    # Where frames before and after both show a pixel, they judge each other (module docstring).
    between_sources: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high:
            raise ValueError(f"agreement thresholds must satisfy 0 <= low < high, got {self.low}, {self.high}")
        if self.sigma <= 0:
            raise ValueError(f"agreement sigma must be positive, got {self.sigma}")

    @property
    def reach(self) -> int:
        """Px the blur reads around a pixel."""
        return math.ceil(3 * self.sigma)

    def trust(self, content: np.ndarray, network: np.ndarray) -> np.ndarray:
        """(h, w) in [0, 1] for ``content`` and ``network`` (h, w, 3) in [-1, 1]."""
        blurred = [cv2.GaussianBlur(image, (0, 0), self.sigma) for image in (content, network)]
        difference = np.abs(blurred[0] - blurred[1]).mean(axis=-1)
        return np.clip((self.high - difference) / (self.high - self.low), 0.0, 1.0).astype(np.float32)

    def judge(
        self, content: np.ndarray, network: np.ndarray, sides: tuple[SideContent, SideContent] | None = None
    ) -> np.ndarray:
        """(h, w) in [0, 1]: how far ``content`` (the blended content over ``network``) may be
        trusted. With ``sides`` (the earlier and the later frames' content) and
        ``between_sources``, the two sides judge each other where both found content, and the
        network only the rest (module docstring)."""
        trust = self.trust(content, network)
        if sides is None or not self.between_sources:
            return trust
        earlier, later = sides
        both = earlier.valid & later.valid
        if both.any():
            # Each side's picture is the other side's where it found nothing (and the network's
            # where neither did): pixels only one side shows do not differ, so the blur does
            # not carry one side's edge into the pixels both show.
            either = np.where(later.valid[..., None], later.candidate, network)
            first = np.where(earlier.valid[..., None], earlier.candidate, either)
            second = np.where(later.valid[..., None], later.candidate, first)
            trust[both] = self.trust(first, second)[both]
        return trust


@dataclass(frozen=True)
class SideContent:
    """The content one side of a frame (earlier or later frames) shows of its hole."""

    candidate: np.ndarray  # (h, w, 3) float32 in [-1, 1]
    valid: np.ndarray  # (h, w) bool


def agreement_for(propagation: ContentPropagationConfig, scale: float) -> AgreementCheck | None:
    """The configured check for pictures ``scale`` times the working size (None when off): the
    blur is set at the working size, where the network's detail ends, so it grows with the
    picture."""
    if not propagation.check_agreement:
        return None
    return AgreementCheck(
        propagation.agreement_low,
        propagation.agreement_high,
        propagation.agreement_sigma * scale,
        propagation.agreement_between_sources,
    )

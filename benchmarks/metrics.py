"""Fill-quality metrics measured inside the hole only.

Whole-frame scores are dominated by the pixels nobody touched (a fill's composite copies them bit
for bit), so every figure here looks at hole pixels alone:

* PSNR over the hole pixels of a frame (all three channels), averaged over frames that have a hole;
  plus one PSNR from the total squared error over every hole pixel of the shot, which weights a
  frame by its hole area instead of counting a 50-pixel sliver as much as a 5000-pixel hole.
* SSIM: the SSIM map is computed over the whole frame (its windows need the context around the
  hole), then averaged over the hole pixels only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

PEAK = 255.0
# A perfect fill has zero error and an infinite PSNR; capping keeps averages finite and the JSON
# standard (it has no Infinity). No real fill comes anywhere near 100 dB.
PSNR_CAP_DB = 100.0

# The usual SSIM constants (Wang et al. 2004): an 11x11 Gaussian window of sigma 1.5 and
# K1 = 0.01, K2 = 0.03 of the dynamic range.
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_C1 = (0.01 * PEAK) ** 2
SSIM_C2 = (0.03 * PEAK) ** 2


def psnr_from_mse(mse: float) -> float:
    if mse <= 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(PEAK * PEAK / mse))


def hole_squared_error(
    truth: np.ndarray, result: np.ndarray, hole: np.ndarray
) -> tuple[float, int]:
    """(sum of squared errors, number of values) over the hole pixels of one (H, W, 3) frame."""
    difference = truth[hole].astype(np.float64) - result[hole].astype(np.float64)
    return float(np.square(difference).sum()), int(difference.size)


def _blur(image: np.ndarray) -> np.ndarray:
    # Mirror at the border (edge pixel repeated) so border windows are not biased toward zero;
    # this is the same border rule as scipy's default ``reflect``, which keeps these figures
    # comparable with the common Python SSIM implementations.
    return cv2.GaussianBlur(
        image, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT
    )


def ssim_map(truth: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two (H, W, 3) frames, averaged over the channels: (H, W) float64."""
    x = truth.astype(np.float64)
    y = result.astype(np.float64)
    mu_x, mu_y = _blur(x), _blur(y)
    # Population (biased) local (co)variances, E[xy] - E[x]E[y], as in the original definition.
    var_x = _blur(x * x) - mu_x * mu_x
    var_y = _blur(y * y) - mu_y * mu_y
    cov = _blur(x * y) - mu_x * mu_y
    numerator = (2.0 * mu_x * mu_y + SSIM_C1) * (2.0 * cov + SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (var_x + var_y + SSIM_C2)
    per_channel: np.ndarray = numerator / denominator
    if per_channel.ndim == 2:
        return per_channel
    averaged: np.ndarray = per_channel.mean(axis=2)
    return averaged


@dataclass(frozen=True)
class HoleScores:
    psnr_mean_db: float  # mean over frames with a hole of the per-frame hole PSNR
    psnr_all_hole_db: float  # one PSNR from the total MSE over every hole pixel of the shot
    ssim_mean: float  # mean over frames with a hole of the SSIM map averaged over the hole
    frames_scored: int
    hole_pixels: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def score_hole(truth: np.ndarray, result: np.ndarray, holes: np.ndarray) -> HoleScores:
    """Score (T, H, W, 3) ``result`` against ``truth`` inside (T, H, W) ``holes``."""
    if truth.shape != result.shape or truth.shape[:3] != holes.shape:
        raise ValueError(
            f"shapes differ: truth {truth.shape}, result {result.shape}, holes {holes.shape}"
        )
    psnrs: list[float] = []
    ssims: list[float] = []
    total_error, total_values = 0.0, 0
    for index in range(holes.shape[0]):
        hole = holes[index]
        if not hole.any():
            # A frame without a hole has nothing to score; counting it would dilute the averages
            # with free perfect scores.
            continue
        error, values = hole_squared_error(truth[index], result[index], hole)
        total_error += error
        total_values += values
        psnrs.append(psnr_from_mse(error / values))
        ssims.append(float(ssim_map(truth[index], result[index])[hole].mean()))
    if not psnrs:
        raise ValueError("no frame has a hole: nothing to score")
    return HoleScores(
        psnr_mean_db=float(np.mean(psnrs)),
        psnr_all_hole_db=psnr_from_mse(total_error / total_values),
        ssim_mean=float(np.mean(ssims)),
        frames_scored=len(psnrs),
        hole_pixels=total_values // 3,
    )


def best_match_psnr(frames: np.ndarray, holes: np.ndarray, patch: int = 8, window: int = 4) -> float:
    """Temporal consistency (the measure of LGTSM's paper): for each ``patch`` x ``patch`` block
    wholly inside the hole of frame t, the PSNR of its best match among the blocks within
    +-``window`` px in frame t+1, averaged. A fill that flickers or drifts finds no close match;
    content that moves a few pixels between frames does."""
    height, width = frames.shape[1:3]
    scores = []
    for t in range(len(frames) - 1):
        ys, xs = np.nonzero(holes[t])
        if not len(ys):
            continue
        current, following = frames[t].astype(np.float32), frames[t + 1].astype(np.float32)
        for y in range(ys.min(), ys.max() - patch + 2, patch):
            for x in range(xs.min(), xs.max() - patch + 2, patch):
                if not holes[t, y : y + patch, x : x + patch].all():
                    continue
                block = current[y : y + patch, x : x + patch]
                best = np.inf
                for yy in range(max(0, y - window), min(height - patch, y + window) + 1):
                    for xx in range(max(0, x - window), min(width - patch, x + window) + 1):
                        candidate = following[yy : yy + patch, xx : xx + patch]
                        best = min(best, float(np.mean((block - candidate) ** 2)))
                scores.append(psnr_from_mse(best))
    return float(np.mean(scores)) if scores else float("nan")


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB.

    Linux's VmHWM, where available: ``ru_maxrss`` carries a parent's maximum RSS over fork+exec
    into the child, so a worker spawned by a benchmark holding a clip in memory would report at
    least the parent's size. Elsewhere, ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0

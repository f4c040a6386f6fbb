"""Benchmark clips: real footage, the holes to fill in it, and the ground truth to score against.

Two ways of getting ground truth from real footage (see ../shared/footage/README.md):

* ``balle``: a fixed camera. The per-pixel temporal median of the range is a clean plate, the ball
  (and anything else transient) is found as a difference from that plate, and the fill is scored
  against the plate inside those holes.
* ``carphone``: a moving camera and a moving subject, so no plate exists. A synthetic object is
  pasted over the real frames along a deterministic path, and the original frames are the truth.

Every clip is returned with its hole pixels blanked in ``frames``: a method can only see what a
real user's input would show around the hole, and a method that leaked hole pixels into its output
would be caught by a very high score rather than silently rewarded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from archive_inpaint.media import read_frames

# balle-jbart.mp4 has a burnt-in title in its first ~25 frames, and 255 frames in all. A 100-frame
# range after the title keeps the engine's CPU time sane and still holds a full throw of the ball.
BALLE_FILE = "balle-jbart.mp4"
BALLE_START, BALLE_END = 30, 130
# Above the codec's noise on the dark wall (differences of ~10-15 are common there) but well
# below the ball's contrast against it.
BALLE_DIFF_THRESHOLD = 30
# Opening removes isolated noise pixels that pass the threshold; the dilation then covers the
# ball's soft, motion-blurred edge and its shadow, which the threshold alone misses.
BALLE_OPEN_SIZE = 3
BALLE_DILATE_RADIUS = 7

CARPHONE_FILE = "carphone.mp4"
# The synthetic object: a filled ellipse 24 px wide and 32 px tall (semi-axes 12 and 16).
CARPHONE_OBJECT_SEMI_AXES = (12, 16)

# Rows per chunk of the temporal-median computations: bounds their float working copies to a few
# tens of MB instead of several times the clip's size.
MEDIAN_ROWS_PER_CHUNK = 48


@dataclass(frozen=True, eq=False)
class BenchmarkClip:
    """What every method is given (``frames``, ``holes``) and what it is scored against."""

    name: str
    description: str
    source: str
    frame_range: tuple[int, int]
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, hole pixels blanked to 0
    holes: np.ndarray  # (T, H, W) bool, True = hole
    truth: np.ndarray  # (T, H, W, 3) uint8 RGB; may be a broadcast read-only view

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def summary(self) -> dict[str, object]:
        """Plain-JSON facts about the clip, for the results file and the report."""
        frames_with_hole = int(self.holes.reshape(self.num_frames, -1).any(axis=1).sum())
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "frame_range": list(self.frame_range),
            "num_frames": self.num_frames,
            "height": int(self.frames.shape[1]),
            "width": int(self.frames.shape[2]),
            "frames_with_hole": frames_with_hole,
            "hole_fraction": float(self.holes.mean()),
        }


def temporal_median(
    frames: np.ndarray, known: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median over time of (T, H, W, 3) uint8 frames, using only ``known`` pixels.

    Returns (median image (H, W, 3) uint8, ever_known (H, W) bool). Pixels never known get 0 in the
    median image; the caller decides what to do with them.
    """
    num_frames, height, width, _ = frames.shape
    median = np.zeros((height, width, 3), dtype=np.uint8)
    ever_known = np.ones((height, width), dtype=bool)
    for top in range(0, height, MEDIAN_ROWS_PER_CHUNK):
        rows = slice(top, min(height, top + MEDIAN_ROWS_PER_CHUNK))
        block = frames[:, rows].astype(np.float32)
        if known is None:
            values = np.median(block, axis=0)
        else:
            block_known = known[:, rows]
            block[~block_known] = np.nan
            ever_known[rows] = block_known.any(axis=0)
            # All-NaN columns are the never-known pixels: nanmedian warns and returns NaN for them,
            # and they are zeroed just below.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                values = np.nanmedian(block, axis=0)
            values = np.nan_to_num(values, nan=0.0)
        # With an even number of samples the median is a half-integer; round half to even like rint.
        median[rows] = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return median, ever_known


def balle_holes(frames: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """|frame - plate| > threshold (max over channels), opened, then dilated: (T, H, W) bool."""
    opening = cv2.getStructuringElement(cv2.MORPH_RECT, (BALLE_OPEN_SIZE, BALLE_OPEN_SIZE))
    size = 2 * BALLE_DILATE_RADIUS + 1
    dilation = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    holes = np.empty(frames.shape[:3], dtype=bool)
    signed_plate = plate.astype(np.int16)
    for index, frame in enumerate(frames):
        difference = np.abs(frame.astype(np.int16) - signed_plate).max(axis=2)
        changed = (difference > BALLE_DIFF_THRESHOLD).astype(np.uint8)
        changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, opening)
        holes[index] = cv2.dilate(changed, dilation) > 0
    return holes


def load_balle(footage_dir: Path) -> BenchmarkClip:
    path = footage_dir / BALLE_FILE
    frames = read_frames(path, start=BALLE_START, end=BALLE_END).frames
    # The plate includes the frames where the ball passes over a pixel; the ball is transient, so
    # at any pixel it is in a small minority of the 100 frames and the median ignores it.
    plate, _ = temporal_median(frames)
    holes = balle_holes(frames, plate)
    return BenchmarkClip(
        name="balle",
        description=(
            f"{BALLE_FILE} frames {BALLE_START}..{BALLE_END} (end exclusive, "
            f"{BALLE_END - BALLE_START} frames), static camera; holes = |frame - plate| > "
            f"{BALLE_DIFF_THRESHOLD}, {BALLE_OPEN_SIZE}x{BALLE_OPEN_SIZE} opening, "
            f"{BALLE_DILATE_RADIUS} px elliptical dilation; truth = the temporal-median plate "
            "(the temporal-median baseline estimates that plate almost the same way, so on this "
            "clip it is close to the truth by construction)"
        ),
        source=str(path),
        frame_range=(BALLE_START, BALLE_END),
        frames=blank_holes(frames, holes),
        holes=holes,
        truth=np.broadcast_to(plate, frames.shape),
    )


def carphone_object_centres(num_frames: int, height: int, width: int) -> np.ndarray:
    """(T, 2) float (x, y) centres of the synthetic object: a figure eight over the frame.

    In carphone the man's face is at the centre, the striped seat back on the left, the window
    with passing scenery on the right and his suit along the bottom. A figure eight centred on
    the frame crosses the face twice per loop and reaches both the seat back and the window, so
    the hole covers both the moving background and the (non-rigidly) moving subject.
    """
    phase = np.arange(num_frames, dtype=np.float64) / num_frames
    centre_x, centre_y = width / 2.0, height / 2.0
    # Leave the whole object inside the frame at the extremes: a hole cut by the border is easier.
    reach_x = centre_x - CARPHONE_OBJECT_SEMI_AXES[0] - 12
    reach_y = centre_y - CARPHONE_OBJECT_SEMI_AXES[1] - 24
    xs = centre_x + reach_x * np.sin(2.0 * np.pi * phase)
    ys = centre_y - reach_y * np.sin(4.0 * np.pi * phase)
    return np.stack([xs, ys], axis=1)


def carphone_holes(num_frames: int, height: int, width: int) -> np.ndarray:
    holes = np.zeros((num_frames, height, width), dtype=np.uint8)
    # Drawing with 4 bits of sub-pixel precision keeps the motion smooth rather than jumping by
    # whole pixels, and stays deterministic (no randomness anywhere in the path or shape).
    shift = 4
    scale = 1 << shift
    axes = (CARPHONE_OBJECT_SEMI_AXES[0] * scale, CARPHONE_OBJECT_SEMI_AXES[1] * scale)
    for index, (x, y) in enumerate(carphone_object_centres(num_frames, height, width)):
        centre = (int(round(x * scale)), int(round(y * scale)))
        cv2.ellipse(holes[index], centre, axes, 0.0, 0.0, 360.0, 1, thickness=-1, shift=shift)
    return holes.astype(bool)


def load_carphone(footage_dir: Path) -> BenchmarkClip:
    path = footage_dir / CARPHONE_FILE
    frames = read_frames(path).frames
    num_frames, height, width = frames.shape[:3]
    holes = carphone_holes(num_frames, height, width)
    semi_x, semi_y = CARPHONE_OBJECT_SEMI_AXES
    return BenchmarkClip(
        name="carphone",
        description=(
            f"{CARPHONE_FILE} all {num_frames} frames, moving camera and subject; holes = a "
            f"{2 * semi_x}x{2 * semi_y} px ellipse moving on a figure eight (face, seat back, "
            f"window, suit); truth = the original frames"
        ),
        source=str(path),
        frame_range=(0, num_frames),
        frames=blank_holes(frames, holes),
        holes=holes,
        truth=frames,
    )


def blank_holes(frames: np.ndarray, holes: np.ndarray) -> np.ndarray:
    blanked = frames.copy()
    blanked[holes] = 0
    return blanked


CLIP_LOADERS: dict[str, Callable[[Path], BenchmarkClip]] = {
    "balle": load_balle,
    "carphone": load_carphone,
}


def required_files(names: list[str]) -> list[str]:
    files = {"balle": BALLE_FILE, "carphone": CARPHONE_FILE}
    return [files[name] for name in names]


def check_footage_dir(footage_dir: Path, names: list[str]) -> None:
    """A clear error naming what is missing, instead of a decoder traceback later."""
    if not footage_dir.is_dir():
        raise SystemExit(
            f"footage folder {footage_dir} not found. The benchmark needs the real clips described "
            "in ../shared/footage/README.md (relative to the repository root); pass --footage DIR "
            "to point at another copy."
        )
    missing = [name for name in required_files(names) if not (footage_dir / name).is_file()]
    if missing:
        raise SystemExit(f"footage folder {footage_dir} lacks {', '.join(missing)}")


def load_clip(name: str, footage_dir: Path) -> BenchmarkClip:
    try:
        loader = CLIP_LOADERS[name]
    except KeyError:
        raise SystemExit(f"unknown clip {name!r}; choose from {', '.join(CLIP_LOADERS)}") from None
    return loader(footage_dir)


def with_exposure_flicker(clip: BenchmarkClip, amplitude: float, seed: int = 0) -> BenchmarkClip:
    """``clip`` with film flicker: every frame (input and truth alike) multiplied by its own
    exposure gain, drawn uniformly from [1 - amplitude, 1 + amplitude] (seeded). Content taken
    from another frame then carries that frame's exposure: what lighting compensation is for."""
    return replace(
        clip,
        name=f"{clip.name}-flicker{amplitude:g}",
        description=f"{clip.description}; exposure flicker: each frame x U[{1 - amplitude:g}, {1 + amplitude:g}] (seed {seed})",
        frames=exposure_flicker(np.broadcast_to(clip.frames, clip.frames.shape), amplitude, seed),
        truth=exposure_flicker(np.broadcast_to(clip.truth, clip.frames.shape), amplitude, seed),
    )


def exposure_flicker(frames: np.ndarray, amplitude: float, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8 frames, each multiplied by its own gain from U[1 - A, 1 + A] (seeded:
    the same seed gives the same gains, so input and truth flicker together)."""
    if not 0.0 < amplitude < 1.0:
        raise SystemExit(f"--flicker must be between 0 and 1, got {amplitude}")
    gains = np.random.default_rng(seed).uniform(1.0 - amplitude, 1.0 + amplitude, len(frames))
    return np.stack([np.clip(np.rint(frame * gain), 0, 255).astype(np.uint8) for frame, gain in zip(frames, gains)])

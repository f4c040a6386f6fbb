"""Regenerate the demo's damaged clip and its mask from examples/carphone.mp4.

Two kinds of damage an archive sees are burnt into the clean clip: a bright vertical film scratch
that drifts sideways through the shot, and a dark dust blob moving across it. The outputs are
lossless FFV1 with the clip's frame count and exact frame rate, so the damage sits exactly under
the mask and the original clip is the ground truth for the restored one:

    examples/carphone_damaged.mkv   the clip with the damage
    examples/carphone_mask.mkv      white where the damage is

    python examples/make_demo_damage.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from archive_inpaint.media import read_frames, write_frames

HERE = Path(__file__).resolve().parent
SCRATCH_VALUE = 236
DUST_VALUE = 28


def damage_masks(num_frames: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(scratch, dust) bool masks, each (T, H, W)."""
    scratch = np.zeros((num_frames, height, width), dtype=np.uint8)
    dust = np.zeros_like(scratch)
    for t in range(num_frames):
        phase = t / max(num_frames - 1, 1)
        x = int(round(0.22 * width + 0.10 * width * np.sin(2 * np.pi * phase)))
        scratch[t, :, x : x + 3] = 1
        centre = (
            int(0.15 * width + 0.7 * width * phase),
            int(0.62 * height + 0.1 * height * np.cos(6 * phase)),
        )
        cv2.ellipse(dust[t], centre, (9, 12), 25, 0, 360, 1, thickness=-1)
    return scratch.astype(bool), dust.astype(bool)


def main() -> None:
    clip = read_frames(HERE / "carphone.mp4")
    scratch, dust = damage_masks(clip.num_frames, clip.height, clip.width)
    damaged = clip.frames.copy()
    damaged[scratch] = SCRATCH_VALUE
    damaged[dust] = DUST_VALUE
    holes = scratch | dust
    write_frames(damaged, clip.fps, HERE / "carphone_damaged.mkv")
    write_frames(np.repeat(holes[..., None] * np.uint8(255), 3, axis=3), clip.fps, HERE / "carphone_mask.mkv")


if __name__ == "__main__":
    main()

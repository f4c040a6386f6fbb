"""Regenerate examples/carphone_mask.mkv: the demo's mask for examples/carphone.mp4.

Two kinds of damage an archive sees: a vertical film scratch that drifts sideways through the shot,
and a dust blob (or small object) moving across it. Written as a lossless FFV1 mask video
(white = remove), the same frame count and frame rate as the clip, so the masks line up exactly.

    python examples/make_demo_mask.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from archive_inpaint.media import read_frames, write_frames

HERE = Path(__file__).resolve().parent


def demo_masks(num_frames: int, height: int, width: int) -> np.ndarray:
    masks = np.zeros((num_frames, height, width), dtype=np.uint8)
    for t in range(num_frames):
        phase = t / max(num_frames - 1, 1)
        scratch_x = int(round(0.22 * width + 0.10 * width * np.sin(2 * np.pi * phase)))
        masks[t, :, scratch_x : scratch_x + 3] = 255
        blob_centre = (int(0.15 * width + 0.7 * width * phase), int(0.62 * height + 0.1 * height * np.cos(6 * phase)))
        cv2.ellipse(masks[t], blob_centre, (9, 12), 25, 0, 360, 255, thickness=-1)
    return masks


def main() -> None:
    clip = read_frames(HERE / "carphone.mp4")
    masks = demo_masks(clip.num_frames, clip.height, clip.width)
    write_frames(np.repeat(masks[..., None], 3, axis=3), clip.fps, HERE / "carphone_mask.mkv")


if __name__ == "__main__":
    main()

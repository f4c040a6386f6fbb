"""Content propagated from other frames of the shot along optical flow.

Used twice: a whole-frame (single-stage) fill takes the content found in place of its own hole
pixels (``paste_propagated``), and each patch stage of progressive learning is given it beside
its prior (``PatchStagePredictor.stage_prior``) and learns how far to trust it.

Why: a patch stage sees one frame's patch and the previous stage's fill of it (the prior).
Inside a moving hole that fill is wrong content at low frequencies, not missing detail
(BENCHMARKS.md, high resolution: the coarse fill sits 4.2 dB below what its resolution allows),
and a correction learnt from one frame's patch cannot supply content that is not in its input;
measured, it learnt to leave the prior alone. The content is usually in the shot: the hole
moves, or the camera does, and another frame shows what the hole covers. The whole-frame
network carries that content implicitly in its weights, which at full resolution cannot hold
it; here it is fetched explicitly, at the stage's own resolution, so fine detail arrives intact.

How, per hole pixel of a patch of frame t: for the other frames s nearest first (within a
radius), follow the flow t -> s to a position in s; take s's pixel there (bicubic) if the
position is inside the frame, not in s's hole, and the flow s -> t leads back (forward-backward
check: disagreement marks occlusions and flow errors). The first frame that passes supplies the
pixel. The patch stage gets this candidate and its validity as inputs and learns on pseudo-holes
how far to trust it, exactly as it will meet it in real holes.

Motion is estimated once, at the whole-frame stage's size, on that stage's filled frames (so it
exists inside holes), with OpenCV's DIS flow. Inside a hole the coarse fill is a guess, so the
flow there, and a margin around it that DIS's patches reach, is replaced by a completion from
the flow around it (OpenCV's Navier-Stokes inpainting per component, whose float path is
smooth where Telea's adds steps of over a pixel); in training the pseudo-hole is completed the
same way, so a pseudo-hole's candidate is as good as a real hole's would be, no better. Flow
fields are computed when first asked for, and the most recently used are kept within a memory
budget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import cv2
import numpy as np
import torch

from archive_inpaint.inference.tiles import Tile, tile_grid, tiles_touching
from archive_inpaint.media.frame_store import FrameStore
from archive_inpaint.training.stage_data import StageData
from archive_inpaint.training.stages import Stage
from archive_inpaint.training.working_set import WorkingSet

# Tiles for pasting into a whole frame: propagation is per pixel, so tiles need no overlap; they
# only bound the memory of the coordinate maps (a whole 4K frame's would be hundreds of MB).
PASTE_TILE = 256

# Whole-frame-stage px around a hole whose flow is completed rather than measured: DIS matches
# 8 px patches (medium preset), so flow that close to a hole was partly matched on the guess.
COMPLETION_MARGIN = 6
COMPLETION_RADIUS = 5
# Forward-backward check (Sundaram et al.'s rule, in whole-frame-stage px): |f + b|^2 may be at
# most this share of |f|^2 + |b|^2 plus a floor for sub-pixel noise.
CONSISTENCY_SHARE = 0.01
CONSISTENCY_FLOOR = 0.25
# A source region larger than this many tiles means the flow scattered the patch across the
# frame (a wrong estimate); that frame is skipped rather than read whole.
MAX_SOURCE_AREA_IN_TILES = 16


def complete_flow(flow: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``flow`` (h, w, 2) with the flow inside ``hole`` (h, w), dilated by the margin, replaced by
    a smooth continuation of the flow around it."""
    if not hole.any():
        return flow
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * COMPLETION_MARGIN + 1,) * 2)
    region = cv2.dilate(hole.astype(np.uint8), kernel)
    if region.all():
        # No measured flow anywhere: nothing to continue from; zero motion is the safe guess
        # (the forward-backward check and the hole test still apply).
        return np.zeros_like(flow)
    # The inpainting only reads COMPLETION_RADIUS px around the region: work on that crop (a
    # pseudo-hole is completed at every training step, and is small against the frame).
    rows, cols = np.nonzero(region)
    pad = COMPLETION_RADIUS + 2
    top, left = max(0, rows.min() - pad), max(0, cols.min() - pad)
    bottom, right = min(flow.shape[0], rows.max() + pad + 1), min(flow.shape[1], cols.max() + pad + 1)
    crop = region[top:bottom, left:right]
    completed = flow.copy()
    for channel in range(2):
        completed[top:bottom, left:right, channel] = cv2.inpaint(
            np.ascontiguousarray(flow[top:bottom, left:right, channel]), crop, COMPLETION_RADIUS, cv2.INPAINT_NS
        )
    return completed


class ShotMotion:
    """Optical flow between the frames of a shot at the whole-frame stage's size.

    ``frames``: (T, h, w) uint8 grey filled frames; ``holes``: (T, h, w) bool real holes there.
    """

    def __init__(self, frames: np.ndarray, holes: np.ndarray, radius: int, cache_bytes: int = 512 << 20) -> None:
        if frames.shape != holes.shape or frames.ndim != 3:
            raise ValueError(f"frames {frames.shape} and holes {holes.shape} must both be (T, h, w)")
        self.frames, self.holes = frames, holes
        self.radius = radius
        # How many flow fields (float32, two channels) fit the budget; at least one pair.
        self.cache_size = max(2, cache_bytes // (8 * frames.shape[1] * frames.shape[2]))
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._flows: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    @classmethod
    def from_network(
        cls,
        predict: Callable[[list[int]], torch.Tensor],
        working_set: WorkingSet,
        radius: int,
        cache_bytes: int = 512 << 20,
        batch: int = 4,
    ) -> ShotMotion:
        """From a trained network's fill of the working set: ``predict(frame_ids)`` is its image
        (N, 3, Hp, Wp) in [-1, 1] (as ``fill.method_predictor``), pasted into each frame's hole."""
        height, width = working_set.valid_height, working_set.valid_width
        holes = working_set.holes[:, 0, :height, :width].cpu().numpy()
        grey = np.empty((working_set.num_frames, height, width), dtype=np.uint8)
        # Frames without a hole are their own fill: the network only runs for the others.
        holed = [index for index in range(working_set.num_frames) if holes[index].any()]
        for first in range(0, working_set.num_frames, batch):
            ids = list(range(first, min(first + batch, working_set.num_frames)))
            images = working_set.images[ids, :, :height, :width].float()
            needing = [index for index in ids if index in holed]
            if needing:
                with torch.no_grad():
                    output = predict(needing).float()[..., :height, :width]
                rows = [ids.index(index) for index in needing]
                hole = working_set.holes[needing, :, :height, :width].float()
                images[rows] = output * hole + images[rows] * (1.0 - hole)
            rgb = ((images.clamp(-1, 1).permute(0, 2, 3, 1).cpu().numpy() + 1.0) * 127.5).round()
            grey[ids] = [cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY) for image in rgb]
        return cls(grey, holes, radius, cache_bytes)

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    def forget_flows(self) -> None:
        """Free the kept flow fields (they are recomputed, identically, when asked for again)."""
        self._flows.clear()

    @property
    def size(self) -> tuple[int, int]:
        return self.frames.shape[1], self.frames.shape[2]

    def sources(self, frame: int) -> list[int]:
        """The frames that may supply ``frame``'s hole pixels, nearest first (earlier first on a
        tie), within the radius."""
        others = [s for s in range(self.num_frames) if s != frame and abs(s - frame) <= self.radius]
        return sorted(others, key=lambda s: (abs(s - frame), s))

    def flow(self, frame: int, source: int, extra_hole: np.ndarray | None = None) -> np.ndarray:
        """(h, w, 2) float32 flow from ``frame`` to ``source`` (x, y displacements), completed
        inside ``frame``'s hole and ``extra_hole`` (a pseudo-hole, training only)."""
        key = (frame, source)
        completed = self._flows.get(key)
        if completed is None:
            measured = self._dis.calc(self.frames[frame], self.frames[source], None)
            completed = complete_flow(measured, self.holes[frame])
            self._flows[key] = completed
            if len(self._flows) > self.cache_size:
                self._flows.popitem(last=False)
        else:
            self._flows.move_to_end(key)
        if extra_hole is None or not extra_hole.any():
            return completed
        # Measured flow under a pseudo-hole was matched on true content, which a real hole's
        # never is: complete it too, so training meets the candidate inference will.
        return complete_flow(completed, extra_hole)


def propagate(
    motion: ShotMotion,
    data: StageData,
    frame: int,
    tile: Tile,
    wanted: np.ndarray,
    extra_hole: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate content for the ``wanted`` pixels (h, w) of ``tile`` of ``frame`` at ``data``'s
    stage, from the nearest other frames that show it.

    ``extra_hole``: a pseudo-hole at the motion's size (training), completed like a real one.
    Returns (candidate (h, w, 3) float32 in [-1, 1], valid (h, w) bool); invalid pixels are 0.
    """
    stage_h, stage_w = data.stage.height, data.stage.width
    motion_h, motion_w = motion.size
    scale_y, scale_x = motion_h / stage_h, motion_w / stage_w
    # Pixel centres of the tile in the motion's coordinates (as a whole-frame resize maps them).
    ys = (np.arange(tile.top, tile.bottom, dtype=np.float32) + 0.5) * scale_y - 0.5
    xs = (np.arange(tile.left, tile.right, dtype=np.float32) + 0.5) * scale_x - 0.5
    grid_x, grid_y = np.meshgrid(xs, ys)
    candidate = np.zeros((tile.height, tile.width, 3), dtype=np.float32)
    valid = np.zeros((tile.height, tile.width), dtype=bool)
    todo = wanted.astype(bool).copy()
    for source in motion.sources(frame):
        if not todo.any():
            break
        forward = cv2.remap(
            motion.flow(frame, source, extra_hole), grid_x, grid_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        to_x, to_y = grid_x + forward[..., 0], grid_y + forward[..., 1]
        backward = cv2.remap(motion.flow(source, frame), to_x, to_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mismatch = np.sum((forward + backward) ** 2, axis=-1)
        spread = np.sum(forward**2, axis=-1) + np.sum(backward**2, axis=-1)
        # Into the stage's pixel coordinates.
        stage_x, stage_y = (to_x + 0.5) / scale_x - 0.5, (to_y + 0.5) / scale_y - 0.5
        use = (
            todo
            & (mismatch <= CONSISTENCY_SHARE * spread + CONSISTENCY_FLOOR)
            & (stage_x >= 0)
            & (stage_x <= stage_w - 1)
            & (stage_y >= 0)
            & (stage_y <= stage_h - 1)
        )
        if not use.any():
            continue
        # The source region under the used positions, with 2 px for the bicubic kernel.
        top = max(0, int(np.floor(stage_y[use].min())) - 2)
        left = max(0, int(np.floor(stage_x[use].min())) - 2)
        bottom = min(stage_h, int(np.ceil(stage_y[use].max())) + 3)
        right = min(stage_w, int(np.ceil(stage_x[use].max())) + 3)
        if (bottom - top) * (right - left) > MAX_SOURCE_AREA_IN_TILES * tile.height * tile.width:
            continue
        box = Tile(top, left, bottom - top, right - left)
        map_x, map_y = stage_x - left, stage_y - top
        # A source pixel next to the source's hole is part-hole after resampling: dilate by 1.
        source_hole = cv2.dilate(data.hole(source, box).astype(np.uint8), np.ones((3, 3), np.uint8))
        in_hole = cv2.remap(source_hole, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE) > 0
        use &= ~in_hole
        if not use.any():
            continue
        sample = cv2.remap(data.image(source, box), map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        candidate[use] = sample[use]
        valid |= use
        todo &= ~use
    return np.clip(candidate, -1.0, 1.0), valid


def paste_propagated(motion: ShotMotion, frames: FrameStore, holes: FrameStore, output: FrameStore) -> float:
    """Replace the hole pixels of ``output`` (the filled frames) with the content other frames
    show, where found; returns the share of hole pixels that got it. Only hole pixels change,
    so every other pixel of ``output`` (the input's, or a feathered band) stays as it was."""
    data = StageData(frames, holes, Stage(0, frames.height, frames.width))
    grid = tile_grid(frames.height, frames.width, PASTE_TILE, 0)
    peak = float(np.iinfo(output.dtype).max)
    found = total = 0
    for index in range(frames.num_frames):
        hole = holes.frame(index)[..., 0].astype(bool)
        if not hole.any():
            continue
        filled = output.frame(index)
        for tile in tiles_touching(hole, grid, 0):
            rows, cols = slice(tile.top, tile.bottom), slice(tile.left, tile.right)
            candidate, valid = propagate(motion, data, index, tile, hole[rows, cols])
            values = np.clip(np.rint((candidate[valid] + 1.0) * (peak / 2.0)), 0, peak)
            filled[rows, cols][valid] = values.astype(output.dtype)
            found += int(valid.sum())
        total += int(hole.sum())
        output.write(index, filled)
    return found / total if total else 0.0

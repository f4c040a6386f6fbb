"""Content propagated from other frames of the shot along optical flow.

Used twice: a whole-frame (single-stage) fill takes the content found in place of its own hole
pixels (inference/propagated_paste.py), and each patch stage of progressive learning is given it
beside its prior (``PatchStagePredictor.stage_prior``) and learns how far to trust it.

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
pixel; looking among the earlier and the later frames separately gives the nearest source on
each side, which are averaged by nearness in time (``content_for_patch``; the whole-frame fill
adds ramps between them, propagated_paste.py). The patch stage gets this candidate and its
validity as inputs and learns on pseudo-holes how far to trust it, exactly as it will meet it
in real holes.

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
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from archive_inpaint.inference.agreement import SideContent
from archive_inpaint.inference.tiles import Tile
from archive_inpaint.training.stage_data import StageData
from archive_inpaint.training.working_set import WorkingSet

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
# Lighting compensation of pasted content: matches measured on the known pixels within this many
# px of the hole (24 scored better than 6 and 12 on carphone); only pairs above this level
# (share of peak: a ratio of dark, noisy values means little) count, and with fewer than this
# many a channel keeps its gain of 1; gains are limited to this factor either way (a larger one
# is a wrong match, not an exposure change).
LIGHTING_RING = 24
LIGHTING_MIN_MATCHES = 64
LIGHTING_MIN_LEVEL = 0.1
LIGHTING_MAX_GAIN = 1.5
# Px of a source frame's own hole (at the stage's resolution) that supply nothing: 1, because a
# pixel next to the hole is part-hole after resampling. Wider keeps a loose mask's leftovers (an
# object's shadow or motion blur outside it) out of other frames' holes, but sends pixels to
# farther frames: measured on carphone (a tight mask) 2 px cost 0.24 dB and 4 px 0.72 dB; on
# balle (a ball's halo outside its mask; the plate standing in for the network's fill) 4 px
# gained 0.5 dB. A loose mask is better dilated (``--dilate``), which protects every frame alike.
SOURCE_HOLE_MARGIN = 1


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

    def sources_by_direction(self, frame: int) -> list[list[int]]:
        """``sources`` split into the earlier frames and the later ones, each nearest first."""
        ordered = self.sources(frame)
        return [[s for s in ordered if s < frame], [s for s in ordered if s > frame]]

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


class WorkingFills:
    """The whole-frame network's fill at the working size, composited into each frame's hole and
    kept in grey: what ``ShotMotion`` measures flow on.

    The whole-frame fill needs the network's output twice, once for the native-resolution
    composite and once for the motion; ``recording(predict)`` keeps each batch's output as the
    fill goes, so the network runs once per frame with a hole. ``motion`` computes only what was
    not recorded (frames without a hole are their own fill)."""

    def __init__(self, working_set: WorkingSet) -> None:
        self.working_set = working_set
        height, width = working_set.valid_height, working_set.valid_width
        self.holes = working_set.holes[:, 0, :height, :width].cpu().numpy()
        self.grey = np.empty((working_set.num_frames, height, width), dtype=np.uint8)
        self.recorded = np.zeros(working_set.num_frames, dtype=bool)

    def record(self, frame_ids: list[int], output: torch.Tensor) -> None:
        """Keep ``output`` (N, 3, Hp, Wp) in [-1, 1], the network's image of ``frame_ids``."""
        height, width = self.grey.shape[1:]
        images = self.working_set.images[frame_ids, :, :height, :width].float()
        hole = self.working_set.holes[frame_ids, :, :height, :width].float()
        filled = output.float()[..., :height, :width] * hole + images * (1.0 - hole)
        self._keep(frame_ids, filled)

    def recording(self, predict: Callable[[list[int]], torch.Tensor]) -> Callable[[list[int]], torch.Tensor]:
        """``predict``, keeping what it returns."""

        def predict_and_record(frame_ids: list[int]) -> torch.Tensor:
            output = predict(frame_ids)
            self.record(frame_ids, output)
            return output

        return predict_and_record

    def motion(
        self,
        predict: Callable[[list[int]], torch.Tensor],
        radius: int,
        cache_bytes: int = 512 << 20,
        batch: int = 4,
    ) -> ShotMotion:
        """The shot's motion on these fills; ``predict`` runs for holed frames not yet recorded."""
        height, width = self.grey.shape[1:]
        missing = [index for index in range(len(self.recorded)) if not self.recorded[index]]
        # In batches: a long shot's whole working set in float would not be small.
        for first in range(0, len(missing), batch):
            ids = missing[first : first + batch]
            holed = [index for index in ids if self.holes[index].any()]
            unholed = [index for index in ids if index not in holed]
            if unholed:
                self._keep(unholed, self.working_set.images[unholed, :, :height, :width].float())
            if holed:
                with torch.no_grad():
                    self.record(holed, predict(holed))
        return ShotMotion(self.grey, self.holes, radius, cache_bytes)

    def _keep(self, frame_ids: list[int], images: torch.Tensor) -> None:
        rgb = ((images.clamp(-1, 1).permute(0, 2, 3, 1).cpu().numpy() + 1.0) * 127.5).round()
        for index, image in zip(frame_ids, rgb):
            self.grey[index] = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY)
        self.recorded[frame_ids] = True


@dataclass
class Found:
    """What ``propagate`` found for a tile of a frame."""

    candidate: np.ndarray  # (h, w, 3) float32 in [-1, 1]; 0 where not valid
    valid: np.ndarray  # (h, w) bool
    origin: np.ndarray  # (h, w) int32: the frame each valid pixel came from, -1 elsewhere
    # Per source frame used: (this frame's values, the source's values), (n, 3) each in [-1, 1],
    # at the ``around`` pixels the source also shows (for lighting compensation).
    matches: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def propagate(
    motion: ShotMotion,
    data: StageData,
    frame: int,
    tile: Tile,
    wanted: np.ndarray,
    extra_hole: np.ndarray | None = None,
    around: np.ndarray | None = None,
    sources: list[int] | None = None,
) -> Found:
    """Candidate content for the ``wanted`` pixels (h, w) of ``tile`` of ``frame`` at ``data``'s
    stage, from the nearest other frames that show it, and which frame supplied each pixel.

    ``extra_hole``: a pseudo-hole at the motion's size (training), completed like a real one.
    ``around`` (h, w) bool: known pixels of this frame near its hole; for each source frame used,
    the pairs of pixels there that it shows too are returned (for lighting compensation).
    ``sources``: the frames to look in, in order of preference (default: ``motion.sources``).
    """
    stage_h, stage_w = data.stage.height, data.stage.width
    motion_h, motion_w = motion.size
    scale_y, scale_x = motion_h / stage_h, motion_w / stage_w
    # Pixel centres of the tile in the motion's coordinates (as a whole-frame resize maps them).
    ys = (np.arange(tile.top, tile.bottom, dtype=np.float32) + 0.5) * scale_y - 0.5
    xs = (np.arange(tile.left, tile.right, dtype=np.float32) + 0.5) * scale_x - 0.5
    grid_x, grid_y = np.meshgrid(xs, ys)
    found = Found(
        np.zeros((tile.height, tile.width, 3), dtype=np.float32),
        np.zeros((tile.height, tile.width), dtype=bool),
        np.full((tile.height, tile.width), -1, dtype=np.int32),
    )
    own = data.image(frame, tile) if around is not None and around.any() else None
    todo = wanted.astype(bool).copy()
    for source in motion.sources(frame) if sources is None else sources:
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
        shows = (
            (mismatch <= CONSISTENCY_SHARE * spread + CONSISTENCY_FLOOR)
            & (stage_x >= 0)
            & (stage_x <= stage_w - 1)
            & (stage_y >= 0)
            & (stage_y <= stage_h - 1)
        )
        use = todo & shows
        if not use.any():
            continue
        limit = MAX_SOURCE_AREA_IN_TILES * tile.height * tile.width
        box = _source_box(stage_y, stage_x, use, stage_h, stage_w)
        if box.height * box.width > limit:
            continue
        seen = around & shows if own is not None else np.zeros_like(use)
        if seen.any():
            # The lighting pairs widen the read where they fit; they never decide whether this
            # frame supplies the hole (without them it would have).
            wider = _source_box(stage_y, stage_x, use | seen, stage_h, stage_w)
            if wider.height * wider.width <= limit:
                box = wider
        top, left, bottom, right = box.top, box.left, box.bottom, box.right
        # (Pairs outside a box that could not widen are left out, not sampled off its border.)
        seen &= (stage_y >= top) & (stage_y <= bottom - 1) & (stage_x >= left) & (stage_x <= right - 1)
        map_x, map_y = stage_x - left, stage_y - top
        grow = 2 * SOURCE_HOLE_MARGIN + 1
        source_hole = cv2.dilate(data.hole(source, box).astype(np.uint8), np.ones((grow, grow), np.uint8))
        in_hole = cv2.remap(source_hole, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE) > 0
        use &= ~in_hole
        seen &= ~in_hole
        if not use.any():
            continue
        sample = cv2.remap(data.image(source, box), map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        found.candidate[use] = sample[use]
        found.valid |= use
        found.origin[use] = source
        if own is not None and seen.any():
            found.matches[source] = (own[seen], sample[seen])
        todo &= ~use
    found.candidate = np.clip(found.candidate, -1.0, 1.0)
    return found


def _source_box(stage_y: np.ndarray, stage_x: np.ndarray, where: np.ndarray, height: int, width: int) -> Tile:
    """The source region under the positions ``where``, with 2 px for the bicubic kernel."""
    top = max(0, int(np.floor(stage_y[where].min())) - 2)
    left = max(0, int(np.floor(stage_x[where].min())) - 2)
    bottom = min(height, int(np.ceil(stage_y[where].max())) + 3)
    right = min(width, int(np.ceil(stage_x[where].max())) + 3)
    return Tile(top, left, bottom - top, right - left)


def lighting_gains(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Per-channel gain that brings another frame's pixels to this frame's lighting, from
    matching pixels ``ours`` and ``theirs`` (n, 3) in [-1, 1]: the median of the pairs' ratios
    in code values (0 = black), over pairs bright enough for a ratio to mean something; 1 where
    the evidence is thin.

    Why a gain: an exposure change (film flicker, a camera's automatic exposure) multiplies
    linear light, and for a power-law transfer that is a gain on code values too. Why a median
    of per-pair ratios: a pair misplaced by the flow (edges, occlusions) is one outlier among
    them, where a ratio of the two sides' medians drifts with what the misplaced pairs show
    (measured on carphone without flicker: -0.16 dB for that form, -0.03 dB for this one)."""
    gains = np.ones(3, dtype=np.float32)
    ours, theirs = (ours + 1.0) / 2.0, (theirs + 1.0) / 2.0
    for channel in range(3):
        usable = (ours[:, channel] >= LIGHTING_MIN_LEVEL) & (theirs[:, channel] >= LIGHTING_MIN_LEVEL)
        if usable.sum() < LIGHTING_MIN_MATCHES:
            continue
        log_ratio = np.median(np.log(ours[usable, channel] / theirs[usable, channel]))
        gains[channel] = np.exp(np.clip(log_ratio, -np.log(LIGHTING_MAX_GAIN), np.log(LIGHTING_MAX_GAIN)))
    return gains


def apply_lighting(found: Found, gains: dict[int, np.ndarray]) -> None:
    """Bring each source frame's content in ``found`` to this frame's lighting, in place."""
    for source, gain in gains.items():
        from_source = found.origin == source
        if from_source.any():
            found.candidate[from_source] = np.clip((found.candidate[from_source] + 1.0) * gain - 1.0, -1.0, 1.0)


def nearness_weighted(
    frame: int, directions: list[Found], ramps: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The content found looking in each direction (earlier frames, later frames), averaged
    with weights falling with each pixel's source's distance in time from ``frame`` (1/|dt|),
    times each direction's ``ramps`` (h, w) where given. Returns (the weights' sum (h, w), the
    weighted mean (h, w, 3), 0 where the sum is 0)."""
    weight_sum = np.zeros(directions[0].valid.shape, dtype=np.float32)
    mixed = np.zeros(directions[0].candidate.shape, dtype=np.float32)
    for index, found in enumerate(directions):
        nearness = np.where(found.valid, 1.0 / np.maximum(np.abs(found.origin - frame), 1), 0.0).astype(np.float32)
        weight = nearness if ramps is None else nearness * ramps[index]
        weight_sum += weight
        mixed += weight[..., None] * found.candidate
    covered = weight_sum > 0
    mixed[covered] /= weight_sum[covered][:, None]
    return weight_sum, mixed


@dataclass
class PatchContent:
    """Other frames' content for one patch, as a patch stage is given it."""

    candidate: np.ndarray  # (h, w, 3) float32 in [-1, 1]; 0 where not valid
    valid: np.ndarray  # (h, w) bool
    # Blended: the earlier and the later frames' content apart (for the agreement check).
    sides: tuple[SideContent, SideContent] | None = None


def content_for_patch(
    motion: ShotMotion,
    data: StageData,
    frame: int,
    tile: Tile,
    wanted: np.ndarray,
    extra_hole: np.ndarray | None = None,
    lighting: bool = False,
    blend: bool = False,
) -> PatchContent:
    """Content for the ``wanted`` pixels of one tile (``propagate``): with ``blend``, the nearest
    frame before and the nearest after that show each pixel, averaged by nearness in time (as the
    whole-frame fill does, inference/propagated_paste.py: less of any one frame's grain, and no
    switch of source from one frame to the next); else the nearest frame's alone. With
    ``lighting``, each source's content is brought to this frame's lighting, with gains measured
    on the tile's own known pixels around ``wanted``: a patch stage sees one tile at a time, in
    training as in inference."""
    around = lighting_ring(wanted) if lighting and wanted.any() else None
    orders = motion.sources_by_direction(frame) if blend else [motion.sources(frame)]
    directions = [propagate(motion, data, frame, tile, wanted, extra_hole, around, order) for order in orders]
    if around is not None:
        gains = gains_per_source(directions)
        for found in directions:
            apply_lighting(found, gains)
    if len(directions) == 1:
        return PatchContent(directions[0].candidate, directions[0].valid)
    weight_sum, mixed = nearness_weighted(frame, directions)
    earlier, later = (SideContent(found.candidate, found.valid) for found in directions)
    return PatchContent(mixed, weight_sum > 0, (earlier, later))


def lighting_ring(hole: np.ndarray) -> np.ndarray:
    """The known pixels around ``hole`` where lighting is compared (within ``LIGHTING_RING`` px)."""
    return _ring(hole, LIGHTING_RING)


def _ring(hole: np.ndarray, width: int) -> np.ndarray:
    """The known pixels within ``width`` px of ``hole`` (H, W), computed in the hole's box."""
    rows, cols = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
    top, bottom = max(0, rows[0] - width), min(hole.shape[0], rows[-1] + width + 1)
    left, right = max(0, cols[0] - width), min(hole.shape[1], cols[-1] + width + 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    box = hole[top:bottom, left:right]
    ring = np.zeros_like(hole)
    ring[top:bottom, left:right] = (cv2.dilate(box.astype(np.uint8), kernel) > 0) & ~box
    return ring


def gains_per_source(pieces: list[Found]) -> dict[int, np.ndarray]:
    """Each source frame's lighting gains, from its matches over all tiles of the frame."""
    sources = {source for found in pieces for source in found.matches}
    gains = {}
    for source in sources:
        ours = np.concatenate([found.matches[source][0] for found in pieces if source in found.matches])
        theirs = np.concatenate([found.matches[source][1] for found in pieces if source in found.matches])
        gains[source] = lighting_gains(ours, theirs)
    return gains

"""Each trained stage as a predictor: the previous stage's result for any box of the next stage.

Training and inference go through the same two classes, so the prior a patch stage is trained
with is computed exactly as the prior it is filled with: by the previous stage, with the holes
of that moment (real holes at inference; real plus pseudo-holes in training, so that a
pseudo-hole's prior is a genuine lower-resolution fill, not a blurred copy of the truth).

* ``CoarseStagePredictor``: stage 0, the whole-frame network on the working set.
* ``PatchStagePredictor``: a patch stage; it predicts any box of its own resolution from its
  image, its hole and its own prior (asked of the stage below), with some context around it.
  With the shot's motion, the prior also carries content propagated from other frames
  (``propagation.py``): the image the stage corrects is the previous stage's fill with that
  content pasted in where it was found, followed by the plain fill and the validity mask. With
  an agreement check, content the prior contradicts at low frequencies counts as not found
  (partly, between the check's thresholds): the stage cannot learn to trust content that the
  flow fetched from the wrong place. Where frames before and after both show a pixel, the two
  judge each other instead of the prior (agreement.py).
"""

from __future__ import annotations

import numpy as np
import torch

from archive_inpaint.config import ProgressiveConfig
from archive_inpaint.inference.agreement import AgreementCheck
from archive_inpaint.inference.tiles import BlendedRegion, Tile, blend_tiles, tile_grid, tiles_touching
from archive_inpaint.inference.propagation import ShotMotion, content_for_patch
from archive_inpaint.models.iivi_net import DOWNSAMPLE_FACTOR, IIVINet, IIVIOutput
from archive_inpaint.training.stage_data import StageData, place_hole, resample_onto
from archive_inpaint.training.working_set import WorkingSet

# (frame, tile of the next stage, extra hole on that tile or None) per item.
ExtraHoles = list[np.ndarray | None] | None

# Prior channels of a patch stage: the previous stage's fill (3); with propagation, the image
# to correct (3), the previous stage's fill (3) and where propagated content was found (1).
PLAIN_PRIOR_CHANNELS = 3
PROPAGATED_PRIOR_CHANNELS = 7


def prior_channels(propagation: bool) -> int:
    return PROPAGATED_PRIOR_CHANNELS if propagation else PLAIN_PRIOR_CHANNELS


class CoarseStagePredictor:
    def __init__(self, network: IIVINet, working_set: WorkingSet) -> None:
        self.network, self.working_set = network, working_set
        self.size = (working_set.valid_height, working_set.valid_width)
        self._cache: tuple[int, torch.Tensor] | None = None

    @torch.no_grad()
    def composite(self, frame_ids: list[int], extra: list[tuple[Tile, np.ndarray] | None]) -> torch.Tensor:
        """(N, 3, h, w): the filled frames at the working size, known pixels kept."""
        ws = self.working_set
        images = ws.images[frame_ids].float().contiguous(memory_format=torch.channels_last)
        holes = ws.holes[frame_ids].clone()
        for item, placed in enumerate(extra):
            if placed is not None:
                box, hole = placed
                holes[item, 0, box.top : box.bottom, box.left : box.right] |= torch.from_numpy(hole).to(holes.device)
        holes = holes.float()
        output = self.network(images, holes.contiguous(memory_format=torch.channels_last)).final
        filled = output * holes + images * (1.0 - holes)
        return filled[..., : self.size[0], : self.size[1]]

    def prior_for(
        self, frame_ids: list[int], tiles: list[Tile], next_size: tuple[int, int], extra: ExtraHoles = None
    ) -> torch.Tensor:
        if extra is None and len(set(frame_ids)) == 1:
            # Inference asks for many tiles of one frame: fill that frame once.
            if self._cache is None or self._cache[0] != frame_ids[0]:
                self._cache = (frame_ids[0], self.composite([frame_ids[0]], [None]))
            source = self._cache[1].expand(len(tiles), -1, -1, -1)
        else:
            placed = [
                None if hole is None else place_hole(hole, tile, next_size, self.size)
                for tile, hole in zip(tiles, extra or [None] * len(tiles))
            ]
            source = self.composite(frame_ids, placed)
        return resample_onto(source, (0, 0), self.size, next_size, tiles)


def pad_to_stride(tensor: torch.Tensor) -> torch.Tensor:
    """Reflect-pad (N, C, h, w) on the bottom/right to multiples of the network's stride."""
    height, width = tensor.shape[-2:]
    pad_h, pad_w = -height % DOWNSAMPLE_FACTOR, -width % DOWNSAMPLE_FACTOR
    if not pad_h and not pad_w:
        return tensor
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return torch.nn.functional.pad(tensor, (0, pad_w, 0, pad_h), mode=mode)


class PatchStagePredictor:
    """A patch stage. ``tiling`` says how it fills a whole frame (tile size, overlap, margin,
    batch); ``context`` is the margin it sees around a box it is asked for in training;
    ``motion`` (or None) the shot's flow, for content propagated from other frames."""

    def __init__(
        self,
        network: IIVINet,
        data: StageData,
        previous: CoarseStagePredictor | PatchStagePredictor,
        tiling: ProgressiveConfig,
        device: torch.device,
        motion: ShotMotion | None = None,
        lighting: bool = False,
        blend: bool = False,
        agreement: AgreementCheck | None = None,
    ) -> None:
        expected = prior_channels(motion is not None)
        if network.config.prior_channels != expected:
            raise ValueError(
                f"a patch stage {'with' if motion is not None else 'without'} propagation needs a "
                f"network with {expected} prior channels, got {network.config.prior_channels}"
            )
        if motion is not None and motion.num_frames != data.num_frames:
            raise ValueError(f"motion of {motion.num_frames} frames for a shot of {data.num_frames}")
        self.network, self.data, self.previous, self.motion = network, data, previous, motion
        self.size = (data.stage.height, data.stage.width)
        self.tiling, self.device = tiling, device
        self.context = tiling.patch_size // 4
        # Propagated content brought to each frame's lighting, and the nearest sources before and
        # after averaged (ContentPropagationConfig.lighting, .blend_sources).
        self.lighting, self.blend = lighting, blend
        # Content is trusted only where it agrees with the prior (blur in px of this stage).
        self.agreement = agreement
        self._cache: tuple[int, torch.Tensor] | None = None

    def use_data(self, data: StageData) -> None:
        """Read frames from ``data`` from now on (e.g. to fill frames of another store of the
        same shot with the trained stage); forgets the frame it had filled."""
        if self.motion is not None and self.motion.num_frames != data.num_frames:
            raise ValueError(f"motion of {self.motion.num_frames} frames for a shot of {data.num_frames}")
        self.data, self._cache = data, None

    def inputs(self, frame_ids: list[int], tiles: list[Tile], extra: ExtraHoles = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, holes) of ``tiles`` as (N, 3, h, w) floats and (N, 1, h, w) {0, 1}."""
        images = np.stack([self.data.image(f, t) for f, t in zip(frame_ids, tiles)])
        holes = np.stack([self.data.hole(f, t) for f, t in zip(frame_ids, tiles)])
        if extra is not None:
            holes = holes | np.stack([np.zeros_like(h) if e is None else e for h, e in zip(holes, extra)])
        return (
            torch.from_numpy(images).permute(0, 3, 1, 2).to(self.device),
            torch.from_numpy(holes)[:, None].to(self.device, torch.float32),
        )

    def stage_prior(
        self, frame_ids: list[int], tiles: list[Tile], holes: torch.Tensor, extra: ExtraHoles = None
    ) -> torch.Tensor:
        """The network's prior input for ``tiles`` whose holes (real and extra) are ``holes``:
        the previous stage's fill, and with motion the propagated content (see the module)."""
        prior = self.previous.prior_for(frame_ids, tiles, self.size, extra)
        if self.motion is None:
            return prior
        wanted = holes[:, 0].cpu().numpy() > 0.5
        found = []
        for index, (frame, tile) in enumerate(zip(frame_ids, tiles)):
            hole = None if extra is None else extra[index]
            coarse_hole = None
            if hole is not None and hole.any():
                # The pseudo-hole at the motion's size, for its flow to be completed too.
                box, placed = place_hole(hole, tile, self.size, self.motion.size)
                coarse_hole = np.zeros(self.motion.size, dtype=bool)
                coarse_hole[box.top : box.bottom, box.left : box.right] = placed
            found.append(
                content_for_patch(
                    self.motion, self.data, frame, tile, wanted[index], coarse_hole, self.lighting, self.blend
                )
            )
        candidate = torch.from_numpy(np.stack([f.candidate for f in found])).permute(0, 3, 1, 2).to(prior)
        valid = torch.from_numpy(np.stack([f.valid for f in found]))[:, None].to(prior)
        pasted = valid * candidate + (1.0 - valid) * prior
        if self.agreement is not None:
            # Per tile, as in training: the same tile gets the same input either way.
            as_images = [t.permute(0, 2, 3, 1).float().cpu().numpy() for t in (pasted, prior)]
            trust = np.stack([self.agreement.judge(c, p, f.sides) for c, p, f in zip(*as_images, found)])
            valid = valid * torch.from_numpy(trust)[:, None].to(prior)
            pasted = valid * candidate + (1.0 - valid) * prior
        return torch.cat([pasted, prior, valid], dim=1)

    def run(
        self, images: torch.Tensor, holes: torch.Tensor, prior: torch.Tensor
    ) -> tuple[torch.Tensor, IIVIOutput]:
        """The network on inputs of any size (padded to the stride); cropped back."""
        height, width = images.shape[-2:]
        output = self.network(pad_to_stride(images), pad_to_stride(holes), pad_to_stride(prior))
        return output.final[..., :height, :width], output

    @torch.no_grad()
    def predict(
        self, frame_ids: list[int], tiles: list[Tile], extra: ExtraHoles = None, raw: bool = False
    ) -> torch.Tensor:
        """(N, 3, h, w) in [-1, 1]: the stage's fill of ``tiles`` composited with known pixels
        (``raw``: the network's own image everywhere, which a feathered edge blends with)."""
        images, holes = self.inputs(frame_ids, tiles, extra)
        prior = self.stage_prior(frame_ids, tiles, holes, extra)
        final, _ = self.run(images, holes, prior)
        return final if raw else final * holes + images * (1.0 - holes)

    def fill_tiles(self, frame_id: int, hole: np.ndarray, all_tiles: bool = False) -> tuple[BlendedRegion | None, int]:
        """This stage's fill of one frame with ``hole`` (its real hole at this stage's size):
        the tiles touching the hole (or ``all_tiles``), predicted in batches and blended.
        Returns the blend (values in [-1, 1]) and the number of tiles computed."""
        height, width = self.size
        grid = tile_grid(height, width, self.tiling.patch_size, self.tiling.tile_overlap)
        tiles = grid if all_tiles else tiles_touching(hole, grid, self.tiling.tile_margin)

        def predict(batch: list[Tile]) -> np.ndarray:
            # Raw: callers use the hole's pixels, and a feathered composite the band around it.
            return self.predict([frame_id] * len(batch), batch, raw=True).permute(0, 2, 3, 1).float().cpu().numpy()

        blended = blend_tiles(height, width, tiles, predict, self.tiling.tile_overlap, self.tiling.tile_batch_size)
        return blended, len(tiles)

    @torch.no_grad()
    def filled_frame(self, frame_id: int) -> torch.Tensor:
        """(1, 3, H, W) at this stage's size: the frame with its hole filled tile by tile.
        Kept for the last frame asked: inference asks for many tiles of one frame in a row."""
        if self._cache is None or self._cache[0] != frame_id:
            whole = Tile(0, 0, *self.size)
            image = self.data.image(frame_id, whole)
            hole = self.data.hole(frame_id, whole)
            blended, _ = self.fill_tiles(frame_id, hole)
            if blended is not None:
                rows, cols = blended.rows_and_cols()
                image[rows, cols] = np.where(hole[rows, cols, None], blended.values, image[rows, cols])
            self._cache = (frame_id, torch.from_numpy(image).permute(2, 0, 1)[None].to(self.device))
        return self._cache[1]

    def prior_for(
        self, frame_ids: list[int], tiles: list[Tile], next_size: tuple[int, int], extra: ExtraHoles = None
    ) -> torch.Tensor:
        """The next stage's prior on ``tiles``.

        At inference (no extra holes) every tile of a frame resamples the same filled frame, so
        neighbouring tiles get the same prior where they overlap and each part of it is computed
        once. In training, each patch hides its own pseudo-hole, so each gets this stage's fill
        of the box under it, with ``context`` px around it so the fill near the edge sees past it.
        """
        if extra is None and len(set(frame_ids)) == 1:
            source = self.filled_frame(frame_ids[0]).expand(len(tiles), -1, -1, -1)
            return resample_onto(source, (0, 0), self.size, next_size, tiles)
        priors = []
        for index, (frame, tile) in enumerate(zip(frame_ids, tiles)):
            hole = None if extra is None else extra[index]
            if hole is None:
                hole = np.zeros((tile.height, tile.width), dtype=bool)
            box, here = place_hole(hole, tile, next_size, self.size)
            region = Tile(
                max(0, box.top - self.context),
                max(0, box.left - self.context),
                min(self.size[0], box.bottom + self.context) - max(0, box.top - self.context),
                min(self.size[1], box.right + self.context) - max(0, box.left - self.context),
            )
            region_hole = np.zeros((region.height, region.width), dtype=bool)
            region_hole[box.top - region.top : box.bottom - region.top, box.left - region.left : box.right - region.left] = here
            filled = self.predict([frame], [region], [region_hole])
            priors.append(resample_onto(filled, (region.top, region.left), self.size, next_size, [tile]))
        return torch.cat(priors)

"""Each trained stage as a predictor: the previous stage's result for any box of the next stage.

Training and inference go through the same two classes, so the prior a patch stage is trained
with is computed exactly as the prior it is filled with: by the previous stage, with the holes
of that moment (real holes at inference; real plus pseudo-holes in training, so that a
pseudo-hole's prior is a genuine lower-resolution fill, not a blurred copy of the truth).

* ``CoarseStagePredictor``: stage 0, the whole-frame network on the working set.
* ``PatchStagePredictor``: a patch stage; it predicts any box of its own resolution from its
  image, its hole and its own prior (asked of the stage below), with some context around it.
"""

from __future__ import annotations

import numpy as np
import torch

from archive_inpaint.inference.tiles import Tile
from archive_inpaint.models.iivi_net import DOWNSAMPLE_FACTOR, IIVINet
from archive_inpaint.training.stage_data import StageData, place_hole, resample_onto
from archive_inpaint.training.working_set import WorkingSet

# (frame, tile of the next stage, extra hole on that tile or None) per item.
ExtraHoles = list[np.ndarray | None] | None


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
    def __init__(
        self,
        network: IIVINet,
        data: StageData,
        previous: CoarseStagePredictor | PatchStagePredictor,
        context: int,
        device: torch.device,
    ) -> None:
        self.network, self.data, self.previous = network, data, previous
        self.size = (data.stage.height, data.stage.width)
        self.context, self.device = context, device

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

    def run(self, images: torch.Tensor, holes: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """The network on inputs of any size (padded to the stride); cropped back."""
        height, width = images.shape[-2:]
        output = self.network(pad_to_stride(images), pad_to_stride(holes), pad_to_stride(prior))
        return output.final[..., :height, :width], output

    @torch.no_grad()
    def predict(self, frame_ids: list[int], tiles: list[Tile], extra: ExtraHoles = None) -> torch.Tensor:
        """(N, 3, h, w) in [-1, 1]: the stage's fill of ``tiles`` composited with known pixels."""
        images, holes = self.inputs(frame_ids, tiles, extra)
        prior = self.previous.prior_for(frame_ids, tiles, self.size, extra)
        final, _ = self.run(images, holes, prior)
        return final * holes + images * (1.0 - holes)

    def prior_for(
        self, frame_ids: list[int], tiles: list[Tile], next_size: tuple[int, int], extra: ExtraHoles = None
    ) -> torch.Tensor:
        """The next stage's prior on ``tiles``: this stage's fill of the box under each tile, with
        ``context`` px around it so the fill near the tile's edge sees past it."""
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

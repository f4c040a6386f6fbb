"""The anti-ambiguity regularizer (IIVI §3.3): a contextual loss against another frame.

Where the background moves or is random texture, several fills explain the pseudo-holes equally
well and L1 averages them into blur. The contextual loss (Mechrez et al. 2018) asks instead that
every feature of another frame X_t of the shot find a close match among the output's features,
both restricted to the pixels X_t knows (outside its mask M_t): the output must be made of the
shot's own textures, wherever they are. It compares feature *sets*, so it does not need the two
frames aligned.

Features come from a shared encoder:

* ``VGGEncoder`` (the paper's): VGG19 up to relu4_2 with ImageNet weights, loaded from a local
  file (torchvision's ``vgg19-dcbb9e9d.pth`` layout) since weights are never downloaded at run
  time; looked up at a configured path, then in the torch hub cache.
* ``PatchEncoder`` (the fallback, when no weights are there): each feature is a normalised
  5x5 RGB patch plus its gradients, sampled on a stride-4 grid. Needs no weights and measures
  texture the way patch-based inpainting always has; it sees less semantics than VGG. Which one
  ran is logged and written to provenance.

Memory: the loss needs all pairwise distances between two feature sets, which grows with the
square of the feature map. At most ``max_features`` positions are sampled from each side, and the
distance matrix is computed in row chunks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from archive_inpaint.training.perceptual import WEIGHTS_FILES, VGGFeatures, find_weights

log = logging.getLogger(__name__)

# VGG19 relu4_2: index 22 of torchvision's ``features``.
RELU4_2 = 22
# Contextual loss bandwidth h (the paper's code uses 0.5).
BANDWIDTH = 0.5


class VGGEncoder(nn.Module):
    """The paper's features: VGG19 relu4_2, frozen (the shared extractor of
    ``archive_inpaint.training.perceptual``, one tap)."""

    name = "vgg19-relu4_2"

    def __init__(self, features: VGGFeatures | None = None) -> None:
        super().__init__()
        self.vgg = features if features is not None else VGGFeatures("vgg19", (RELU4_2,))

    @property
    def features(self) -> nn.Sequential:
        return self.vgg.features

    @classmethod
    def from_file(cls, path: Path) -> VGGEncoder:
        return cls(VGGFeatures.from_file(path, "vgg19", (RELU4_2,)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 512, H/8, W/8)."""
        return self.vgg(image)[0]


class PatchEncoder(nn.Module):
    """5x5 RGB patches and their x/y gradients on a stride-4 grid: (N, 225, H/4, W/4)."""

    name = "patches-5x5-rgb-gradients"

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        grad_x = F.pad(image[..., :, 1:] - image[..., :, :-1], (0, 1, 0, 0))
        grad_y = F.pad(image[..., 1:, :] - image[..., :-1, :], (0, 0, 0, 1))
        stacked = torch.cat([image, grad_x, grad_y], dim=1)
        patches = F.unfold(stacked, kernel_size=5, padding=2, stride=4)
        height, width = -(-image.shape[-2] // 4), -(-image.shape[-1] // 4)
        return patches.view(image.shape[0], -1, height, width)


def find_vgg_weights(configured: str | None) -> Path | None:
    """The configured file, else torchvision's cached file in the torch hub cache, else None."""
    return find_weights("vgg19", configured)


def make_encoder(weights: str | None) -> nn.Module:
    path = find_vgg_weights(weights)
    if path is None:
        log.warning(
            "contextual loss: no VGG19 weights (configure a path, or put %s in %s); "
            "using the weight-free patch encoder instead",
            WEIGHTS_FILES["vgg19"],
            Path(torch.hub.get_dir()) / "checkpoints",
        )
        return PatchEncoder()
    log.info("contextual loss: VGG19 weights from %s", path)
    return VGGEncoder.from_file(path)


@dataclass(frozen=True)
class ContextualSettings:
    max_features: int = 1024
    chunk: int = 256


def _select(features: torch.Tensor, keep: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """(C, H, W) features, (H, W) bool -> (C, <=count) columns at kept positions, sampled."""
    flat = features.flatten(1)[:, keep.flatten()]
    if flat.shape[1] > count:
        order = torch.randperm(flat.shape[1], generator=generator)[:count].to(flat.device)
        flat = flat[:, order]
    return flat


def contextual_loss(
    encoder: nn.Module,
    output: torch.Tensor,
    other: torch.Tensor,
    other_known: torch.Tensor,
    generator: torch.Generator,
    settings: ContextualSettings = ContextualSettings(),
) -> torch.Tensor:
    """Mean over the batch of -log CX(output_i, other_i), both restricted to ``other_known``.

    ``output`` and ``other`` are (N, 3, H, W) in [-1, 1]; ``other_known`` (N, 1, H, W) is 1 where
    the other frame's pixel is known (outside its mask).
    """
    keep_image = other_known.to(output.dtype)
    source = encoder(output * keep_image)
    target = encoder(other * keep_image)
    keep = F.interpolate(keep_image, size=source.shape[-2:], mode="area") > 0.999
    losses = []
    for item in range(output.shape[0]):
        if not keep[item, 0].any():
            continue
        x = _select(source[item], keep[item, 0], settings.max_features, generator)
        y = _select(target[item], keep[item, 0], settings.max_features, generator)
        centre = y.mean(dim=1, keepdim=True)
        x = F.normalize(x - centre, dim=0)
        y = F.normalize(y - centre, dim=0)
        # CX_j = max_i CX_ij, with CX_ij normalised over j for each i; computed in chunks of i so
        # the (len_x, len_y) matrices never exist for all i at once.
        best = torch.zeros(y.shape[1], device=x.device, dtype=x.dtype)
        for begin in range(0, x.shape[1], settings.chunk):
            distance = 1.0 - x[:, begin : begin + settings.chunk].T @ y  # (chunk, len_y)
            relative = distance / (distance.min(dim=1, keepdim=True).values + 1e-5)
            weight = torch.softmax((1.0 - relative) / BANDWIDTH, dim=1)
            best = torch.maximum(best, weight.max(dim=0).values)
        losses.append(-torch.log(best.mean() + 1e-5))
    if not losses:
        return output.new_zeros(())
    return torch.stack(losses).mean()

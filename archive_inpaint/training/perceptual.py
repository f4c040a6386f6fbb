"""Frozen VGG features for the perceptual and style losses of DIP-Vid-Flow and LGTSM.

Both papers use ImageNet VGG16 features. Weights are never downloaded at run time: they are read
from a local file in torchvision's layout (``vgg16-397923af.pth`` / ``vgg19-dcbb9e9d.pth``), at a
configured path or in the torch hub cache. Without one the losses that need them are switched off,
which the run logs and records in its provenance; the methods' other losses do not depend on them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

# torchvision's "features" layouts: conv widths, "M" = 2x2 max-pool.
_LAYOUTS = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
WEIGHTS_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGFeatures(nn.Module):
    """VGG ``features`` up to the deepest of ``taps`` (indices into torchvision's ``features``,
    e.g. 3, 8, 15 = VGG16 relu1_2, relu2_2, relu3_3); returns the activation at each tap."""

    def __init__(self, arch: str, taps: tuple[int, ...]) -> None:
        super().__init__()
        if arch not in _LAYOUTS:
            raise ValueError(f"unknown VGG {arch!r}; choose one of {', '.join(_LAYOUTS)}")
        layers: list[nn.Module] = []
        channels = 3
        for item in _LAYOUTS[arch]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.taps = tuple(sorted(taps))
        self.features = nn.Sequential(*layers[: self.taps[-1] + 1])
        self.arch = arch
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    @classmethod
    def from_file(cls, path: Path, arch: str, taps: tuple[int, ...]) -> VGGFeatures:
        model = cls(arch, taps)
        state = torch.load(path, map_location="cpu", weights_only=True)
        wanted = {}
        for key in model.features.state_dict():
            source = f"features.{key}"
            if source not in state:
                raise ValueError(f"{path} is not a {arch.upper()} state dict: no {source}")
            wanted[key] = state[source]
        model.features.load_state_dict(wanted)
        return model.eval()

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) in [-1, 1] -> the activation at each tap, shallowest first."""
        x = ((image + 1.0) / 2.0 - self.mean) / self.std
        found = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                found.append(x)
        return found


def find_weights(arch: str, configured: str | None) -> Path | None:
    """The configured file (an error if it is missing), else torchvision's file in the torch hub
    cache, else None."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{arch.upper()} weights not found at {path}")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILES[arch]
    return cached if cached.is_file() else None


def load_vgg_features(arch: str, taps: tuple[int, ...], configured: str | None, purpose: str) -> VGGFeatures | None:
    """The frozen feature extractor, or None (logged) when no weights are at hand."""
    path = find_weights(arch, configured)
    if path is None:
        log.warning(
            "%s: no %s weights (configure a path, or put %s in %s); that loss is off for this run",
            purpose, arch, WEIGHTS_FILES[arch], Path(torch.hub.get_dir()) / "checkpoints",
        )
        return None
    log.info("%s: %s weights from %s", purpose, arch, path)
    return VGGFeatures.from_file(path, arch, taps)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Per-sample (N, C, C) Gram matrix, normalised by C * H * W (not mixed across the batch)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def perceptual_l1(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([F.l1_loss(x, y) for x, y in zip(a, b)]).mean()


def style_l1(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([F.l1_loss(gram(x), gram(y)) for x, y in zip(a, b)]).mean()

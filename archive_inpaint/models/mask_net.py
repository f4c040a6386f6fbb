"""The mask network for single-frame annotation (IIVI §4.2): frame in, object mask out.

IIVI swaps input and output of internal learning: from one annotated frame it learns to find the
object, then predicts a mask for every frame. The paper's code uses a standard U-Net (64..1024
channels); this one keeps the layout (conv blocks, max-pool down, upsample + skip up, sigmoid
head) with the width as a parameter, so a CPU can train it in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class MaskNetConfig:
    width: int = 16
    depth: int = 3  # down/up levels; the input must be a multiple of 2**depth


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class MaskNet(nn.Module):
    """(N, 3, H, W) in [-1, 1] -> (N, 1, H, W) logits of 'object here'."""

    def __init__(self, config: MaskNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.width * 2**level for level in range(config.depth + 1)]
        self.down = nn.ModuleList([_block(3, widths[0])] + [_block(widths[i - 1], widths[i]) for i in range(1, len(widths))])
        self.up = nn.ModuleList([_block(widths[i] + widths[i - 1], widths[i - 1]) for i in range(len(widths) - 1, 0, -1)])
        self.head = nn.Conv2d(widths[0], 1, 1)

    @property
    def stride(self) -> int:
        return 2**self.config.depth

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-2] % self.stride or image.shape[-1] % self.stride:
            raise ValueError(f"MaskNet input {tuple(image.shape[-2:])} must be a multiple of {self.stride}")
        skips = []
        x = image
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip], dim=1))
        return self.head(x)

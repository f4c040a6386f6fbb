"""Gated convolution building blocks (DeepFill v2 style), as used by the IIVI network.

A gated convolution computes one convolution with twice the output channels and splits it into a
feature half and a gate half: ``out = act(feature) * sigmoid(gate)``. The gate learns, per pixel and
channel, how much of the feature to pass on, which is what lets the network treat hole pixels
(filled with a constant) differently from known pixels without being told where the hole is at
every layer.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class GatedConv2d(nn.Module):
    """Conv2d whose output is ``act(feature) * sigmoid(gate)``.

    ``out_channels`` is the width of the tensor passed to the next layer; the single convolution
    underneath has ``2 * out_channels`` outputs. Padding keeps ``H / stride`` (``dilation * (k-1)/2``),
    so stride-2 layers halve even sizes exactly.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        activation: type[nn.Module] = nn.ELU,
    ) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_channels,
            2 * out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
        )
        self.activation = activation()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature, gate = self.conv(x).split(self.out_channels, dim=1)
        return self.activation(feature) * torch.sigmoid(gate)


class GatedUpConv2d(nn.Module):
    """Nearest-neighbour x2 upsampling followed by a 3x3 gated convolution.

    Upsample-then-convolve avoids the checkerboard artefacts of transposed convolutions, which would
    otherwise show as a fixed pattern inside every filled hole.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))

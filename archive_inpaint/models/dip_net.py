"""DIP-Vid-Flow's generator (Zhang et al. 2019): fixed noise in, the frame and its flows out.

The network is Deep Image Prior's skip encoder-decoder (see docs: method spec §2.2). Each level
keeps a thin 1x1 "skip" copy of its input and sends the input down a "deep" branch (5x5 stride-2
conv, 5x5 conv, the next level, nearest upsampling x2); the two are concatenated and mixed by a
3x3 and a 1x1 conv. Every conv is followed by BatchNorm and LeakyReLU(0.2) and padded by
reflection.

BatchNorm always normalises with the statistics of the batch it is given and keeps no running
statistics (``track_running_stats=False``). The paper trains and infers with BatchNorm in train
mode; with no running statistics that is the only behaviour, so ``train()``/``eval()`` cannot
change the output, and a batch of frames gives the same result whoever calls the network.

Two 1x1 heads read the last level: the image (sigmoid, mapped to [-1, 1]) and the flow fields
(linear). Flow channels are ordered, for each stride of ``flow_strides`` in turn: forward dx,
forward dy, backward dx, backward dy (``flow_channel_slice`` computes the slice). They are in
units of a per-(stride, direction) scale chosen by the training method: predicted x scale = pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2


@dataclass(frozen=True)
class DIPNetConfig:
    """Skip encoder-decoder of Deep Image Prior. The paper: depth 6, widths 16..128, 4-channel skips.

    ``width`` is the first level's channel count (the paper's 16); deeper levels double it up to
    ``8 * width``.
    """

    width: int = 16
    depth: int = 6
    skip_channels: int = 4
    noise_channels: int = 1
    # The flow fields predicted beside the image: one forward and one backward per frame stride.
    flow_strides: tuple[int, ...] = (1, 3, 5)

    def __post_init__(self) -> None:
        for name in ("width", "depth", "noise_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.skip_channels < 0:
            raise ValueError(f"skip_channels must not be negative, got {self.skip_channels}")
        if not self.flow_strides or any(s < 1 for s in self.flow_strides):
            raise ValueError(f"flow_strides must be positive frame distances, got {self.flow_strides}")
        if len(set(self.flow_strides)) != len(self.flow_strides):
            raise ValueError(f"flow_strides must not repeat, got {self.flow_strides}")

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels of each level, shallowest first: width, 2w, 4w, 8w, 8w, ..."""
        return tuple(min(self.width * 2**level, 8 * self.width) for level in range(self.depth))

    @property
    def flow_channels(self) -> int:
        return 4 * len(self.flow_strides)


def flow_channel_slice(flow_strides: tuple[int, ...], stride: int, backward: bool) -> slice:
    """The two channels (dx, dy) of one flow field in ``DIPOutput.flows``."""
    if stride not in flow_strides:
        raise ValueError(f"stride {stride} is not predicted; the network predicts {flow_strides}")
    first = 4 * flow_strides.index(stride) + (2 if backward else 0)
    return slice(first, first + 2)


@dataclass
class DIPOutput:
    image: torch.Tensor  # (N, 3, H, W) in [-1, 1]
    flows: torch.Tensor  # (N, 4 * len(flow_strides), H, W), normalised units (see module doc)


class _Pad(nn.Module):
    """Reflection padding; replication where a map is too small to reflect (the deepest levels of
    small frames), which reflection cannot do by definition."""

    def __init__(self, amount: int) -> None:
        super().__init__()
        self.amount = amount

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.amount == 0:
            return x
        mode = "reflect" if min(x.shape[-2:]) > self.amount else "replicate"
        return F.pad(x, (self.amount,) * 4, mode=mode)


def _norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, track_running_stats=False)


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(_Pad((kernel - 1) // 2), nn.Conv2d(in_channels, out_channels, kernel, stride))


def _conv_block(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        _conv(in_channels, out_channels, kernel, stride), _norm(out_channels), nn.LeakyReLU(LEAKY_SLOPE)
    )


class _Level(nn.Module):
    """One level of the skip encoder-decoder and, recursively, every level below it."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], skip_channels: int) -> None:
        super().__init__()
        width = widths[0]
        self.skip = _conv_block(in_channels, skip_channels, 1) if skip_channels > 0 else None
        self.down = nn.Sequential(_conv_block(in_channels, width, 5, stride=2), _conv_block(width, width, 5))
        self.deeper = _Level(width, widths[1:], skip_channels) if len(widths) > 1 else None
        merged = skip_channels + (widths[1] if self.deeper is not None else width)
        self.merge = nn.Sequential(
            _norm(merged),
            _conv(merged, width, 3),
            _norm(width),
            nn.LeakyReLU(LEAKY_SLOPE),
            _conv(width, width, 1),
            _norm(width),
            nn.LeakyReLU(LEAKY_SLOPE),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.down(x)
        if self.deeper is not None:
            deep = self.deeper(deep)
        deep = F.interpolate(deep, scale_factor=2.0, mode="nearest")
        parts = [self.skip(x), deep] if self.skip is not None else [deep]
        return self.merge(torch.cat(parts, dim=1))


def network_size(size: int, depth: int) -> int:
    """The size a side is padded to inside the network: a multiple of ``2**depth`` so every
    downsampling halves it exactly, and at least two cells at the deepest level so BatchNorm has
    more than one value per channel even for a single frame."""
    stride = 2**depth
    return max(-(-size // stride) * stride, 2 * stride)


def reflect_pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad the bottom and right of ``x`` by reflection up to (height, width). Reflection can add at
    most ``side - 1`` values at a time, so large pads (small frames, deep networks) take a few
    rounds; a side of one value can only be replicated."""
    while x.shape[-2] < height or x.shape[-1] < width:
        h, w = x.shape[-2:]
        if min(h, w) == 1:
            return F.pad(x, (0, width - w, 0, height - h), mode="replicate")
        x = F.pad(x, (0, min(width - w, w - 1), 0, min(height - h, h - 1)), mode="reflect")
    return x


class DIPNet(nn.Module):
    """Noise (N, noise_channels, H, W) -> ``DIPOutput``. Any H, W work (the working set's are
    multiples of 4); the input is padded to ``network_size`` inside and the output cropped back."""

    def __init__(self, config: DIPNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths
        self.body = _Level(config.noise_channels, widths, config.skip_channels)
        self.image_head = nn.Conv2d(widths[0], 3, 1)
        self.flow_head = nn.Conv2d(widths[0], config.flow_channels, 1)

    def forward(self, noise: torch.Tensor) -> DIPOutput:
        if noise.ndim != 4 or noise.shape[1] != self.config.noise_channels:
            raise ValueError(
                f"expected noise (N, {self.config.noise_channels}, H, W), got {tuple(noise.shape)}"
            )
        height, width = noise.shape[-2:]
        padded = reflect_pad_to(
            noise, network_size(height, self.config.depth), network_size(width, self.config.depth)
        )
        features = self.body(padded)[..., :height, :width]
        image = torch.sigmoid(self.image_head(features)) * 2.0 - 1.0
        return DIPOutput(image=image, flows=self.flow_head(features))

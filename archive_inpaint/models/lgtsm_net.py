"""LGTSM's generator and TSMGAN discriminator (Chang et al. 2019), for per-shot training.

Both are 2-D convolutions applied frame by frame behind learnable temporal shifts
(``temporal_shift.LearnableTemporalShift``), on videos shaped (N, T, C, H, W). The layout follows
the method spec (section 3.2 and 3.3), with these deliberate differences:

* Mask polarity: this project's hole is 1 = HOLE (as IIVI and DIP-Vid-Flow); the paper's mask is
  1 = valid. The generator zeroes hole pixels of its input itself, so no caller can leak the
  content it asks to be filled.
* Input channels: masked RGB and the hole (4). The paper adds a fifth "guidance" channel that is
  always zero; a channel of zeros adds nothing to any convolution or shift, so it is left out.
* Sizes: every layer keeps or exactly halves the frame, so any H, W that are multiples of 4 come
  back unchanged. conv1 is 5x5 with padding 2 ("same"); the paper pads it by 1, shrinking the frame
  by 2 px, which its conv2 (4x4 stride 2, padding 2) then grows back. Here conv2 and conv4 are both
  4x4 stride 2 with padding 1, which halves even sizes exactly and centres each output on the 2x2
  block that nearest-neighbour upsampling later maps it back to.
* Output: the paper's last layer is a gated conv without activation on [0, 1] images, composited
  inside the network. Here it is followed by tanh so the raw image is bounded to [-1, 1] with a
  gradient everywhere (a clamp would stop learning for out-of-range pixels); the method composites.
* Spectral normalisation: the paper's code wraps its frame-wise convs in spectral_norm, but that
  has no effect in their forward pass (spec 3.1), so neither network uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from archive_inpaint.models.temporal_shift import LearnableTemporalShift

DOWNSAMPLE_FACTOR = 4
DILATION_RATES = (2, 4, 8, 16)
LEAKY_SLOPE = 0.2


@dataclass(frozen=True)
class LGTSMNetConfig:
    """Gated 2-D convolutions behind learnable temporal shifts. The paper's ``nf`` is 64; ``width``
    is that first-layer channel count (deeper layers use 2x and 4x)."""

    width: int = 64


@dataclass(frozen=True)
class TemporalDiscriminatorConfig:
    """TSMGAN's temporal patch discriminator: six 5x5 stride-2 convs behind learnable shifts."""

    width: int = 64
    # A layer halves the map only while the halved map keeps at least this many pixels on its
    # short side; later layers keep stride 1. The paper's 320x180 frames still end at its 3x5
    # patch map, and small frames or crops (64x64) keep a patch map (4x4) instead of collapsing
    # to one global score at 1x1.
    min_map_size: int = 3


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """(N, T, C, H, W) -> (N*T, C, H, W): frame-wise 2-D layers see every frame as a sample."""
    return x.reshape(-1, *x.shape[2:])


def unfold_time(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(N*T, C, H, W) -> (N, T, C, H, W)."""
    return x.reshape(-1, frames, *x.shape[1:])


class LGTSMGatedConv(nn.Module):
    """One LGTSM gated layer on (N, T, C, H, W):

    feature = LeakyReLU_0.2(Conv2d(shift(x))), gate = sigmoid(Conv2d(x)), out = gate * feature.

    The gate sees the UNSHIFTED input (the paper's code switches the gate to the plain frame-wise
    conv on purpose): it decides, from the frame itself, where this frame's features pass, while
    the feature path is the one that mixes time. ``activation=False`` (the last layer) keeps the
    feature raw but still gated.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        padding: int | None = None,
        activation: bool = True,
    ) -> None:
        super().__init__()
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        self.shift = LearnableTemporalShift(in_channels)
        self.feature_conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation)
        self.gate_conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation)
        self.activation = activation
        self._init_feature_conv()

    def _init_feature_conv(self) -> None:
        # The gate starts near sigmoid(0) = 0.5, so every layer halves its features. With the
        # default init the signal also shrinks in each conv, and after 17 layers the output is
        # a near-constant that a per-shot run (a few thousand steps) barely moves. He init for
        # the activation, doubled for the half-open gate, keeps the features' scale through the
        # stack from the first step.
        nonlinearity = "leaky_relu" if self.activation else "linear"
        nn.init.kaiming_normal_(self.feature_conv.weight, a=LEAKY_SLOPE, nonlinearity=nonlinearity)
        with torch.no_grad():
            self.feature_conv.weight.mul_(2.0)
        nn.init.zeros_(self.feature_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        feature = self.feature_conv(fold_time(self.shift(x)))
        if self.activation:
            feature = F.leaky_relu(feature, LEAKY_SLOPE)
        gate = torch.sigmoid(self.gate_conv(fold_time(x)))
        return unfold_time(gate * feature, frames)


class LGTSMGatedUpConv(nn.Module):
    """The paper's "deconv": nearest x2 upsampling (spatial only) then a 3x3 LGTSM gated layer."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = LGTSMGatedConv(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        upsampled = F.interpolate(fold_time(x), scale_factor=2.0, mode="nearest")
        return self.conv(unfold_time(upsampled, frames))


def _generator_layers(in_channels: int, width: int) -> list[nn.Module]:
    """The 17 gated layers of spec 3.2 (conv1 ... conv11) at widths w, 2w, 4w."""
    w = width
    tail = max(w // 2, 4)
    return [
        LGTSMGatedConv(in_channels, w, 5),  # conv1
        LGTSMGatedConv(w, 2 * w, 4, stride=2, padding=1),  # conv2
        LGTSMGatedConv(2 * w, 2 * w, 3),  # conv3
        LGTSMGatedConv(2 * w, 4 * w, 4, stride=2, padding=1),  # conv4
        LGTSMGatedConv(4 * w, 4 * w, 3),  # conv5
        LGTSMGatedConv(4 * w, 4 * w, 3),  # conv6
        *[LGTSMGatedConv(4 * w, 4 * w, 3, dilation=rate) for rate in DILATION_RATES],
        LGTSMGatedConv(4 * w, 4 * w, 3),  # conv7
        LGTSMGatedConv(4 * w, 4 * w, 3),  # conv8
        LGTSMGatedUpConv(4 * w, 2 * w),  # deconv1
        LGTSMGatedConv(2 * w, 2 * w, 3),  # conv9
        LGTSMGatedUpConv(2 * w, w),  # deconv2
        LGTSMGatedConv(w, tail, 3),  # conv10
        LGTSMGatedConv(tail, 3, 3, activation=False),  # conv11: raw, still gated
    ]


class LGTSMGenerator(nn.Module):
    """G(video, hole) -> raw video in [-1, 1].

    ``video`` (N, T, 3, H, W) in [-1, 1]; ``hole`` (N, T, 1, H, W), 1 = HOLE (the paper: 1 = valid).
    H and W must be multiples of 4. The output is the network's image everywhere, not composited.
    """

    in_channels = 4  # masked RGB + hole; the paper's all-zero guidance channel is left out

    def __init__(self, config: LGTSMNetConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.Sequential(*_generator_layers(self.in_channels, config.width))

    def forward(self, video: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5 or hole.shape[:2] != video.shape[:2] or hole.shape[2] != 1:
            raise ValueError(
                "expected video (N, T, 3, H, W) and hole (N, T, 1, H, W), "
                f"got {tuple(video.shape)} and {tuple(hole.shape)}"
            )
        if video.shape[-2] % DOWNSAMPLE_FACTOR or video.shape[-1] % DOWNSAMPLE_FACTOR:
            raise ValueError(
                f"LGTSM input {tuple(video.shape[-2:])} must be a multiple of {DOWNSAMPLE_FACTOR}; "
                "pad the frames"
            )
        hole = hole.to(video.dtype)
        masked = video * (1.0 - hole)
        return torch.tanh(self.layers(torch.cat([masked, hole], dim=2)))


class _ShiftConv(nn.Module):
    """A discriminator layer: learnable temporal shift, then a plain frame-wise 5x5 conv whose
    stride the discriminator chooses per call (the weights do not depend on it)."""

    kernel_size = 5
    padding = 2

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.shift = LearnableTemporalShift(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, self.kernel_size, stride=2, padding=self.padding)

    def forward(self, x: torch.Tensor, stride: int) -> torch.Tensor:
        frames = x.shape[1]
        folded = fold_time(self.shift(x))
        out = F.conv2d(folded, self.conv.weight, self.conv.bias, stride=stride, padding=self.padding)
        return unfold_time(out, frames)


class TemporalPatchDiscriminator(nn.Module):
    """D(video, hole) -> (N, T, 4w, h, w) sigmoid scores per patch, frame and channel (for LSGAN).

    Six 5x5 convs behind learnable shifts, widths w, 2w, 4w, 4w, 4w, 4w, LeakyReLU(0.2) on all but
    the last. As in the paper, the last layer keeps 4w channels (no 1-channel head): each is an
    independent score and the LSGAN loss averages them all. ``video`` (N, T, 3, H, W) in [-1, 1],
    ``hole`` (N, T, 1, H, W) with 1 = HOLE.

    Padding 2 on every layer (the paper pads conv1 by 1), so a stride-2 layer gives ceil(size / 2)
    for any size, and no frame is too small. ``TemporalDiscriminatorConfig.min_map_size`` says
    when a layer keeps stride 1 instead, so small frames or crops still get a patch map.
    """

    def __init__(self, config: TemporalDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        widths = (4, w, 2 * w, 4 * w, 4 * w, 4 * w, 4 * w)  # input: RGB + hole
        self.layers = nn.ModuleList(_ShiftConv(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def strides(self, height: int, width: int) -> list[int]:
        """The stride of each layer for a (height, width) input."""
        strides = []
        short_side = min(height, width)
        for _ in self.layers:
            halved = (short_side + 1) // 2
            stride = 2 if halved >= self.config.min_map_size else 1
            short_side = halved if stride == 2 else short_side
            strides.append(stride)
        return strides

    def forward(self, video: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        x = torch.cat([video, hole.to(video.dtype)], dim=2)
        strides = self.strides(video.shape[-2], video.shape[-1])
        last = len(self.layers) - 1
        for index, (layer, stride) in enumerate(zip(self.layers, strides)):
            x = layer(x, stride)
            if index < last:
                x = F.leaky_relu(x, LEAKY_SLOPE)
        return torch.sigmoid(x)


class LGTSMNetwork(nn.Module):
    """What a run trains and checkpoints: the generator and, for the GAN fine-tuning, the
    discriminator. Calling it runs the generator."""

    def __init__(
        self, generator: LGTSMNetConfig, discriminator: TemporalDiscriminatorConfig | None = None
    ) -> None:
        super().__init__()
        self.generator = LGTSMGenerator(generator)
        self.discriminator = None if discriminator is None else TemporalPatchDiscriminator(discriminator)

    def forward(self, video: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return self.generator(video, hole)

"""The IIVI inpainting network f: a gated coarse encoder-decoder and a two-branch refine stage.

Layout follows the IIVI paper and its public description (see docs: method spec §1.3), rewritten for
PyTorch with the width as a parameter:

* coarse: 5x5 conv, two stride-2 downsamplings, a middle of dilated convs (rates 2, 4, 8, 16), two
  nearest-upsampling gated convs back to full size, and a raw 3-channel head with tanh;
* with a prior (the patch stages of progressive learning): both stages predict a correction
  added to the prior / the coarse result, starting from zero;
* refine: the coarse result pasted into the hole (known pixels kept) goes through branch A
  (downsampling + dilated convs, large receptive field) and branch B (plain convs, one with ReLU);
  their concatenation is decoded to the final image.

``width`` is the paper's ``cnum`` divided by two, i.e. the channel count actually passed between the
first layers (the paper's cnum=48 gives width 24). The network downsamples by 4, so its input height
and width must be multiples of 4 (the inference code pads; it never resamples for this).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archive_inpaint.models.gated_conv import GatedConv2d, GatedUpConv2d

DOWNSAMPLE_FACTOR = 4
DILATION_RATES = (2, 4, 8, 16)


@dataclass(frozen=True)
class IIVINetConfig:
    """Architecture of f. ``width=24`` is the paper's network; 8-12 suits CPUs."""

    width: int = 24
    use_refine: bool = True
    # Channels of an extra input (the prior): 0 for the whole-frame stage; for a patch stage of
    # progressive learning, at least 3: the image its correction is added to (the previous
    # stage's upsampled result, or that with content propagated from other frames pasted in),
    # then any further guidance (inference/stage_predictors.py).
    prior_channels: int = 0

    def __post_init__(self) -> None:
        if self.prior_channels != 0 and self.prior_channels < 3:
            raise ValueError(f"prior_channels must be 0 or at least 3, got {self.prior_channels}")


@dataclass
class IIVIOutput:
    coarse: torch.Tensor
    refined: torch.Tensor | None

    @property
    def final(self) -> torch.Tensor:
        return self.refined if self.refined is not None else self.coarse


class CoarseNet(nn.Module):
    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        w = width
        self.layers = nn.Sequential(
            GatedConv2d(in_channels, w, 5),
            GatedConv2d(w, 2 * w, 3, stride=2),
            GatedConv2d(2 * w, 2 * w, 3),
            GatedConv2d(2 * w, 4 * w, 3, stride=2),
            GatedConv2d(4 * w, 4 * w, 3),
            GatedConv2d(4 * w, 4 * w, 3),
            *[GatedConv2d(4 * w, 4 * w, 3, dilation=rate) for rate in DILATION_RATES],
            GatedConv2d(4 * w, 4 * w, 3),
            GatedConv2d(4 * w, 4 * w, 3),
            GatedUpConv2d(4 * w, 2 * w),
            GatedConv2d(2 * w, 2 * w, 3),
            GatedUpConv2d(2 * w, w),
            GatedConv2d(w, max(w // 2, 4), 3),
            nn.Conv2d(max(w // 2, 4), 3, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # raw: IIVINet decides how it becomes an image

    @property
    def head(self) -> nn.Conv2d:
        return self.layers[-1]


class RefineNet(nn.Module):
    """Two encoder branches over the composited coarse result, merged and decoded."""

    def __init__(self, width: int) -> None:
        super().__init__()
        w = width
        # Branch A: large receptive field through dilation.
        self.dilated_branch = nn.Sequential(
            GatedConv2d(3, w, 5),
            GatedConv2d(w, w, 3, stride=2),
            GatedConv2d(w, 2 * w, 3),
            GatedConv2d(2 * w, 2 * w, 3, stride=2),
            GatedConv2d(2 * w, 4 * w, 3),
            GatedConv2d(4 * w, 4 * w, 3),
            *[GatedConv2d(4 * w, 4 * w, 3, dilation=rate) for rate in DILATION_RATES],
        )
        # Branch B: where DeepFill had contextual attention, IIVI keeps plain convolutions.
        self.plain_branch = nn.Sequential(
            GatedConv2d(3, w, 5),
            GatedConv2d(w, w, 3, stride=2),
            GatedConv2d(w, 2 * w, 3),
            GatedConv2d(2 * w, 4 * w, 3, stride=2),
            GatedConv2d(4 * w, 4 * w, 3),
            GatedConv2d(4 * w, 4 * w, 3, activation=nn.ReLU),
            GatedConv2d(4 * w, 4 * w, 3),
            GatedConv2d(4 * w, 4 * w, 3),
        )
        self.decoder = nn.Sequential(
            GatedConv2d(8 * w, 4 * w, 3),
            GatedConv2d(4 * w, 4 * w, 3),
            GatedUpConv2d(4 * w, 2 * w),
            GatedConv2d(2 * w, 2 * w, 3),
            GatedUpConv2d(2 * w, w),
            GatedConv2d(w, max(w // 2, 4), 3),
            nn.Conv2d(max(w // 2, 4), 3, 3, padding=1),
        )

    def forward(self, composite: torch.Tensor) -> torch.Tensor:
        merged = torch.cat([self.dilated_branch(composite), self.plain_branch(composite)], dim=1)
        return self.decoder(merged)  # raw, as CoarseNet

    @property
    def head(self) -> nn.Conv2d:
        return self.decoder[-1]


class IIVINet(nn.Module):
    """f(masked image, hole mask) -> (coarse, refined) images in [-1, 1].

    Input: ``image`` (N, 3, H, W) in [-1, 1] and ``hole`` (N, 1, H, W) in {0, 1}. Hole pixels of the
    image are zeroed here, so callers cannot leak the content they are asking the network to fill.
    """

    def __init__(self, config: IIVINetConfig) -> None:
        super().__init__()
        self.config = config
        self.in_channels = 4 + config.prior_channels
        self.coarse = CoarseNet(self.in_channels, config.width)
        self.refine = RefineNet(config.width) if config.use_refine else None
        if config.prior_channels:
            # A patch stage predicts a correction to its prior (the previous stage's fill), and
            # starts as the identity on it: from its first step it is as good as the coarse
            # fill upsampled, and training only has to add the detail.
            for head in (self.coarse.head, *(() if self.refine is None else (self.refine.head,))):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    def forward(
        self, image: torch.Tensor, hole: torch.Tensor, prior: torch.Tensor | None = None
    ) -> IIVIOutput:
        if image.shape[-2] % DOWNSAMPLE_FACTOR or image.shape[-1] % DOWNSAMPLE_FACTOR:
            raise ValueError(
                f"IIVINet input {tuple(image.shape[-2:])} must be a multiple of {DOWNSAMPLE_FACTOR}; "
                "pad the frame (inference.padding) instead of resizing it"
            )
        known = 1.0 - hole
        masked = image * known
        if (0 if prior is None else prior.shape[1]) != self.config.prior_channels:
            raise ValueError(
                f"this network takes {self.config.prior_channels} prior channels; "
                f"got {'none' if prior is None else prior.shape[1]}"
            )
        if prior is None:
            coarse = torch.tanh(self.coarse(torch.cat([masked, hole], dim=1)))
        else:
            base = prior[:, :3]
            coarse = (base + self.coarse(torch.cat([masked, hole, prior], dim=1))).clamp(-1.0, 1.0)
        if self.refine is None:
            return IIVIOutput(coarse=coarse, refined=None)
        composite = coarse * hole + masked
        refined = self.refine(composite)
        refined = torch.tanh(refined) if prior is None else (coarse + refined).clamp(-1.0, 1.0)
        return IIVIOutput(coarse=coarse, refined=refined)

"""The learnable temporal shift of LGTSM (Chang et al. 2019, method spec section 3.1).

A temporal shift lets a 2-D convolution applied frame by frame see its neighbouring frames at no
extra convolution cost: a quarter of the channels is taken from the next frame, a quarter from the
previous one, and the rest stays. LGTSM makes the shift learnable: each of the two shifted channel
groups has one 3-tap temporal kernel, shared by every channel of the group (6 scalars per layer),
initialised to the fixed shift and free afterwards (not constrained to sum to 1 or to stay
non-negative), with zero temporal padding.

The paper's code applies that kernel as a Conv3d of kernel (3, 1, 1) over channels folded into the
batch. Because the kernel is shared by the group, the same result is three time-shifted views of
the group weighted by the kernel's taps and summed; that is what this module computes (one padded
copy of half the channels and three multiply-adds, no reshuffling of the batch).

The result is a new tensor: the input is never written. The fixed shift of the paper's earlier
code wrote through ``.data`` in place, after the gate's convolution had already consumed the same
storage, so the gate's weight gradients were computed from the shifted tensor.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Taps of a kernel in the order they multiply (x[t-1], x[t], x[t+1]), as a cross-correlation over
# time with zero padding 1 (the Conv3d of the paper).
_NEXT_FRAME = (0.0, 0.0, 1.0)  # group 0: out[t] = x[t+1]
_PREVIOUS_FRAME = (1.0, 0.0, 0.0)  # group 1: out[t] = x[t-1]


def shifted_group_size(channels: int) -> int:
    """Channels per shifted group: the paper's ``int(C * 0.5) // 2``, i.e. a quarter of them."""
    return int(channels * 0.5) // 2


class LearnableTemporalShift(nn.Module):
    """(N, T, C, H, W) -> (N, T, C, H, W): channels [0, g) are the learnt temporal filter of group 0,
    [g, 2g) of group 1, [2g, C) pass unchanged (g = C // 4; with fewer than 4 channels nothing is
    shifted)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.group_size = shifted_group_size(channels)
        # kernels[group, tap]: 6 learnable scalars.
        self.kernels = nn.Parameter(torch.tensor([_NEXT_FRAME, _PREVIOUS_FRAME]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != self.channels:
            raise ValueError(f"expected (N, T, {self.channels}, H, W), got {tuple(x.shape)}")
        g = self.group_size
        if g == 0:
            return x
        shifted = x[:, :, : 2 * g]
        # Zero frames before the first and after the last one: the temporal padding of the kernel.
        padded = F.pad(shifted, (0, 0, 0, 0, 0, 0, 1, 1))
        previous, current, following = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]
        # One weight per channel and tap: each group's tap repeated over its g channels.
        taps = self.kernels.to(x.dtype).repeat_interleave(g, dim=0)  # (2g, 3)
        taps = taps.view(1, 1, 2 * g, 3, 1, 1)
        filtered = previous * taps[..., 0, :, :] + current * taps[..., 1, :, :] + following * taps[..., 2, :, :]
        return torch.cat([filtered, x[:, :, 2 * g :]], dim=2)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, group_size={self.group_size}"

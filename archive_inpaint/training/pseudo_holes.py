"""Pseudo-holes: other frames' masks, translated at random, added to the real hole.

Training on known pixels hidden by a pseudo-hole teaches f to fill holes of the real masks' shapes
from the content around them; because content recurs across the shot and convolution is
translation-equivariant, this is how IIVI propagates content into the real holes.
"""

from __future__ import annotations

import torch


def translate_circular(masks: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Roll each mask (N, 1, H, W) by its own (dy, dx) in ``shifts`` (N, 2), wrapping at the border.

    Wrapping keeps the pseudo-hole's area whatever the shift, so every step hides as many known
    pixels as the real masks do. One gather on the masks' device for the whole batch (a per-mask
    roll costs a kernel launch each): the same result as ``torch.roll`` of each mask.
    """
    count, _, height, width = masks.shape
    shifts = shifts.to(masks.device)
    # roll by s: out[i] = in[(i - s) mod n]
    rows = (torch.arange(height, device=masks.device)[None, :] - shifts[:, :1]) % height
    cols = (torch.arange(width, device=masks.device)[None, :] - shifts[:, 1:]) % width
    picks = torch.arange(count, device=masks.device)[:, None, None]
    return masks[:, 0][picks, rows[:, :, None], cols[:, None, :]][:, None]


def sample_pseudo_holes(
    holes: torch.Tensor,
    source_pool: torch.Tensor,
    batch_size: int,
    valid_height: int,
    valid_width: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Draw ``batch_size`` masks from ``holes[source_pool]`` and translate each at random within the
    valid (unpadded) area. Returns (batch, 1, Hp, Wp) bool."""
    picks = source_pool[
        torch.randint(len(source_pool), (batch_size,), generator=generator)
    ]
    valid = holes[picks.to(holes.device), :, :valid_height, :valid_width]
    shifts = torch.stack(
        [
            torch.randint(valid_height, (batch_size,), generator=generator),
            torch.randint(valid_width, (batch_size,), generator=generator),
        ],
        dim=1,
    )
    moved = torch.zeros((batch_size, *holes.shape[1:]), dtype=torch.bool, device=holes.device)
    moved[:, :, :valid_height, :valid_width] = translate_circular(valid, shifts)
    return moved


def union_with_real(real_holes: torch.Tensor, pseudo_holes: torch.Tensor) -> torch.Tensor:
    """The network's input hole: everything hidden in this step."""
    return real_holes | pseudo_holes

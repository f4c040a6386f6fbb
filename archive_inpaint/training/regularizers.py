"""The regularizers of whole-frame training, switched on late in a run (see RegularizerConfig)."""

from __future__ import annotations

import torch

from archive_inpaint.config import RegularizerConfig
from archive_inpaint.models.iivi_net import IIVINet, IIVIOutput
from archive_inpaint.training.contextual import ContextualSettings, PatchEncoder, contextual_loss, make_encoder
from archive_inpaint.training.stabilization import (
    TransformRanges,
    sample_transforms,
    stabilization_residual_l1,
)


class Regularizers:
    def __init__(self, config: RegularizerConfig, device: torch.device) -> None:
        self.config = config
        self.ranges = TransformRanges(
            max_shift_px=config.max_shift_px,
            max_rotation_deg=config.max_rotation_deg,
            zoom=(config.min_zoom, config.max_zoom),
            max_brightness=config.max_brightness,
            max_blur_sigma=config.max_blur_sigma,
        )
        self.encoder = make_encoder(config.vgg19_weights).to(device) if config.contextual_weight > 0 else None
        self.contextual = ContextualSettings(max_features=config.contextual_max_features)

    @property
    def encoder_name(self) -> str | None:
        """For provenance: which feature encoder the contextual loss used."""
        return None if self.encoder is None else self.encoder.name

    @property
    def uses_fallback_encoder(self) -> bool:
        return isinstance(self.encoder, PatchEncoder)

    def loss(
        self,
        network: IIVINet,
        images: torch.Tensor,
        hole: torch.Tensor,
        real: torch.Tensor,
        output: IIVIOutput,
        valid_height: int,
        valid_width: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """The weighted sum of the enabled regularizers for one training batch."""
        total = images.new_zeros(())
        if self.config.stabilization_weight > 0:
            total = total + self.config.stabilization_weight * self._stabilization(
                network, images, hole, real, output, valid_height, valid_width, generator
            )
        if self.encoder is not None and self.config.contextual_weight > 0:
            # Each output against its partner frame (the batch reversed, as the paper's code),
            # both seen only where the partner is known.
            partner = torch.flip(images, dims=[0])
            partner_known = ~torch.flip(real, dims=[0])
            region = (slice(None), slice(None), slice(0, valid_height), slice(0, valid_width))
            total = total + self.config.contextual_weight * contextual_loss(
                self.encoder,
                output.final[region],
                partner[region],
                partner_known[region],
                generator,
                self.contextual,
            )
        return total

    def _stabilization(
        self,
        network: IIVINet,
        images: torch.Tensor,
        hole: torch.Tensor,
        real: torch.Tensor,
        output: IIVIOutput,
        valid_height: int,
        valid_width: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        batch, _, height, width = images.shape
        transform = sample_transforms(batch, height, width, self.ranges, generator, images.device)
        moved_images = transform.warp_image(images)
        moved_hole = transform.warp_mask(hole)
        moved_real = transform.warp_mask(real) > 0.5
        moved = network(moved_images, moved_hole.contiguous(memory_format=torch.channels_last))
        known = ~(real | moved_real) & transform.inside
        known[..., valid_height:, :] = False
        known[..., :, valid_width:] = False
        loss = stabilization_residual_l1(output.coarse, moved.coarse, images, moved_images, known)
        if output.refined is not None and moved.refined is not None:
            loss = loss + stabilization_residual_l1(output.refined, moved.refined, images, moved_images, known)
        return loss

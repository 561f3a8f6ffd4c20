"""The min-max entropy localiser (Belharbi et al., arXiv 1907.12934; minmax-entropy spec section 1).

One shared encoder, two WILDCAT heads: the localiser M is the hybrid model's ``classifier`` (it sees
whole images, so stage 2 loads it from theta0 exactly like WILDCAT's), and the classifier C of the
masked images is ``masked_classifier`` (stage 2 ignores it). The segmentation head is built but not
trained, as in WILDCAT's stage 1.

Deviations, on purpose: the encoder is torchvision's ResNet-18 (the reference code uses the CSAIL
deep-stem ResNet-101); the foreground map is detached and normalised over the whole batch in training
as the reference code does, and both are keys (``detach_map``, ``normalise``) for the paper's reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch.nn.functional as F
from torch import Tensor

from losses.minmax import foreground_map, min_max_normalise, soft_foreground
from models.hybrid import HybridModel
from models.wildcat import WildcatHead


@dataclass(frozen=True)
class MinMaxSettings:
    sigma: float = 0.5
    w: float = 8.0
    scale: float = 0.5
    erase_steps: int = 4
    erase_from_epoch: int = 1
    sigma_erase: float = 10.0
    detach_map: bool = True
    per_image_norm: bool = False    # in training; evaluation always normalises per image


class Localised(NamedTuple):
    scores: Tensor       # (B, K) the localiser's class scores
    soft: Tensor         # (B, 1, H, W) R+ at the input size


class MinMaxEntropyModel(HybridModel):
    """The hybrid model plus the classifier of masked images; see the module docstring."""

    def __init__(self, num_classes: int, settings: MinMaxSettings, **hybrid: Any) -> None:
        super().__init__(num_classes, **hybrid)
        self.settings = settings
        head = self.classifier
        self.masked_classifier = WildcatHead(self.backbone.out_channels[-1], num_classes,
                                             modalities=head.modalities, kmax=head.kmax, kmin=head.kmin,
                                             alpha=head.alpha, dropout=hybrid.get("dropout", 0.1))

    def localise(self, x: Tensor, per_image: bool) -> Localised:
        """The localiser on x: its scores and the foreground map at x's size."""
        scores, maps = self.classify(self.encode(x, with_full_res=False))
        fg = F.interpolate(foreground_map(scores, maps.to(scores.dtype)), size=x.shape[-2:], mode="bilinear",
                           align_corners=True)
        if self.settings.detach_map:
            fg = fg.detach()
        normalised = min_max_normalise(fg.float(), per_image)
        return Localised(scores, soft_foreground(normalised, self.settings.w, self.settings.sigma))

    def classify_masked(self, x_masked: Tensor) -> Tensor:
        """C's scores (B, K) on a masked image, resized by `scale` first."""
        small = F.interpolate(x_masked, scale_factor=self.settings.scale, mode="bilinear", align_corners=False,
                              recompute_scale_factor=False)
        return self.masked_classifier(self.backbone(small)[-1])[0]

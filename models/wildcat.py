"""WILDCAT classification head (Durand et al., CVPR 2017) on the layer4 grid.

A 1x1 convolution gives M maps per class ("modalities"), averaged into one map per class. The class
score pools each map: the mean of its k highest activations, plus alpha times the mean of its k'
lowest ones (k = max(1, round(kmax*h*w)), k' = max(1, round(kmin*h*w))). The min term is skipped when
kmin or alpha is 0.

Differences from the original implementation, on purpose:
  - its min term was a no-op (the result of an out-of-place ``add`` was discarded), so its scores
    were the top-k mean only; here the min term counts, as in the WILDCAT paper. The discarded line
    would also have halved the sum; that constant rescaling of the logits is not reproduced.
  - k is at least 1, where the original failed on small maps (round(kmax*h*w) = 0).
Dropout is applied to the sorted activations before the top and bottom k are taken, as the original.
"""

import torch
from torch import Tensor, nn


class WildcatHead(nn.Module):
    """Class maps and pooled class scores from the last backbone stage."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        modalities: int = 5,
        kmax: float = 0.1,
        kmin: float = 0.1,
        alpha: float = 0.6,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if num_classes < 1 or modalities < 1:
            raise ValueError(
                f"WILDCAT needs num_classes >= 1 and modalities >= 1, got {num_classes} and "
                f"{modalities}"
            )
        if not 0.0 < kmax <= 1.0 or not 0.0 <= kmin <= 1.0:
            raise ValueError(
                f"WILDCAT kmax must lie in (0, 1] and kmin in [0, 1] (fractions of the map), "
                f"got kmax={kmax}, kmin={kmin}"
            )
        if alpha < 0.0 or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"WILDCAT needs alpha >= 0 and dropout in [0, 1), got alpha={alpha}, "
                f"dropout={dropout}"
            )
        self.num_classes = num_classes
        self.modalities = modalities
        self.kmax = kmax
        self.kmin = kmin
        self.alpha = alpha
        self.conv = nn.Conv2d(in_channels, num_classes * modalities, kernel_size=1, bias=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def pool(self, maps: Tensor) -> Tensor:
        """Scores (B, C) of class maps (B, C, h, w)."""
        n = maps.shape[-2] * maps.shape[-1]
        ranked = self.dropout(torch.sort(maps.flatten(2), dim=-1, descending=True).values)
        k_max = max(1, round(self.kmax * n))
        scores = ranked[..., :k_max].mean(dim=-1)
        if self.kmin > 0 and self.alpha > 0:
            k_min = max(1, round(self.kmin * n))
            scores = scores + self.alpha * ranked[..., n - k_min :].mean(dim=-1)
        return scores

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (scores (B, C), class maps (B, C, h, w) on the input grid)."""
        b, _, h, w = x.shape
        maps = self.conv(x).reshape(b, self.num_classes, self.modalities, h, w).mean(dim=2)
        return self.pool(maps), maps

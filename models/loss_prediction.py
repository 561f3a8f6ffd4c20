"""The loss-prediction module of Learning Loss for AL (Yoo & Kweon 2019).

Per tapped feature map: global average pooling, a fully connected layer to `width`, ReLU; the
levels are concatenated and a last fully connected layer gives one predicted loss per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class LossPredictionModule(nn.Module):
    def __init__(self, in_channels: Sequence[int], width: int = 128) -> None:
        super().__init__()
        if width < 1 or not in_channels or min(in_channels) < 1:
            raise ValueError(f"width ({width}) and every tapped channel count ({list(in_channels)}) must be >= 1")
        self.levels = nn.ModuleList(nn.Sequential(nn.Linear(c, width), nn.ReLU()) for c in in_channels)
        self.out = nn.Linear(width * len(in_channels), 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """(B,) predicted losses from the tapped maps (B, C_l, H_l, W_l), one per level."""
        if len(features) != len(self.levels):
            raise ValueError(f"{len(features)} feature maps for {len(self.levels)} levels")
        pooled = [level(f.float().mean(dim=(2, 3))) for level, f in zip(self.levels, features, strict=True)]
        return self.out(torch.cat(pooled, dim=1)).squeeze(1)

"""The frozen encoder's outputs on evaluation images, computed once per theta0.

In stage 2 the backbone is frozen at theta0 and runs in eval mode, so its five stages on an
evaluation image (validation, test, pool) are the same in every epoch of a round, in every member of
an ensemble and in every round of a process (--al_it_end). FrozenFeatures keeps them per image, on
the model's device and in the dtype they were computed in (bf16 under --amp_bf16), and hands them
back by (evaluation set, position): validation, the final evaluation, threshold estimation,
pseudo-masks and scoring then run only the segmentation head, which learns. Training crops are
random, so they never come from the cache.

A batch is looked up whole: if one of its images is missing, the batch is computed as before and its
new images kept. The first batch that would pass `budget_bytes` stops the cache growing (what is
kept keeps serving); the README gives the memory per image.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
from torch import Tensor, nn

GIB = 1024 ** 3


class FrozenFeatures:
    """Backbone stages per evaluation image for one theta0 (models built from another must not share it)."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.bytes = 0
        self.hits = 0      # images served from the cache
        self.misses = 0    # images whose stages were computed
        self._stages: dict[Hashable, tuple[Tensor, ...]] = {}

    def __len__(self) -> int:
        return len(self._stages)

    def stages(self, backbone: nn.Module, keys: Sequence[Hashable], x: Tensor) -> tuple[Tensor, ...]:
        """The backbone's stages on the batch x whose images are `keys`, from the cache when all are there."""
        kept = [self._stages.get(k) for k in keys]
        if all(k is not None for k in kept):
            self.hits += len(keys)
            return tuple(_batched(torch.stack(level), x) for level in zip(*kept))
        stages = backbone(x)
        self.misses += len(keys)
        per_image = sum(s[0].numel() * s.element_size() for s in stages)
        for row, key in enumerate(keys):
            if key not in self._stages and self.bytes + per_image <= self.budget_bytes:
                self._stages[key] = tuple(s[row].clone() for s in stages)
                self.bytes += per_image
        return stages


def _batched(stacked: Tensor, like: Tensor) -> Tensor:
    """A stacked level in the memory format of the batch it replaces (channels_last stays so)."""
    if like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        return stacked.contiguous(memory_format=torch.channels_last)
    return stacked

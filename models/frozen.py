"""The frozen encoder's outputs on evaluation images, computed once per theta0.

In stage 2 the backbone is frozen at theta0 and runs in eval mode, so its five stages on an
evaluation image (validation, test, pool) are the same in every epoch of a round, in every member of
an ensemble and in every round of a process (--al_it_end). FrozenFeatures keeps them per image, on
the model's device and in the dtype they were computed in (bf16 under --amp_bf16), and hands them
back by (evaluation set uid, position): validation, the final evaluation, threshold estimation,
pseudo-masks and scoring then run only the segmentation head, which learns. Training crops are
random, so they never come from the cache.

The first request for an image of a set fills the cache with the whole set, in the set's own
batches (those of a full pass), so that what is served does not depend on which subset asked first
or on the rounds run before in the process (a convolution's last bits may depend on the batch an
image is in). A batch is served whole from the cache or computed whole as without it. Images past
`budget_bytes` are not kept. A change of compute dtype (the fp32 retry of a diverged bf16 round)
empties the cache, which then refills in the new dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

GIB = 1024 ** 3


class EvalSource(Protocol):
    """An evaluation set as the cache needs it: a uid, and its batches (objects with `keys` and `images`)."""

    uid: int

    def batches(self) -> Iterable[Any]: ...


class FrozenFeatures:
    """Backbone stages per evaluation image for one theta0 (models built from another must not share it).
    Keys are (set uid, position) pairs, as engine.resident.EvalBatch.keys names them."""

    def __init__(self, budget_bytes: int, sets: Sequence[EvalSource], prepare: Callable[[Tensor], Tensor]) -> None:
        self.budget_bytes = budget_bytes
        self.bytes = 0
        self.hits = 0      # images served from the cache
        self.misses = 0    # images of batches computed as without the cache
        self._sets = {s.uid: s for s in sets}
        self._prepare = prepare
        self._mode: torch.dtype | None = None
        self._filled: set[int] = set()
        self._stages: dict[Hashable, tuple[Tensor, ...]] = {}

    def __len__(self) -> int:
        return len(self._stages)

    def stages(self, backbone: nn.Module, keys: Sequence[tuple[int, int]], x: Tensor) -> tuple[Tensor, ...]:
        """The backbone's stages on the batch x whose images are `keys`, from the cache when all are there."""
        mode = _compute_dtype(x)
        if mode != self._mode:
            self._stages.clear()
            self._filled.clear()
            self.bytes, self._mode = 0, mode
        for uid in sorted({uid for uid, _ in keys} - self._filled):
            self._fill(backbone, uid)
        kept = [self._stages.get(k) for k in keys]
        if all(k is not None for k in kept):
            self.hits += len(keys)
            return tuple(_batched(torch.stack(level), x) for level in zip(*kept))
        self.misses += len(keys)
        return backbone(x)

    def _fill(self, backbone: nn.Module, uid: int) -> None:
        """Every image of set `uid` that fits the budget, computed in the set's own batches."""
        self._filled.add(uid)
        source = self._sets.get(uid)
        if source is None:
            return
        for batch in source.batches():
            if self.bytes >= self.budget_bytes:
                return
            stages = backbone(self._prepare(batch.images))
            per_image = sum(s[0].numel() * s.element_size() for s in stages)
            for row, key in enumerate(batch.keys):
                if self.bytes + per_image <= self.budget_bytes:
                    self._stages[key] = tuple(s[row].clone() for s in stages)
                    self.bytes += per_image


def _compute_dtype(x: Tensor) -> torch.dtype:
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


def _batched(stacked: Tensor, like: Tensor) -> Tensor:
    """A stacked level in the memory format of the batch it replaces (channels_last stays so)."""
    if like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        return stacked.contiguous(memory_format=torch.channels_last)
    return stacked

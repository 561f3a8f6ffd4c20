"""One-pass uncertainty: least confidence, margin and entropy of the class probabilities (strategies.md 3).

The maths works on class-probability tensors (B, C, ...) with the classes on dim 1, so the same
functions score a classifier's (B, C) output and a binary mask's per-pixel class vector (1 - p, p);
the task then averages the per-pixel scores over the valid pixels of each image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from al.strategies.base import PROBABILITIES, Strategy


def least_confidence(probs: Tensor) -> Tensor:
    """1 - max_c p_c over dim 1 (an older reference computed max_c (1 - p_c), which is wrong)."""
    return 1.0 - probs.amax(dim=1)


def margin(probs: Tensor) -> Tensor:
    """p(1) - p(2), the gap between the two most likely classes over dim 1: small = uncertain."""
    top = probs.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def entropy(probs: Tensor) -> Tensor:
    """-sum_c p_c ln p_c over dim 1 in nats, with 0 ln 0 = 0 (never NaN)."""
    return torch.special.entr(probs.clamp(0.0, 1.0)).sum(dim=1)


class LeastConfidence(Strategy):
    name = "Least_confidence"
    needs = frozenset({PROBABILITIES})

    def pixel_scores(self, class_probs: Tensor) -> Tensor:
        return least_confidence(class_probs)


class Margin(Strategy):
    """Smallest margin first: the score is 1 - margin, so that higher still means annotate first."""

    name = "Margin"
    needs = frozenset({PROBABILITIES})

    def pixel_scores(self, class_probs: Tensor) -> Tensor:
        return 1.0 - margin(class_probs)


class Entropy(Strategy):
    name = "Entropy"
    needs = frozenset({PROBABILITIES})

    def pixel_scores(self, class_probs: Tensor) -> Tensor:
        return entropy(class_probs)

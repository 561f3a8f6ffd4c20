"""Learning Loss for AL's pairwise margin-ranking loss (Yoo & Kweon 2019; strategies.md 6).

Only the order of the predicted losses matters for selection, so the module is trained to rank
pairs of samples rather than to regress the loss values. Sample i of a batch is paired with sample
B-1-i; an odd batch leaves its middle sample out and a batch of one has no pair (loss 0, never a
division by zero).
"""

from __future__ import annotations

import torch
from torch import Tensor


def margin_ranking_loss(predicted: Tensor, target: Tensor, margin: float) -> Tensor:
    """mean over pairs (i, B-1-i) of max(0, margin - y (p_i - p_j)), y = +1 if l_i > l_j else -1.

    `target` (the true per-sample losses) is detached: the ranking teaches the module, not the model.
    Ties of the targets give y = -1, as in the reference.
    """
    if predicted.shape != target.shape or predicted.dim() != 1:
        raise ValueError(f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} must both be (B,)")
    half = predicted.shape[0] // 2
    if half == 0:
        return predicted.sum() * 0.0  # keeps the graph (and the device) of the predictions
    target = target.detach()
    head, tail = torch.arange(half), torch.arange(predicted.shape[0] - 1, predicted.shape[0] - 1 - half, -1)
    sign = torch.where(target[head] > target[tail], 1.0, -1.0).to(predicted.dtype)
    return torch.clamp(margin - sign * (predicted[head] - predicted[tail]), min=0.0).mean()

"""The pieces of min-max entropy WSL with recursive erasing (minmax-entropy spec sections 1-3), as small
pure functions so that each can be checked by hand.

- ``foreground_map``: M+ = sum_c softmax(s^M)_c map^M_c, the localiser's class maps weighted by its own
  posterior;
- ``min_max_normalise`` and ``soft_foreground``: R+ = sigmoid(w (normalised M+ - sigma));
- ``uniform_cross_entropy``: the "max entropy" term, cross-entropy to the uniform distribution;
- ``erasing_trust``, ``accumulate_mask`` and ``erase``: one step of recursive erasing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# Guards the division of a constant map (max = min) in the min-max normalisation.
NORM_EPS = 1e-8


def foreground_map(scores: Tensor, maps: Tensor) -> Tensor:
    """(B, 1, h, w): the class maps (B, K, h, w) weighted by the softmax of the scores (B, K)."""
    weights = scores.softmax(dim=1)[:, :, None, None]
    return (weights * maps).sum(dim=1, keepdim=True)


def min_max_normalise(m: Tensor, per_image: bool) -> Tensor:
    """m scaled to [0, 1], per image, or over the whole batch tensor as the reference code does."""
    dims = tuple(range(1, m.dim())) if per_image else tuple(range(m.dim()))
    low = m.amin(dim=dims, keepdim=True)
    high = m.amax(dim=dims, keepdim=True)
    return (m - low) / (high - low).clamp_min(NORM_EPS)


def soft_foreground(normalised: Tensor, w: float, sigma: float) -> Tensor:
    """R+ = sigmoid(w (m - sigma)): above 0.5 exactly where the normalised map reaches sigma."""
    return torch.sigmoid(w * (normalised - sigma))


def uniform_cross_entropy(scores: Tensor) -> Tensor:
    """Batch mean of -(1/K) sum_c log softmax(s)_c = KL(U || p) + log K: lowest when p is uniform."""
    return -F.log_softmax(scores, dim=1).mean(dim=1).mean()


def erasing_trust(step: int, correct: Tensor, loss: Tensor, first_loss: Tensor, confidence: Tensor,
                  history: Tensor, sigma_erase: float) -> tuple[Tensor, Tensor]:
    """(trust tau, history) of erasing step `step` (spec section 3.2.3), all (B,) tensors.

    The history first drops to 0 for a sample the localiser misclassifies, for the rest of the batch;
    tau = exp(-step / sigma_erase) * [correct] * [loss <= first loss] * confidence * history.
    """
    history = torch.minimum(history, correct)
    decay = math.exp(-step / sigma_erase) if sigma_erase > 0 else float(step == 0)
    tau = decay * correct * (loss <= first_loss).to(loss.dtype) * confidence * history
    return tau, history


def accumulate_mask(accumulated: Tensor, tau: Tensor, soft: Tensor) -> Tensor:
    """A <- max(A, tau_i R+_t), elementwise; A and R+ are (B, 1, H, W)."""
    return torch.maximum(accumulated, tau.view(-1, 1, 1, 1) * soft)


def erase(x: Tensor, accumulated: Tensor, tau: Tensor) -> Tensor:
    """X_{t+1} = X_t (1 - A) for the samples with tau > 0; the others stay as they are."""
    return torch.where((tau > 0).view(-1, 1, 1, 1), x * (1 - accumulated), x)

"""Per-image acquisition scores computed from foreground probability maps.

All per-pixel work stays on the device of the probabilities; only the (B,) scores need to leave it
(the caller moves them to the host). Two defects of the original are fixed here: the entropy score
is the true binary entropy (the original used -2 p log p, NaN at p = 0), and the MC-dropout variance
is the per-pixel variance averaged over pixels (the original pooled all pixels of all passes into
one column).
"""

from collections.abc import Callable

import torch
from torch import Tensor


def binary_entropy(p: Tensor) -> Tensor:
    """Elementwise -p log p - (1-p) log(1-p) in nats: 0 at p = 0 and 1, ln 2 at 0.5, never NaN.

    entr gives -0·log 0 = +0 exactly; p is clamped to [0, 1] so that a probability that drifted past
    the bounds by rounding cannot produce a NaN.
    """
    p = p.clamp(0.0, 1.0)
    return torch.special.entr(p) + torch.special.entr(1.0 - p)


def mean_binary_entropy(p: Tensor) -> Tensor:
    """Entropy score of each image: mean binary entropy over all non-batch dims of p (B, ...).

    The mean is accumulated in float64 so that the ranking of images does not depend on the
    reduction order of large float32 maps. Returns a float64 (B,) tensor on p's device.
    """
    if p.ndim < 1:
        raise ValueError("probabilities must have a batch dimension; pass a tensor of shape (B, ...)")
    if p.shape[0] > 0 and p[0].numel() == 0:
        raise ValueError(f"probability maps of shape {tuple(p.shape)} have no pixels; pass non-empty maps")
    return binary_entropy(p).reshape(p.shape[0], -1).mean(dim=1, dtype=torch.float64)


class PassStats:
    """Streaming statistics of T forward passes of one batch: MC-dropout passes or ensemble members.

    Keeps O(B·pixels) float64 state (running mean of p, running sum of squared deviations, running
    mean of H(p)) instead of the T×pixels stack, updated with Welford's recurrences: identical passes
    leave the deviations at exactly 0, so their variance and BALD are exactly 0. The state lives on
    the device of the first update; variance() and bald() reduce over pixels there and return (B,).
    """

    def __init__(self) -> None:
        self.count = 0
        self._mean: Tensor | None = None
        self._m2: Tensor | None = None
        self._mean_h: Tensor | None = None

    def update(self, p: Tensor) -> None:
        """Add one pass: p (B, ...) are the foreground probabilities of that pass."""
        if p.ndim < 1 or p.shape[0] == 0 or p[0].numel() == 0:
            raise ValueError(
                f"a pass must be a non-empty (B, ...) probability tensor, got shape {tuple(p.shape)}"
            )
        self._add(p.detach().to(torch.float64).reshape(p.shape[0], -1), binary_entropy)

    def _add(self, x: Tensor, entropy: Callable[[Tensor], Tensor]) -> None:
        """Welford's step for one pass x (B, K) float64, and the running mean of entropy(x)."""
        h = entropy(x)
        if self._mean is None:
            self._mean, self._m2, self._mean_h = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(h)
        elif x.shape != self._mean.shape or x.device != self._mean.device:
            raise ValueError(
                f"pass of shape {tuple(x.shape)} on {x.device} does not match the earlier passes "
                f"({tuple(self._mean.shape)} flattened, on {self._mean.device}); "
                "use one accumulator per batch"
            )
        self.count += 1
        delta = x - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (x - self._mean)
        self._mean_h += (h - self._mean_h) / self.count

    def variance(self) -> Tensor:
        """Mean over pixels of the per-pixel population variance over the passes, float64 (B,)."""
        self._require_passes()
        return (self._m2 / self.count).mean(dim=1).clamp_min(0.0)

    def predictive_entropy(self) -> Tensor:
        """Mean over pixels of H(mean_t p), the entropy of the mean prediction, float64 (B,)."""
        self._require_passes()
        return binary_entropy(self._mean).mean(dim=1)

    def bald(self) -> Tensor:
        """Mean over pixels of H(mean_t p) - mean_t H(p) (mutual information), float64 (B,)."""
        self._require_passes()
        return (binary_entropy(self._mean) - self._mean_h).mean(dim=1).clamp_min(0.0)

    def variance_map(self) -> Tensor:
        """Per-pixel population variance over the passes, float64 (B, pixels): for region scores."""
        self._require_passes()
        return (self._m2 / self.count).clamp_min(0.0)

    def predictive_entropy_map(self) -> Tensor:
        """Per-pixel H(mean_t p), float64 (B, pixels)."""
        self._require_passes()
        return binary_entropy(self._mean)

    def bald_map(self) -> Tensor:
        """Per-pixel H(mean_t p) - mean_t H(p), float64 (B, pixels)."""
        self._require_passes()
        return (binary_entropy(self._mean) - self._mean_h).clamp_min(0.0)

    def _require_passes(self) -> None:
        if self.count == 0:
            raise ValueError("no pass was added; call update() at least once before reading scores")


def categorical_entropy(p: Tensor) -> Tensor:
    """-sum_c p_c ln p_c over the last dim, in nats, with 0 ln 0 = 0."""
    return torch.special.entr(p.clamp(0.0, 1.0)).sum(dim=-1)


class CategoricalPassStats(PassStats):
    """The statistics of PassStats for a classifier's class-probability vectors (B, C) (strategies.md 4):
    variance is mean_c Var_t p_c, entropies are over the C classes. Same names, so that a strategy's
    pass_scores serves both tasks."""

    def update(self, p: Tensor) -> None:
        """Add one pass: p (B, C) class probabilities."""
        if p.ndim != 2 or p.shape[0] == 0:
            raise ValueError(f"a pass must be a non-empty (B, C) probability tensor, got shape {tuple(p.shape)}")
        self._add(p.detach().to(torch.float64), categorical_entropy)

    def predictive_entropy(self) -> Tensor:
        self._require_passes()
        return categorical_entropy(self._mean)

    def bald(self) -> Tensor:
        self._require_passes()
        return (categorical_entropy(self._mean) - self._mean_h).clamp_min(0.0)


# The scores of several passes or members, by name (strategies.md 4): per image (either statistics
# class) and per pixel (PassStats).
PASS_SCORES = {"entropy": "predictive_entropy", "bald": "bald", "variance": "variance"}
PASS_MAPS = {"entropy": PassStats.predictive_entropy_map, "bald": PassStats.bald_map,
             "variance": PassStats.variance_map}


def pass_score(stats: PassStats, kind: str) -> Tensor:
    """The named score of several passes or members: "entropy" (predictive), "bald" or "variance"."""
    if kind not in PASS_SCORES:
        raise ValueError(f"unknown pass score '{kind}': use one of {', '.join(PASS_SCORES)}")
    return getattr(stats, PASS_SCORES[kind])()


def pass_map(stats: PassStats, kind: str) -> Tensor:
    """The named score per pixel, (B, pixels): what region-level selection averages over a region."""
    if kind not in PASS_MAPS:
        raise ValueError(f"unknown pass score '{kind}': use one of {', '.join(PASS_MAPS)}")
    return PASS_MAPS[kind](stats)

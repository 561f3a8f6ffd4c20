"""Discriminative Active Learning (Gissin & Shalev-Shwartz 2019; strategies spec section 7).

DAL picks the candidates that look least like the labelled set: a small MLP learns to tell the
labelled features (class 0) from a random subsample of the pool (class 1), and the candidates it
finds most surely "unlabelled" are annotated first. The round's pick is made in sub-batches; after
each one the picks join the labelled side (no labels are needed for that) and the discriminator is
trained again from scratch, so that one sub-batch does not spend the budget on near-duplicates.

Two defects of the references are avoided on purpose: only the discriminator's parameters are
optimised (one reference hands the base network's parameters to Adam, so its discriminator never
learns), and the class weights are really balanced, n/(2|L|) and n/(2|U|) (the authors' code counts
zeros of a one-hot matrix and ends up with 1:1).

All randomness (initial weights, mini-batch order, the pool subsample) comes from CPU generators
seeded from the round's numpy Generator, so a selection is reproducible from the rng state.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from al.strategies.base import (
    FEATURES,
    Evidence,
    Selection,
    Strategy,
    StrategyError,
    StrategySettings,
    feature_evidence,
    feature_matrix,
)

NARROW_INPUT = 30   # inputs with fewer dimensions get a narrow MLP, as in the authors' code
NARROW_WIDTH = 20
LABELLED, UNLABELLED = 0, 1


def discriminator(in_features: int, width: int, generator: torch.Generator | None = None) -> nn.Module:
    """MLP with 3 ReLU hidden layers and 2 outputs (labelled, unlabelled); no dropout, no norm.

    The width is 20 when the input has fewer than 30 dimensions: a wide net on a tiny input only
    overfits faster. With `generator` the initial weights are drawn from it (the same law as
    nn.Linear's default), so that they do not depend on the global RNG.
    """
    if in_features < 1 or width < 1:
        raise ValueError(f"in_features={in_features} and width={width} must both be >= 1")
    w = NARROW_WIDTH if in_features < NARROW_INPUT else width
    model = nn.Sequential(
        nn.Linear(in_features, w), nn.ReLU(),
        nn.Linear(w, w), nn.ReLU(),
        nn.Linear(w, w), nn.ReLU(),
        nn.Linear(w, 2),
    )
    if generator is not None:
        with torch.no_grad():
            for layer in model:
                if isinstance(layer, nn.Linear):
                    bound = 1.0 / float(layer.in_features) ** 0.5
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)
    return model


def class_weights(n_labelled: int, n_unlabelled: int) -> Tensor:
    """(2,) float32 cross-entropy weights n/(2|L|), n/(2|U|): both sides weigh n/2 in total."""
    if n_labelled < 1 or n_unlabelled < 1:
        raise ValueError(f"n_labelled={n_labelled} and n_unlabelled={n_unlabelled} must both be >= 1")
    n = n_labelled + n_unlabelled
    return torch.tensor([n / (2.0 * n_labelled), n / (2.0 * n_unlabelled)], dtype=torch.float32)


def _logits(model: nn.Module, x: Tensor, batch: int) -> Tensor:
    """Logits of all rows of x, in blocks of `batch` rows, without a graph."""
    with torch.no_grad():
        return torch.cat([model(x[start:start + batch]) for start in range(0, x.shape[0], batch)])


def p_unlabelled(model: nn.Module, features: Tensor, batch: int = 1024) -> np.ndarray:
    """(n,) float64: the discriminator's P(unlabelled | z), the DAL score (higher = annotate first)."""
    features = feature_matrix(features, "features")
    if features.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    model.eval()
    probs = torch.softmax(_logits(model, features, max(1, batch)), dim=1)[:, UNLABELLED]
    return probs.double().cpu().numpy()


def _accuracy(model: nn.Module, x: Tensor, y: Tensor, batch: int) -> float:
    model.eval()
    return float((_logits(model, x, batch).argmax(dim=1) == y).double().mean())


def train_discriminator(
    labelled: Tensor, unlabelled: Tensor, settings: StrategySettings, generator: torch.Generator
) -> tuple[nn.Module, float, int]:
    """A fresh discriminator trained to tell `labelled` (class 0) from `unlabelled` (class 1).

    Weighted cross-entropy and Adam(dal_lr) on the discriminator's own parameters, shuffled
    mini-batches of dal_batch_size; training stops once the accuracy over all training rows,
    measured after an epoch, exceeds dal_stop_accuracy, or after dal_max_epochs epochs (0 returns
    the untrained net). Initial weights and batch order come from `generator` (a CPU generator),
    so the result is reproducible on the CPU. Returns (model in eval mode, accuracy, epochs run).
    """
    labelled = feature_matrix(labelled, "labelled features")
    unlabelled = feature_matrix(unlabelled, "unlabelled features").to(labelled.device)
    if labelled.shape[1] != unlabelled.shape[1]:
        raise ValueError(f"labelled features have {labelled.shape[1]} dims and unlabelled {unlabelled.shape[1]}")
    if settings.dal_batch_size < 1 or settings.dal_max_epochs < 0:
        raise ValueError(
            f"dal_batch_size={settings.dal_batch_size} must be >= 1 and dal_max_epochs={settings.dal_max_epochs} >= 0"
        )
    device = labelled.device
    weights = class_weights(labelled.shape[0], unlabelled.shape[0]).to(device)
    x = torch.cat([labelled, unlabelled])
    y = torch.cat([
        torch.full((labelled.shape[0],), LABELLED, dtype=torch.long),
        torch.full((unlabelled.shape[0],), UNLABELLED, dtype=torch.long),
    ]).to(device)
    model = discriminator(x.shape[1], settings.dal_width, generator).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.dal_lr)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    batch = settings.dal_batch_size
    accuracy = _accuracy(model, x, y, batch)
    epochs = 0
    while epochs < settings.dal_max_epochs:
        model.train()
        order = torch.randperm(x.shape[0], generator=generator).to(device)
        for start in range(0, x.shape[0], batch):
            rows = order[start:start + batch]
            optimiser.zero_grad(set_to_none=True)
            loss_fn(model(x[rows]), y[rows]).backward()
            optimiser.step()
        epochs += 1
        accuracy = _accuracy(model, x, y, batch)
        if accuracy > settings.dal_stop_accuracy:
            break
    model.eval()
    return model, accuracy, epochs


def top_unlabelled(p_unlabelled: np.ndarray, k: int) -> list[int]:
    """Indices of the k highest P(unlabelled), highest first; equal values go to the first index."""
    p = np.asarray(p_unlabelled, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"P(unlabelled) must be 1-D, got shape {p.shape}")
    if not 0 <= k <= p.size:
        raise ValueError(f"k={k} must be in [0, {p.size}] (the number of scored rows)")
    if np.isnan(p).any():
        raise ValueError(f"{int(np.isnan(p).sum())} P(unlabelled) values are NaN; fix the discriminator's input")
    return np.argsort(-p, kind="stable")[:k].tolist()


def sub_batch_quotas(quota: int, n_sub: int) -> list[int]:
    """quota split over n_sub sub-batches as evenly as possible, the larger parts first."""
    if quota < 0 or n_sub < 1:
        raise ValueError(f"quota={quota} must be >= 0 and n_sub={n_sub} >= 1")
    return [quota // n_sub + (1 if j < quota % n_sub else 0) for j in range(n_sub)]


def _seeded(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**31)))


class DiscriminativeAL(Strategy):
    """Class-balanced DAL batch: sub-batches of the top P(unlabelled), retraining between them.

    Each class present among the candidates receives min(per_class, n_c) picks, spread over
    dal_sub_batches sub-batches. A sub-batch scores a random subsample U' of
    min(dal_pool_ratio * |L|, |U|) remaining candidates, where L holds the labelled set and every
    earlier pick; a class that U' holds too few rows of carries its shortfall to the next
    sub-batch, and after the last one the shortfall is filled from all remaining candidates of
    the class by the last discriminator. Candidates are ordered by id first, so that neither ties
    nor the subsample depend on the order in which the pool was collected.
    """

    name = "DAL"
    needs = frozenset({FEATURES})

    def _check_settings(self) -> None:
        s = self.settings
        for key, value, least in (
            ("dal_sub_batches", s.dal_sub_batches, 1),
            ("dal_pool_ratio", s.dal_pool_ratio, 1),
            ("dal_batch_size", s.dal_batch_size, 1),
            ("dal_width", s.dal_width, 1),
            ("dal_max_epochs", s.dal_max_epochs, 0),
        ):
            if value < least:
                raise StrategyError(f"{key}={value} cannot run DAL: set {key} to an integer >= {least}")
        if not s.dal_lr > 0.0:
            raise StrategyError(f"dal_lr={s.dal_lr} cannot train the discriminator: set dal_lr > 0 (default 2e-4)")

    def check(self, labelled_labels: np.ndarray, feature_dim: int) -> None:
        """Refuse an empty labelled set: there would be no labelled side to discriminate."""
        self._check_settings()
        if np.asarray(labelled_labels).size == 0:
            raise StrategyError(
                "DAL trains a discriminator between the labelled set and the pool: "
                "raise p_init_samples (now 0 images per class)"
            )

    def select(self, evidence: Evidence, per_class: int, rng: np.random.Generator) -> Selection:
        """min(per_class, n_c) candidates per class, in pick order, with the P(unlabelled) they got."""
        self._check_settings()
        ids, labels, pool, labelled = feature_evidence(self.name, evidence, per_class)
        if labelled.shape[0] == 0:
            raise StrategyError(
                "DAL trains a discriminator between the labelled set and the pool: "
                "raise p_init_samples (now 0 images per class)"
            )
        if labelled.shape[1] != pool.shape[1]:
            raise ValueError(f"labelled features have {labelled.shape[1]} dims and candidates {pool.shape[1]}")
        if not ids:
            return Selection([], {})

        s = self.settings
        by_id = np.argsort(np.asarray(ids, dtype=np.str_), kind="stable")  # row of the i-th smallest id
        classes = np.unique(labels)
        plans = {int(c): sub_batch_quotas(min(per_class, int((labels == c).sum())), s.dal_sub_batches)
                 for c in classes}
        shortfall = {c: 0 for c in plans}
        taken = np.zeros(len(ids), dtype=bool)
        picked: list[int] = []  # candidate rows in pick order
        scores: dict[str, float] = {}
        model: nn.Module | None = None

        def rows_tensor(rows: np.ndarray | list[int]) -> Tensor:
            return torch.as_tensor(np.asarray(rows, dtype=np.int64), device=pool.device)

        for j in range(s.dal_sub_batches):
            want = {c: plans[c][j] + shortfall[c] for c in plans}
            if not any(want.values()):
                continue
            current = torch.cat([labelled, pool[rows_tensor(picked)]]) if picked else labelled
            remaining = by_id[~taken[by_id]]
            size = min(s.dal_pool_ratio * current.shape[0], remaining.size)
            draw = torch.randperm(remaining.size, generator=_seeded(rng))[:size].numpy()
            subsample = remaining[np.sort(draw)]  # kept in id order, so ties go to the smaller id
            model, _, _ = train_discriminator(current, pool[rows_tensor(subsample)], s, _seeded(rng))
            p = p_unlabelled(model, pool[rows_tensor(subsample)], s.dal_batch_size)
            scores.update({ids[r]: float(v) for r, v in zip(subsample, p)})
            for c in plans:
                of_class = np.flatnonzero(labels[subsample] == c)
                k = min(want[c], of_class.size)
                chosen = subsample[of_class[top_unlabelled(p[of_class], k)]]
                picked.extend(int(r) for r in chosen)
                taken[chosen] = True
                shortfall[c] = want[c] - k

        for c in plans:
            if shortfall[c] == 0:
                continue
            assert model is not None  # a shortfall arises only in a sub-batch that trained one
            rest = by_id[~taken[by_id] & (labels[by_id] == c)]
            p = p_unlabelled(model, pool[rows_tensor(rest)], s.dal_batch_size)
            scores.update({ids[r]: float(v) for r, v in zip(rest, p)})
            chosen = rest[top_unlabelled(p, shortfall[c])]
            picked.extend(int(r) for r in chosen)
            taken[chosen] = True
            shortfall[c] = 0
        return Selection([ids[r] for r in picked], scores)

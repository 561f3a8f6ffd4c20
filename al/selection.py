"""Budgets and class-balanced choice of the samples the oracle annotates (method-spec 4.2, 4.3, 3.4).

Every function sees only the pool it is given, so it can never return a labelled sample, and never
returns more ids than the pool holds. Ids are strings, labels are integers; randomness comes from an
explicit numpy Generator and the pool is sorted by id first, so that the result does not depend on
the order in which the caller happened to collect the pool.
"""

import math
from collections.abc import Sequence

import numpy as np


def _floor_count(x: float) -> int:
    """Floor of a budget computed from a percentage such as 800/67.

    p·N/100 is meant to be an integer when p was written as a ratio; rounding to 9 decimals first
    keeps 3.9999999999999996 (another evaluation order of the same ratio) from becoming 3.
    """
    return math.floor(round(x, 9))


def _check_percent(name: str, p: float) -> None:
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"{name}={p} is not a percentage; pass a value in [0, 100]")


def initial_per_class(p_init_samples: float, n_train: int, n_classes: int) -> int:
    """Number of images per class labelled at round 0: int(p·N/100/#classes).

    GlaS p=800/67, N=67, 2 classes gives 4; CUB p=20000/4794, N=4794, 200 classes gives 1.
    """
    _check_percent("p_init_samples", p_init_samples)
    if n_train < 1 or n_classes < 1:
        raise ValueError(f"n_train={n_train} and n_classes={n_classes} must both be >= 1")
    return _floor_count(p_init_samples * n_train / 100.0 / n_classes)


def round_count(p_samples: float, n_train: int) -> int:
    """Number of images the oracle labels per round, fixed once: int(p·N/100).

    GlaS p=200/67, N=67 gives 2; CUB p=20000/4794, N=4794 gives 200.
    """
    _check_percent("p_samples", p_samples)
    if n_train < 1:
        raise ValueError(f"n_train={n_train} must be >= 1")
    return _floor_count(p_samples * n_train / 100.0)


def per_class_quota(count: int, pool_labels: np.ndarray) -> int:
    """Images per class for one round: max(1, int(min(count, |pool|) / #classes present in pool)).

    An empty pool has nothing to give and yields 0.
    """
    if count < 0:
        raise ValueError(f"count={count} must be >= 0")
    labels = _as_labels(pool_labels, None)
    if labels.size == 0:
        return 0
    return max(1, min(count, labels.size) // np.unique(labels).size)


def select_random_balanced(
    pool_ids: Sequence[str], pool_labels: np.ndarray, per_class: int, rng: np.random.Generator
) -> list[str]:
    """Draw min(per_class, available) ids per class present in the pool, without replacement.

    Returned class by class (ascending label), in draw order.
    """
    ids, labels = _validated_pool(pool_ids, pool_labels, per_class)
    by_id = np.argsort(ids, kind="stable")
    picked: list[str] = []
    for c in np.unique(labels):
        members = by_id[labels[by_id] == c]
        chosen = rng.choice(members, size=min(per_class, members.size), replace=False)
        picked.extend(ids[chosen].tolist())
    return picked


def select_top_balanced(
    pool_ids: Sequence[str], pool_labels: np.ndarray, scores: np.ndarray, per_class: int
) -> list[str]:
    """The per_class highest-scoring ids of each class present; equal scores are ordered by id.

    Returned class by class (ascending label), highest score first. NaN scores are refused because
    they would sort arbitrarily.
    """
    ids, labels = _validated_pool(pool_ids, pool_labels, per_class)
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (ids.size,):
        raise ValueError(f"scores have shape {values.shape}; pass one score per pool id ({ids.size},)")
    if np.isnan(values).any():
        raise ValueError(f"{int(np.isnan(values).sum())} scores are NaN; fix the scoring before selection")
    by_id = np.argsort(ids, kind="stable")
    ranked = by_id[np.argsort(-values[by_id], kind="stable")]
    picked: list[str] = []
    for c in np.unique(labels):
        picked.extend(ids[ranked[labels[ranked] == c][:per_class]].tolist())
    return picked


def oracle_candidates(
    leftovers: Sequence[str], pseudo_labelled: Sequence[str], n_classes: int, protect_pl: bool
) -> list[str]:
    """The leftovers the oracle may pick from (spec 3.4 protect_pl rule).

    With protect_pl, pseudo-labelled samples are withheld from the oracle, but only if at least
    n_classes candidates remain; otherwise every leftover stays a candidate so that each class can
    still receive a label. The remaining count is |leftovers \\ P|, which equals the original's
    |leftovers| - |P| whenever P is within the leftovers. Leftover order is kept.
    """
    pool = _unique_ids(leftovers, "leftovers")
    if n_classes < 1:
        raise ValueError(f"n_classes={n_classes} must be >= 1")
    protected = set(_unique_ids(pseudo_labelled, "pseudo_labelled"))
    remaining = [x for x in pool if x not in protected]
    if protect_pl and len(remaining) >= n_classes:
        return remaining
    return list(pool)


def initial_labelled(ids: Sequence[str], labels: np.ndarray, per_class: int, seed: int) -> list[str]:
    """L0: per_class random ids per class, drawn from a generator seeded with seed alone.

    Every method run with the same seed therefore starts from the same L0.
    """
    if seed < 0:
        raise ValueError(f"seed={seed} must be >= 0")
    return select_random_balanced(ids, labels, per_class, np.random.default_rng(seed))


def _unique_ids(ids: Sequence[str], name: str) -> list[str]:
    values = list(ids)
    if not all(isinstance(x, str) for x in values):
        raise ValueError(f"{name} must be string ids; convert them with str() first")
    if len(set(values)) != len(values):
        duplicated = len(values) - len(set(values))
        raise ValueError(f"{name} hold {duplicated} duplicated ids; pass each sample once")
    return values


def _as_labels(labels: np.ndarray, n: int | None) -> np.ndarray:
    values = np.asarray(labels)
    if values.ndim != 1 or (values.size > 0 and values.dtype.kind not in "iu"):
        raise ValueError(f"labels must be a 1-D integer array, got dtype {values.dtype} shape {values.shape}")
    if n is not None and values.size != n:
        raise ValueError(f"{values.size} labels for {n} ids; pass one label per id")
    return values.astype(np.int64)


def _validated_pool(
    pool_ids: Sequence[str], pool_labels: np.ndarray, per_class: int
) -> tuple[np.ndarray, np.ndarray]:
    if per_class < 0:
        raise ValueError(f"per_class={per_class} must be >= 0")
    ids = _unique_ids(pool_ids, "pool ids")
    labels = _as_labels(pool_labels, len(ids))
    return np.asarray(ids, dtype=np.str_), labels

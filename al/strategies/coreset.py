"""Core-set selection by k-center greedy (Sener & Savarese 2018; strategies spec section 8).

Each pick is the candidate farthest from everything already covered (the labelled set and the
earlier picks), which greedily shrinks the covering radius of labelled ∪ picked. Distances are plain
L2 on the features exactly as the caller passes them (pooled encoder features; nothing is normalised
here), computed with `torch.cdist` in blocks of `chunk` candidates on the features' device. The
direct (non-matmul) cdist path is used so that a duplicate of a centre is at distance exactly 0 and
the result does not depend on the block size.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from al.strategies.base import (
    FEATURES,
    Evidence,
    Selection,
    Strategy,
    StrategyError,
    feature_evidence,
    feature_matrix,
)

_EXACT = "donot_use_mm_for_euclid_dist"


def _min_distance(centres: Tensor, points: Tensor, chunk: int) -> Tensor:
    """(n,) float32: L2 distance of every point to its nearest centre, in blocks of chunk points."""
    if chunk < 1:
        raise ValueError(f"chunk={chunk} must be >= 1")
    centres = centres.to(points.device)
    out = torch.empty(points.shape[0], dtype=torch.float32, device=points.device)
    for start in range(0, points.shape[0], chunk):
        block = torch.cdist(points[start:start + chunk], centres, compute_mode=_EXACT)
        out[start:start + chunk] = block.min(dim=1).values
    return out


def k_center_greedy(centres: Tensor, candidates: Tensor, k: int, chunk: int) -> list[int]:
    """k distinct candidate indices (rows of candidates), in pick order, by greedy max-min distance.

    d(u) starts as the distance of u to its nearest centre; each step takes the first index of the
    largest d, then lowers d by the distance to the new pick. Candidates at distance 0 (duplicates
    of a centre or of a pick) are taken only once nothing else is left, then in index order.
    """
    centres = feature_matrix(centres, "centres")
    candidates = feature_matrix(candidates, "candidates")
    n = candidates.shape[0]
    if centres.shape[0] < 1:
        raise ValueError("empty centre set: k-center greedy needs at least one centre to measure coverage")
    if centres.shape[1] != candidates.shape[1]:
        raise ValueError(f"centres have {centres.shape[1]} features and candidates {candidates.shape[1]}")
    if not 0 <= k <= n:
        raise ValueError(f"k={k} must be in [0, {n}] (the number of candidates)")
    d = _min_distance(centres, candidates, chunk)
    picked: list[int] = []
    taken = torch.zeros(n, dtype=torch.bool, device=candidates.device)
    while len(picked) < k:
        best = d.max()
        if float(best) <= 0.0:
            # Everything left is already covered: fill up in index order.
            rest = torch.nonzero(~taken).flatten().tolist()
            picked.extend(rest[: k - len(picked)])
            break
        u = int(torch.nonzero(d == best)[0, 0])  # first index of the maximum, on any device
        picked.append(u)
        taken[u] = True
        d = torch.minimum(d, _min_distance(candidates[u:u + 1], candidates, chunk))
        d[taken] = -1.0  # a pick is never offered again, even if float error left it above 0
    return picked


def covering_radius(centres: Tensor, points: Tensor, chunk: int = 4096) -> float:
    """Largest distance from a point to its nearest centre (0 when there are no points)."""
    centres = feature_matrix(centres, "centres")
    points = feature_matrix(points, "points")
    if centres.shape[0] < 1:
        raise ValueError("empty centre set: the covering radius needs at least one centre")
    if points.shape[0] == 0:
        return 0.0
    return float(_min_distance(centres, points, chunk).max())


class Coreset(Strategy):
    """Class-balanced core-set batch: k-center greedy within each class present among the candidates.

    Classes are served in ascending label order; the picks of earlier classes join the centres of
    later ones, so the whole batch covers the pool jointly. Within a class, candidates are ordered
    by id, so that equal distances go to the smaller id whatever order the pool was collected in.
    The score of a candidate is its distance to the nearest labelled sample before any pick.
    """

    name = "Coreset"
    needs = frozenset({FEATURES})

    def check(self, labelled_labels: np.ndarray, feature_dim: int) -> None:
        """Refuse an empty labelled set: there would be nothing to measure coverage from."""
        if np.asarray(labelled_labels).size == 0:
            raise StrategyError(
                "Coreset needs a non-empty labelled set to measure coverage: "
                "raise p_init_samples (now 0 images per class)"
            )

    def select(self, evidence: Evidence, per_class: int, rng: np.random.Generator) -> Selection:
        """min(per_class, n_c) candidates per class, in pick order; no randomness is used."""
        ids, labels, candidates, centres = feature_evidence(self.name, evidence, per_class)
        if centres.shape[0] == 0:
            raise StrategyError(
                "Coreset needs a non-empty labelled set to measure coverage: "
                "raise p_init_samples (now 0 images per class)"
            )
        if not ids:
            return Selection([], {})
        chunk = self.settings.coreset_chunk
        start = _min_distance(centres, candidates, chunk).double().cpu().numpy()
        scores = {i: float(s) for i, s in zip(ids, start)}
        by_id = np.argsort(np.asarray(ids, dtype=np.str_), kind="stable")
        selected: list[str] = []
        for c in np.unique(labels):
            members = by_id[labels[by_id] == c]
            k = min(per_class, members.size)
            if k == 0:
                continue
            rows = torch.as_tensor(members, device=candidates.device)
            picks = members[k_center_greedy(centres, candidates[rows], k, chunk)]
            selected.extend(ids[int(i)] for i in picks)
            centres = torch.cat([centres, candidates[torch.as_tensor(picks, device=candidates.device)]])
        return Selection(selected, scores)

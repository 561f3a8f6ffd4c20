"""What a strategy asks of a round, and what it gives back.

A strategy is one small class: it declares the evidence it needs (`needs`), the task gathers only
that evidence for the candidates, and `select` turns it into the samples the oracle annotates.
Scoring strategies return one score per candidate, higher meaning "annotate first", and share the
class-balanced top-k of method-spec 4.2; batch strategies (core-set) override `select`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from al import selection
from al.scores import PassStats, pass_map, pass_score
from parseit import ConfigError

# Evidence a strategy can ask the task for.
PROBABILITIES = "probabilities"    # one pass: per-pixel class probabilities at original resolution
MC_PASSES = "mc_passes"            # T stochastic passes with dropout on (mcdropout_t)
MEMBERS = "members"                # the models of a deep ensemble trained in the round
FEATURES = "features"              # pooled encoder features of the labelled set and of the candidates
VALID_FEATURES = "valid_features"  # pooled encoder features of the validation set (with labels)
LOSS_MODULE = "loss_module"        # a loss-prediction module trained with the model, and its predictions
NEEDS = (PROBABILITIES, MC_PASSES, MEMBERS, FEATURES, VALID_FEATURES, LOSS_MODULE)


class StrategyError(ConfigError):
    """A strategy cannot run on this round (one line naming the key and the fix)."""


@dataclass(frozen=True)
class StrategySettings:
    """The strategies' hyper-parameters, from the configuration (parsed once, passed down)."""

    mc_passes: int = 10                 # mcdropout_t
    mc_score: str = "variance"          # MC_Dropout: variance or bald
    ensemble_size: int = 5
    ensemble_score: str = "entropy"
    coreset_chunk: int = 4096           # candidates per block of distance computations
    hu_ridge: float = 1e-6              # added to the diagonal of every class covariance
    hu_pca_dim: int = 0                 # 0: no PCA; else the PCA size (or the search step)
    hu_pca_search: bool = False         # greedy search of the PCA size in steps of hu_pca_dim
    hu_pca_metric: str = "val"
    hu_knn_k: int = 5
    hu_knn_max_per_class: int = 1000
    dal_sub_batches: int = 10           # DAL: sub-batches of the round's pick, retraining between them
    dal_stop_accuracy: float = 0.98     # DAL: stop training the discriminator above this training accuracy
    dal_max_epochs: int = 500
    dal_lr: float = 2e-4
    dal_batch_size: int = 1024
    dal_width: int = 256                # DAL: hidden width of the MLP (20 when features have < 30 dims)
    dal_pool_ratio: int = 10            # DAL: each sub-batch scores min(dal_pool_ratio * |L|, |U|) candidates
    ll4al_subset: int = 10000           # LL4AL: candidates scored per round, drawn at random


@dataclass
class Evidence:
    """What the task gathered for one round's candidates (only the fields the strategy needs are set)."""

    candidates: list[str]
    candidate_labels: np.ndarray                    # (n,) int64 image-level classes
    labelled: list[str]
    labelled_labels: np.ndarray                     # (m,) int64
    image_scores: np.ndarray | None = None          # (n,) pixel_scores / pass_scores mean, or predicted losses
    candidate_features: Tensor | None = None        # (n, D) float32, on the device
    labelled_features: Tensor | None = None         # (m, D) float32, on the device
    valid_features: Tensor | None = None            # (v, D) float32, on the device
    valid_labels: np.ndarray | None = None          # (v,) int64


@dataclass
class Selection:
    """The oracle's pick (in selection order) and the score of every candidate that has one."""

    selected: list[str]
    scores: dict[str, float] = field(default_factory=dict)


class Strategy:
    """Base class: a scoring strategy implements `scores` (and `pixel_scores` or `pass_scores`)."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: StrategySettings):
        self.settings = settings

    def n_models(self) -> int:
        """Models trained in the round (a deep ensemble trains several)."""
        return 1

    def required(self) -> frozenset[str]:
        """The evidence this instance needs (a setting may add some, e.g. HU's PCA search)."""
        return self.needs

    def check(self, labelled_labels: np.ndarray, feature_dim: int) -> None:
        """Refuse a round this strategy cannot score, before anything is trained or written."""

    def candidate_subset(self, candidates: list[str], rng: np.random.Generator) -> list[str]:
        """The candidates this round scores (all of them, unless the strategy samples the pool)."""
        return candidates

    def pixel_scores(self, class_probs: Tensor) -> Tensor:
        """Per-pixel score from class probabilities (B, C, ...) -> (B, ...); PROBABILITIES strategies."""
        raise NotImplementedError(f"{self.name} does not score single passes")

    def pass_kind(self) -> str:
        """Which score of several passes or members (entropy, bald, variance); MC_PASSES and MEMBERS strategies."""
        raise NotImplementedError(f"{self.name} does not score several passes")

    def pass_scores(self, stats: PassStats) -> Tensor:
        """Per-image score (B,) from the statistics of several passes or members."""
        return pass_score(stats, self.pass_kind())

    def pass_pixel_scores(self, stats: PassStats) -> Tensor:
        """Per-pixel score (B, pixels) from the same statistics (region-level selection)."""
        return pass_map(stats, self.pass_kind())

    def scores(self, evidence: Evidence, rng: np.random.Generator) -> np.ndarray:
        """One score per candidate, higher = annotate first."""
        if evidence.image_scores is None:
            raise ValueError(f"{self.name}: the round gathered no image scores")
        return evidence.image_scores

    def select(self, evidence: Evidence, per_class: int, rng: np.random.Generator) -> Selection:
        """The class-balanced top-k of the scores (method-spec 4.2); ties go to the smaller id."""
        values = np.asarray(self.scores(evidence, rng), dtype=np.float64)
        picked = selection.select_top_balanced(evidence.candidates, evidence.candidate_labels, values, per_class)
        return Selection(picked, dict(zip(evidence.candidates, values.tolist())))


def feature_matrix(x: Tensor | None, name: str) -> Tensor:
    """A finite (rows, D) float32 feature tensor, detached; ValueError naming `name` otherwise."""
    if not isinstance(x, Tensor) or x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (rows, D) tensor, got {type(x).__name__} {getattr(x, 'shape', '')}")
    x = x.detach().to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} hold non-finite values; fix the features before selection")
    return x


def feature_evidence(name: str, evidence: Evidence, per_class: int
                     ) -> tuple[list[str], np.ndarray, Tensor, Tensor]:
    """(candidate ids, their labels, candidate features, labelled features on the same device), checked,
    for the batch strategies that select on pooled features."""
    if per_class < 0:
        raise ValueError(f"per_class={per_class} must be >= 0")
    if evidence.candidate_features is None or evidence.labelled_features is None:
        raise ValueError(f"{name}: the round gathered no features")
    ids = list(evidence.candidates)
    labels = np.asarray(evidence.candidate_labels).astype(np.int64)
    if len(set(ids)) != len(ids) or labels.shape != (len(ids),):
        raise ValueError(f"{name}: pass one label per candidate and each candidate once")
    candidates = feature_matrix(evidence.candidate_features, "candidate_features")
    labelled = feature_matrix(evidence.labelled_features, "labelled_features").to(candidates.device)
    if candidates.shape[0] != len(ids):
        raise ValueError(f"{candidates.shape[0]} candidate feature rows for {len(ids)} candidates")
    return ids, labels, candidates, labelled


def two_class(p: Tensor) -> Tensor:
    """The binary pixel's class vector (1 - p, p) along a new dim 1: (B, 1, ...) -> (B, 2, ...)."""
    return torch.cat([1.0 - p, p], dim=1)

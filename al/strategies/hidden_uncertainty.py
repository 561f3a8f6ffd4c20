"""Hidden Uncertainty: how poorly the labelled set's feature density explains a candidate
(strategies spec section 9).

HU fits one full-covariance Gaussian per class to the L2-normalised features of the labelled set and
scores a candidate z by u = -ln sum_c pi_c N(z; mu_c, Sigma_c): a candidate that no class explains
well is annotated first. HU_kNN replaces the densities by the mean distance to the nearest labelled
neighbours that carry the predicted class. Both are scoring strategies and share the base class's
class-balanced top-k.

The features are the pooled encoder features the caller passes; they are moved to the CPU as float64
and L2-normalised here (`l2_normalise`), as in the reference, so only their direction matters.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier
from torch import Tensor

import constants as C
from al.strategies.base import FEATURES, VALID_FEATURES, Evidence, Strategy, StrategyError

# Criteria of the greedy PCA-size search (hu_pca_metric).
PCA_METRICS = C.HU_PCA_METRICS


class _CovarianceError(ValueError):
    """A class covariance could not be factorised (too small a ridge for the data)."""


def l2_normalise(z: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero), so that densities compare directions."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"features must be a 2-D (rows, D) array, got shape {z.shape}")
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.maximum(norms, 1e-12)


def hidden_uncertainty(log_densities: np.ndarray, log_priors: np.ndarray) -> np.ndarray:
    """u = -logsumexp_c(ln pi_c + ln p(z | c)) per row: the negative log marginal density.

    log_densities is (N, C), log_priors (C,). logsumexp shifts by the row maximum, so densities far
    below exp(-745) still give finite scores; a row that is -inf everywhere gives +inf.
    """
    dens = np.asarray(log_densities, dtype=np.float64)
    priors = np.asarray(log_priors, dtype=np.float64)
    if dens.ndim != 2 or priors.shape != (dens.shape[1],):
        raise ValueError(f"log densities {dens.shape} and log priors {priors.shape} must be (N, C) and (C,)")
    return -logsumexp(dens + priors[None, :], axis=1)


def fit_class_gaussians(
    z: np.ndarray, labels: np.ndarray, ridge: float
) -> tuple[np.ndarray, np.ndarray, list[GaussianMixture]]:
    """One full-covariance Gaussian per class present, with ridge added to every covariance diagonal.

    z is used as given (normalise it first with `l2_normalise`). Returns the classes (ascending),
    ln pi_c with pi_c the class frequency, and the fitted models in class order. A class needs at
    least 2 samples: one sample has no covariance to speak of.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"features {z.shape} and labels {y.shape} must be (N, D) and (N,)")
    if y.size == 0:
        raise ValueError("no samples to fit the class Gaussians on")
    if ridge < 0.0:
        raise ValueError(f"ridge={ridge} must be >= 0")
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        c = classes[np.argmin(counts)]
        raise ValueError(f"class {c} has {counts.min()} sample; each class needs at least 2")
    models = []
    for c in classes:
        gm = GaussianMixture(n_components=1, covariance_type="full", reg_covar=ridge, random_state=42)
        try:
            gm.fit(z[y == c])
        except ValueError as err:
            raise _CovarianceError(f"class {c}") from err
        models.append(gm)
    return classes.astype(np.int64), np.log(counts / y.size), models


def _class_log_densities(models: list[GaussianMixture], z: np.ndarray) -> np.ndarray:
    """(N, C) ln p(z | c) for every row and fitted class."""
    if z.shape[0] == 0:
        return np.zeros((0, len(models)))
    return np.stack([gm.score_samples(z) for gm in models], axis=1)


def _project(z_fit: np.ndarray, others: list[np.ndarray], dim: int) -> list[np.ndarray]:
    """PCA(dim) fitted on z_fit, applied to z_fit and others; no PCA when dim is the full size."""
    if dim >= z_fit.shape[1]:
        return [z_fit, *others]
    pca = PCA(n_components=dim, svd_solver="full", random_state=0).fit(z_fit)
    return [pca.transform(z_fit)] + [pca.transform(o) if o.shape[0] else o[:, :dim] for o in others]


def _search_metric(ll_tr: float, ll_val: float, d: int, metric: str) -> float:
    val = -ll_val / d
    l2 = ((ll_tr - ll_val) / d) ** 2
    if metric == "val":
        return val
    if metric == "L2":
        return l2
    if metric == "L1":
        return abs(ll_tr - ll_val) / d
    if metric == "val_l2":
        return val + l2
    if metric == "train_val_l2":
        return -ll_tr / d + val + l2
    raise ValueError(f"unknown PCA search metric {metric!r}; use one of {', '.join(PCA_METRICS)}")


def greedy_pca_dimension(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_val: np.ndarray,
    y_val: np.ndarray,
    step: int,
    metric: str,
    ridge: float,
) -> int:
    """The PCA size in {s, 2s, ..., min(N, D)} whose class Gaussians generalise best to the val set.

    For each size d: fit PCA(d) on the training features (skipped when d = D), refit the class
    Gaussians, and for every class present in both sets take the mean log-likelihoods ll_tr of its
    training and ll_val of its validation features. Per class: `val` = -ll_val/d,
    `L2` = ((ll_tr - ll_val)/d)^2, `L1` = |ll_tr - ll_val|/d, `val_l2` = val + L2,
    `train_val_l2` = -ll_tr/d + val + L2. The criterion is the mean over those classes; the
    smallest value wins, equal values going to the smaller d. Features are used as given.
    """
    z_train = np.asarray(z_train, dtype=np.float64)
    z_val = np.asarray(z_val, dtype=np.float64)
    y_train = np.asarray(y_train)
    y_val = np.asarray(y_val)
    if metric not in PCA_METRICS:
        raise ValueError(f"unknown PCA search metric {metric!r}; use one of {', '.join(PCA_METRICS)}")
    if z_train.ndim != 2 or z_val.ndim != 2 or z_val.shape[1] != z_train.shape[1]:
        raise ValueError(f"train {z_train.shape} and val {z_val.shape} features must be (N, D) and (V, D)")
    if y_val.shape != (z_val.shape[0],):
        raise ValueError(f"{y_val.size} validation labels for {z_val.shape[0]} validation rows")
    top = min(z_train.shape)
    if not 1 <= step <= top:
        raise ValueError(f"step={step} must be in [1, min(N, D)] = [1, {top}]")
    shared = np.intersect1d(np.unique(y_train), np.unique(y_val))
    if shared.size == 0:
        raise ValueError("no class of the training features appears in the validation features")
    sizes = list(range(step, top, step)) + [top]
    best_d, best_value = sizes[0], np.inf
    for d in sizes:
        tr, val = _project(z_train, [z_val], d)
        classes, _, models = fit_class_gaussians(tr, y_train, ridge)
        values = []
        for c, gm in zip(classes, models):
            if c in shared:
                ll_tr = float(np.mean(gm.score_samples(tr[y_train == c])))
                ll_val = float(np.mean(gm.score_samples(val[y_val == c])))
                values.append(_search_metric(ll_tr, ll_val, d, metric))
        value = float(np.mean(values))
        if value < best_value:
            best_d, best_value = d, value
    return best_d


def _features(x: Tensor | None, who: str, what: str) -> np.ndarray:
    """L2-normalised float64 numpy copy of a feature tensor from the evidence."""
    if x is None:
        raise ValueError(f"{who}: the round gathered no {what}")
    return l2_normalise(x.detach().to(device="cpu", dtype=torch.float64).numpy())


def _labelled(evidence: Evidence, who: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    zl = _features(evidence.labelled_features, who, "labelled features")
    zc = _features(evidence.candidate_features, who, "candidate features")
    yl = np.asarray(evidence.labelled_labels).astype(np.int64)
    if yl.shape != (zl.shape[0],) or zc.shape[0] != len(evidence.candidates) or zc.shape[1] != zl.shape[1]:
        raise ValueError(
            f"{who}: {zl.shape} labelled features with {yl.shape} labels and {zc.shape} candidate "
            f"features for {len(evidence.candidates)} candidates do not match"
        )
    return zl, yl, zc


def _check_labelled(name: str, labelled_labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labelled_labels)
    if labels.size == 0:
        raise StrategyError(
            f"{name} needs a non-empty labelled set to model the features: "
            "raise p_init_samples (now 0 images per class)"
        )
    return labels


class HiddenUncertainty(Strategy):
    """HU-GMM: u = -ln sum_c pi_c N(z; mu_c, Sigma_c) over the labelled set's class Gaussians.

    With hu_pca_dim > 0 the features are first reduced by a PCA fitted on the labelled features, to
    hu_pca_dim components, or (hu_pca_search) to the size the greedy search picks on the validation
    features in steps of hu_pca_dim.
    """

    name = "HU"
    needs = frozenset({FEATURES})

    def required(self) -> frozenset[str]:
        """The validation features too when the PCA size is searched."""
        if self.settings.hu_pca_search:
            return self.needs | {VALID_FEATURES}
        return self.needs

    def check(self, labelled_labels: np.ndarray, feature_dim: int) -> None:
        """Refuse settings or labelled sets for which the class Gaussians or the PCA are undefined."""
        s = self.settings
        labels = _check_labelled(self.name, labelled_labels)
        classes, counts = np.unique(labels, return_counts=True)
        for c, n in zip(classes.tolist(), counts.tolist()):
            if n < 2:
                raise StrategyError(
                    f"HU fits one Gaussian per class and class {c} has {n} labelled image: "
                    "raise p_init_samples so that every class has at least 2"
                )
        if s.hu_ridge < 0.0:
            raise StrategyError(f"hu_ridge {s.hu_ridge} is negative: set --hu_ridge >= 0")
        if s.hu_pca_metric not in PCA_METRICS:
            raise StrategyError(
                f"hu_pca_metric {s.hu_pca_metric!r} is unknown: set --hu_pca_metric to one of {', '.join(PCA_METRICS)}"
            )
        if s.hu_pca_dim < 0:
            raise StrategyError(f"hu_pca_dim {s.hu_pca_dim} is negative: set --hu_pca_dim to 0 (no PCA) or more")
        if s.hu_pca_search and s.hu_pca_dim == 0:
            raise StrategyError("hu_pca_search needs hu_pca_dim >= 1 as its search step: set --hu_pca_dim")
        if s.hu_pca_dim > feature_dim:
            raise StrategyError(
                f"hu_pca_dim {s.hu_pca_dim} exceeds the feature size {feature_dim}: lower --hu_pca_dim"
            )
        if s.hu_pca_dim > labels.size:
            raise StrategyError(
                f"hu_pca_dim {s.hu_pca_dim} exceeds the {labels.size} labelled images: "
                "lower --hu_pca_dim or raise p_init_samples"
            )

    def scores(self, evidence: Evidence, rng: np.random.Generator) -> np.ndarray:
        """u per candidate, higher = less explained by the labelled set = annotate first."""
        s = self.settings
        zl, yl, zc = _labelled(evidence, self.name)
        if zc.shape[0] == 0:
            return np.zeros(0)
        try:
            if s.hu_pca_dim > 0:
                dim = s.hu_pca_dim
                if s.hu_pca_search:
                    zv = _features(evidence.valid_features, self.name, "validation features")
                    if evidence.valid_labels is None:
                        raise ValueError(f"{self.name}: the round gathered no validation labels")
                    dim = greedy_pca_dimension(zl, yl, zv, evidence.valid_labels, dim, s.hu_pca_metric, s.hu_ridge)
                zl, zc = _project(zl, [zc], dim)
            _, log_priors, models = fit_class_gaussians(zl, yl, s.hu_ridge)
        except _CovarianceError as err:
            raise StrategyError(
                f"HU could not factorise the covariance of {err} with hu_ridge {s.hu_ridge:g}: raise --hu_ridge"
            ) from err
        u = hidden_uncertainty(_class_log_densities(models, zc), log_priors)
        if not np.isfinite(u).all():
            bad = int((~np.isfinite(u)).sum())
            raise StrategyError(
                f"HU gave {bad} non-finite scores (hu_ridge {s.hu_ridge} leaves a covariance near singular): "
                "raise --hu_ridge"
            )
        return u


class HiddenUncertaintyKNN(Strategy):
    """HU_kNN: mean distance to those of the k nearest labelled neighbours that carry the predicted class.

    The labelled set is first undersampled to at most hu_knn_max_per_class per class with the round's
    generator, after sorting by id, so a fixed generator state gives a fixed subset.
    """

    name = "HU_kNN"
    needs = frozenset({FEATURES})

    def check(self, labelled_labels: np.ndarray, feature_dim: int) -> None:
        """Refuse a neighbourhood larger than the labelled set that remains after undersampling."""
        s = self.settings
        labels = _check_labelled(self.name, labelled_labels)
        if s.hu_knn_k < 1:
            raise StrategyError(f"hu_knn_k {s.hu_knn_k} must be >= 1: set --hu_knn_k")
        if s.hu_knn_max_per_class < 1:
            raise StrategyError(
                f"hu_knn_max_per_class {s.hu_knn_max_per_class} must be >= 1: set --hu_knn_max_per_class"
            )
        if s.hu_knn_k > labels.size:
            raise StrategyError(
                f"hu_knn_k {s.hu_knn_k} exceeds the {labels.size} labelled images: "
                "lower --hu_knn_k or raise p_init_samples"
            )
        _, counts = np.unique(labels, return_counts=True)
        kept = int(np.minimum(counts, s.hu_knn_max_per_class).sum())
        if s.hu_knn_k > kept:
            raise StrategyError(
                f"hu_knn_k {s.hu_knn_k} exceeds the {kept} labelled images left by "
                f"hu_knn_max_per_class {s.hu_knn_max_per_class}: lower --hu_knn_k or raise --hu_knn_max_per_class"
            )

    def _undersample(self, ids: list[str], labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sorted row indices kept: all of a class, or hu_knn_max_per_class of them drawn without replacement."""
        cap = self.settings.hu_knn_max_per_class
        by_id = np.argsort(np.asarray(ids, dtype=np.str_), kind="stable")
        kept = []
        for c in np.unique(labels):
            members = by_id[labels[by_id] == c]
            if members.size > cap:
                members = rng.choice(members, size=cap, replace=False)
            kept.append(members)
        return np.sort(np.concatenate(kept))

    def scores(self, evidence: Evidence, rng: np.random.Generator) -> np.ndarray:
        """Mean distance to the same-prediction neighbours; far from the labelled set = annotate first."""
        zl, yl, zc = _labelled(evidence, self.name)
        if len(evidence.labelled) != yl.size:
            raise ValueError(f"{self.name}: {len(evidence.labelled)} labelled ids for {yl.size} labels")
        if zc.shape[0] == 0:
            return np.zeros(0)
        keep = self._undersample(list(evidence.labelled), yl, rng)
        k = self.settings.hu_knn_k
        if k > keep.size:
            raise StrategyError(
                f"hu_knn_k {k} exceeds the {keep.size} labelled images kept: "
                "lower --hu_knn_k or raise p_init_samples"
            )
        knn = KNeighborsClassifier(n_neighbors=k, weights="distance", metric="euclidean")
        knn.fit(zl[keep], yl[keep])
        predicted = knn.predict(zc)
        distances, neighbours = knn.kneighbors(zc)
        same = yl[keep][neighbours] == predicted[:, None]
        # The predicted class holds the largest distance-weighted vote, so every row has a match.
        return (distances * same).sum(axis=1) / same.sum(axis=1)

import math

import numpy as np
import pytest
import torch

from al.strategies.base import FEATURES, VALID_FEATURES, Evidence, StrategyError, StrategySettings
from al.strategies.hidden_uncertainty import (
    PCA_METRICS,
    HiddenUncertainty,
    HiddenUncertaintyKNN,
    fit_class_gaussians,
    greedy_pca_dimension,
    hidden_uncertainty,
    l2_normalise,
)


def _normal_log_density(z: np.ndarray, mean: float, var: float) -> np.ndarray:
    return -0.5 * np.log(2.0 * math.pi * var) - 0.5 * (z - mean) ** 2 / var


def test_worked_example_from_the_spec() -> None:
    z = np.array([0.0, 2.0, 8.0])
    log_dens = np.stack([_normal_log_density(z, 0.0, 1.0), _normal_log_density(z, 4.0, 1.0)], axis=1)
    u = hidden_uncertainty(log_dens, np.log([0.5, 0.5]))
    assert u == pytest.approx([1.6118, 2.9189, 9.6121], abs=1e-4)
    # Far below exp(-745) the densities underflow, the score must not.
    far = hidden_uncertainty(log_dens - 2000.0, np.log([0.5, 0.5]))
    assert np.isfinite(far).all() and far == pytest.approx(u + 2000.0)
    with pytest.raises(ValueError):
        hidden_uncertainty(log_dens, np.log([1.0]))


def test_fitted_gaussians_match_numpy() -> None:
    z = np.array([[0.0], [10.0], [1.0], [12.0], [2.0], [14.0], [5.0]])
    y = np.array([0, 1, 0, 1, 0, 1, 0])
    classes, log_priors, models = fit_class_gaussians(z, y, 0.01)
    assert classes.tolist() == [0, 1]
    assert log_priors == pytest.approx(np.log([4 / 7, 3 / 7]))
    for c, gm in zip(classes, models):
        values = z[y == c, 0]
        assert gm.means_[0, 0] == pytest.approx(values.mean())
        assert gm.covariances_[0, 0, 0] == pytest.approx(values.var() + 0.01)
        expected = _normal_log_density(np.array([3.0]), values.mean(), values.var() + 0.01)
        assert gm.score_samples(np.array([[3.0]])) == pytest.approx(expected)
    with pytest.raises(ValueError, match="class 1 has 1 sample"):
        fit_class_gaussians(z[:3], y[:3], 0.01)


def test_l2_normalise() -> None:
    z = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert z.tolist() == [[0.6, 0.8], [0.0, 0.0]]


def _table() -> Evidence:
    """Two labelled clusters (directions x and y) and, per class, a near, a middling and a far candidate."""
    c0 = [[1, 0.1, 0], [1, -0.1, 0.05], [1, 0, -0.1], [1, 0.05, 0.1], [1, -0.05, -0.05], [1, 0.1, -0.05]]
    c1 = [[b, a, c] for a, b, c in c0]
    rows = {  # id: (class, feature)
        "u5": (1, [0.3, 1.0, -0.2]),
        "u0": (0, [1.0, 0.02, 0.01]),
        "u4": (1, [-1.0, 0.2, -0.3]),
        "u1": (0, [0.2, 0.1, 1.0]),
        "u3": (1, [0.01, 1.0, 0.03]),
        "u2": (0, [1.0, 0.3, 0.2]),
    }
    return Evidence(
        candidates=list(rows),
        candidate_labels=np.array([c for c, _ in rows.values()]),
        labelled=[f"l{i:02d}" for i in range(12)],
        labelled_labels=np.array([0] * 6 + [1] * 6),
        candidate_features=torch.tensor([f for _, f in rows.values()], dtype=torch.float32),
        labelled_features=torch.tensor(c0 + c1, dtype=torch.float32),
    )


@pytest.mark.parametrize(
    "strategy",
    [
        HiddenUncertainty(StrategySettings()),
        HiddenUncertainty(StrategySettings(hu_ridge=1e-3)),
        HiddenUncertaintyKNN(StrategySettings(hu_knn_k=3)),
    ],
    ids=["HU", "HU_ridge", "HU_kNN"],
)
def test_golden_selection_picks_the_far_candidates_per_class(strategy) -> None:
    # Far (u1, u4), then middling (u2, u5); the near ones (u0, u3) never.
    assert strategy.select(_table(), 1, np.random.default_rng(0)).selected == ["u1", "u4"]
    result = strategy.select(_table(), 2, np.random.default_rng(0))
    assert result.selected == ["u1", "u2", "u4", "u5"]
    assert set(result.scores) == {f"u{i}" for i in range(6)}
    assert strategy.required() == frozenset({FEATURES})


def test_knn_score_is_the_mean_distance_to_neighbours_of_the_predicted_class() -> None:
    evidence = Evidence(
        candidates=["u"],
        candidate_labels=np.array([0]),
        labelled=["a", "b", "c", "d"],
        labelled_labels=np.array([0, 0, 1, 1]),
        candidate_features=torch.tensor([[0.6, 0.8]]),
        labelled_features=torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]]),
    )
    u = HiddenUncertaintyKNN(StrategySettings(hu_knn_k=3)).scores(evidence, np.random.default_rng(0))
    # Neighbours b (0.283, class 0), c (0.632, class 1), a (0.894, class 0); class 0 wins the vote.
    assert u == pytest.approx([(math.sqrt(0.08) + math.sqrt(0.8)) / 2], rel=1e-6)


def _clusters(seed: int, n: int, noise_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Two classes at +-1 on the first two dims, noise of variance noise_var on the four others."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    z = np.empty((n, 6))
    z[:, :2] = rng.normal(size=(n, 2)) + np.where(y == 0, -1.0, 1.0)[:, None]
    z[:, 2:] = rng.normal(scale=math.sqrt(noise_var), size=(n, 4))
    return z, y


def test_greedy_pca_search_drops_dimensions_that_do_not_generalise() -> None:
    z_tr, y_tr = _clusters(0, 40, 1e-4)
    z_val, y_val = _clusters(1, 20, 1.0)  # the four small training dims are wide on the val set
    assert greedy_pca_dimension(z_tr, y_tr, z_val, y_val, 2, "val", 1e-6) == 2
    z_val_same, y_val_same = _clusters(1, 20, 1e-4)
    assert greedy_pca_dimension(z_tr, y_tr, z_val_same, y_val_same, 2, "val", 1e-6) == 6


@pytest.mark.parametrize("metric", PCA_METRICS)
def test_greedy_pca_search_returns_a_step_and_is_deterministic(metric: str) -> None:
    rng = np.random.default_rng(5)
    z_tr, y_tr = l2_normalise(rng.normal(size=(10, 7))), np.repeat([0, 1], 5)
    z_val, y_val = l2_normalise(rng.normal(size=(6, 7))), np.array([0, 1, 2, 0, 1, 2])
    d = greedy_pca_dimension(z_tr, y_tr, z_val, y_val, 3, metric, 1e-3)
    assert d in {3, 6, 7}
    assert greedy_pca_dimension(z_tr, y_tr, z_val, y_val, 3, metric, 1e-3) == d
    # N < D: the last size is N, not D.
    assert greedy_pca_dimension(z_tr[:4], y_tr[[0, 1, 5, 6]], z_val, y_val, 3, metric, 1e-3) in {3, 4}
    with pytest.raises(ValueError, match="step"):
        greedy_pca_dimension(z_tr, y_tr, z_val, y_val, 8, metric, 1e-3)


def test_hu_with_pca_search_uses_the_searched_size() -> None:
    evidence = _table()
    rng = np.random.default_rng(1)
    valid = evidence.labelled_features + 0.2 * torch.tensor(rng.normal(size=(12, 3)), dtype=torch.float32)
    evidence.valid_features, evidence.valid_labels = valid, evidence.labelled_labels.copy()
    settings = StrategySettings(hu_ridge=1e-3, hu_pca_dim=1, hu_pca_search=True, hu_pca_metric="L2")
    searched = HiddenUncertainty(settings)
    assert searched.required() == frozenset({FEATURES, VALID_FEATURES})
    d = greedy_pca_dimension(
        l2_normalise(evidence.labelled_features.double().numpy()),
        evidence.labelled_labels,
        l2_normalise(valid.double().numpy()),
        evidence.valid_labels,
        1,
        "L2",
        1e-3,
    )
    assert d == 2  # neither the step nor the full size, so both mistakes show below
    u = searched.scores(evidence, np.random.default_rng(0))
    assert np.isfinite(u).all()

    def fixed(dim: int) -> np.ndarray:
        return HiddenUncertainty(StrategySettings(hu_ridge=1e-3, hu_pca_dim=dim)).scores(evidence, np.random.default_rng(0))

    assert u == pytest.approx(fixed(2))
    assert not np.allclose(u, fixed(1)) and not np.allclose(u, fixed(0))


def _refused(strategy, labels: np.ndarray, feature_dim: int, match: str) -> None:
    with pytest.raises(StrategyError, match=match) as err:
        strategy.check(labels, feature_dim)
    assert "\n" not in str(err.value)


def test_check_refuses_bad_rounds_with_one_line() -> None:
    empty = np.array([], dtype=np.int64)
    hu = HiddenUncertainty(StrategySettings())
    _refused(hu, empty, 512, "p_init_samples")
    _refused(hu, np.array([0, 0, 2]), 512, "class 2 has 1 labelled image: raise p_init_samples")
    wide = HiddenUncertainty(StrategySettings(hu_pca_dim=600))
    _refused(wide, np.repeat([0, 1], 400), 512, "hu_pca_dim 600 exceeds the feature size 512: lower --hu_pca_dim")
    _refused(HiddenUncertainty(StrategySettings(hu_pca_dim=8)), np.repeat([0, 1], 3), 512, "exceeds the 6 labelled")
    _refused(HiddenUncertainty(StrategySettings(hu_pca_search=True)), np.repeat([0, 1], 3), 512, "--hu_pca_dim")
    _refused(HiddenUncertainty(StrategySettings(hu_pca_metric="l2")), np.repeat([0, 1], 3), 512, "--hu_pca_metric")
    hu.check(np.repeat([0, 1], 2), 512)
    HiddenUncertainty(StrategySettings(hu_pca_dim=4)).check(np.repeat([0, 1], 2), 4)

    knn = HiddenUncertaintyKNN(StrategySettings(hu_knn_k=5))
    _refused(knn, empty, 512, "p_init_samples")
    _refused(knn, np.array([0, 1, 1]), 512, "hu_knn_k 5 exceeds the 3 labelled images: lower --hu_knn_k")
    capped = HiddenUncertaintyKNN(StrategySettings(hu_knn_k=5, hu_knn_max_per_class=2))
    _refused(capped, np.repeat([0, 1], 10), 512, "--hu_knn_max_per_class")
    knn.check(np.array([0, 1, 1, 1, 1]), 512)


def test_too_small_a_ridge_is_refused_naming_hu_ridge() -> None:
    evidence = _table()
    keep = [0, 1, 6, 7]  # two samples per class in 3-D: a singular covariance without the ridge
    evidence.labelled_features = evidence.labelled_features[keep]
    evidence.labelled_labels = evidence.labelled_labels[keep]
    evidence.labelled = [evidence.labelled[i] for i in keep]
    with pytest.raises(StrategyError, match="raise --hu_ridge") as err:
        HiddenUncertainty(StrategySettings(hu_ridge=0.0)).scores(evidence, np.random.default_rng(0))
    assert "\n" not in str(err.value)
    assert np.isfinite(HiddenUncertainty(StrategySettings(hu_ridge=1e-2)).scores(evidence, np.random.default_rng(0))).all()


def _knn_evidence(order: np.ndarray) -> Evidence:
    rng = np.random.default_rng(2)
    features = torch.tensor(rng.normal(size=(20, 4)), dtype=torch.float32)
    ids = [f"l{i:02d}" for i in range(20)]
    labels = np.repeat([0, 1], 10)
    return Evidence(
        candidates=[f"u{i}" for i in range(8)],
        candidate_labels=np.repeat([0, 1], 4),
        labelled=[ids[i] for i in order],
        labelled_labels=labels[order],
        candidate_features=torch.tensor(rng.normal(size=(8, 4)), dtype=torch.float32),
        labelled_features=features[order],
    )


def test_knn_undersampling_is_deterministic_for_a_seed() -> None:
    strategy = HiddenUncertaintyKNN(StrategySettings(hu_knn_k=3, hu_knn_max_per_class=4))
    evidence = _knn_evidence(np.arange(20))
    first = strategy.scores(evidence, np.random.default_rng(7))
    assert strategy.scores(evidence, np.random.default_rng(7)) == pytest.approx(first, abs=0)
    # The pool is sorted by id before drawing, so the collection order does not matter.
    shuffled = _knn_evidence(np.random.default_rng(1).permutation(20))
    assert strategy.scores(shuffled, np.random.default_rng(7)) == pytest.approx(first, abs=0)
    # Undersampling is active: other draws keep other neighbours.
    others = [strategy.scores(evidence, np.random.default_rng(s)) for s in range(4)]
    assert any(not np.array_equal(o, first) for o in others)
    everything = HiddenUncertaintyKNN(StrategySettings(hu_knn_k=3))
    assert not np.array_equal(everything.scores(evidence, np.random.default_rng(7)), first)

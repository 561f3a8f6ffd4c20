import itertools

import numpy as np
import pytest
import torch

from al.strategies.base import FEATURES, Evidence, StrategyError, StrategySettings
from al.strategies.coreset import Coreset, covering_radius, k_center_greedy


def _col(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)


def test_worked_example_from_the_spec() -> None:
    centres, pool = _col([0.0]), _col([1.0, 2.0, 5.0, 6.0])
    picks = k_center_greedy(centres, pool, 2, 4096)
    assert picks == [3, 1]  # 6 first (d = 6), then 2 (d = 2, against 1 for both 1 and 5)
    assert covering_radius(torch.cat([centres, pool[picks]]), pool) == pytest.approx(1.0)
    assert covering_radius(centres, pool) == pytest.approx(6.0)


def test_covering_radius_never_grows_with_k() -> None:
    gen = torch.Generator().manual_seed(3)
    centres, pool = torch.randn(3, 5, generator=gen), torch.randn(40, 5, generator=gen)
    radii = []
    for k in range(0, 41, 4):
        picks = k_center_greedy(centres, pool, k, 7)
        assert len(set(picks)) == k
        radii.append(covering_radius(torch.cat([centres, pool[picks]]), pool))
    assert all(b <= a for a, b in itertools.pairwise(radii))
    assert radii[0] > radii[1] > 0.0 and radii[-1] == 0.0


def test_each_pick_is_the_farthest_point_so_far() -> None:
    gen = torch.Generator().manual_seed(4)
    centres, pool = torch.randn(2, 3, generator=gen), torch.randn(25, 3, generator=gen)
    picks = k_center_greedy(centres, pool, 6, 4096)
    for i, u in enumerate(picks):
        covered = torch.cat([centres, pool[picks[:i]]])
        farthest = torch.cdist(pool, covered).min(dim=1).values
        assert farthest[u].item() == pytest.approx(farthest.max().item())


def test_ties_take_the_first_index() -> None:
    # 1 and -1 are both at distance 1 from the centre; the duplicate of 1 waits until last.
    assert k_center_greedy(_col([0.0]), _col([1.0, -1.0, 1.0]), 3, 4096) == [0, 1, 2]
    assert k_center_greedy(_col([0.0]), _col([-1.0, 1.0]), 1, 4096) == [0]


def test_duplicates_of_a_centre_wait_until_nothing_else_is_left() -> None:
    centres = torch.tensor([[0.0, 0.0]])
    pool = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    assert k_center_greedy(centres, pool, 2, 4096) == [1, 3]
    assert k_center_greedy(centres, pool, 4, 4096) == [1, 3, 0, 2]
    # A duplicate of an earlier pick is covered too.
    assert k_center_greedy(_col([0.0]), _col([5.0, 5.0, 1.0]), 2, 4096) == [0, 2]


def test_chunked_equals_unchunked() -> None:
    gen = torch.Generator().manual_seed(11)
    centres, pool = torch.randn(5, 8, generator=gen), torch.randn(200, 8, generator=gen)
    whole = k_center_greedy(centres, pool, 20, 4096)
    assert k_center_greedy(centres, pool, 20, 1) == whole
    assert k_center_greedy(centres, pool, 20, 7) == whole
    assert covering_radius(centres, pool, chunk=1) == covering_radius(centres, pool, chunk=4096)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k=5"):
        k_center_greedy(_col([0.0]), _col([1.0, 2.0]), 5, 4096)
    with pytest.raises(ValueError, match="empty centre set"):
        k_center_greedy(torch.zeros(0, 1), _col([1.0, 2.0]), 1, 4096)
    with pytest.raises(ValueError, match="chunk"):
        k_center_greedy(_col([0.0]), _col([1.0, 2.0]), 1, 0)
    with pytest.raises(ValueError, match="non-finite"):
        k_center_greedy(_col([0.0]), _col([1.0, float("nan")]), 1, 4096)
    assert k_center_greedy(_col([0.0]), _col([1.0, 2.0]), 0, 4096) == []


def _table() -> Evidence:
    """Two labelled samples, six candidates listed out of id order."""
    labelled = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    rows = {  # id: (class, feature)
        "e": (1, [10.0, -3.0]),
        "a": (0, [0.0, 1.0]),
        "f": (1, [0.0, 4.5]),
        "b": (0, [0.0, 5.0]),
        "d": (1, [10.0, 3.0]),
        "c": (0, [0.0, -4.0]),
    }
    return Evidence(
        candidates=list(rows),
        candidate_labels=np.array([c for c, _ in rows.values()]),
        labelled=["l0", "l1"],
        labelled_labels=np.array([0, 1]),
        candidate_features=torch.tensor([f for _, f in rows.values()]),
        labelled_features=labelled,
    )


def test_golden_class_balanced_selection() -> None:
    strategy = Coreset(StrategySettings(coreset_chunk=2))
    assert strategy.required() == frozenset({FEATURES})
    result = strategy.select(_table(), 2, np.random.default_rng(0))
    # Class 0: b (5 from l0), then c (4). Class 1: f would lead at 4.5 from the labelled set but sits
    # 0.5 from the pick b; d and e tie at 3 and the smaller id goes first.
    assert result.selected == ["b", "c", "d", "e"]
    assert result.scores == pytest.approx({"a": 1.0, "b": 5.0, "c": 4.0, "d": 3.0, "e": 3.0, "f": 4.5})
    everything = strategy.select(_table(), 5, np.random.default_rng(0)).selected
    assert everything == ["b", "c", "a", "d", "e", "f"]
    assert strategy.select(_table(), 0, np.random.default_rng(0)).selected == []


def test_check_refuses_an_empty_labelled_set() -> None:
    strategy = Coreset(StrategySettings())
    with pytest.raises(StrategyError, match="p_init_samples") as err:
        strategy.check(np.array([], dtype=np.int64), 512)
    assert "\n" not in str(err.value)
    strategy.check(np.array([0, 1]), 512)
    evidence = _table()
    evidence.labelled_features = torch.zeros(0, 2)
    with pytest.raises(StrategyError, match="p_init_samples"):
        strategy.select(evidence, 1, np.random.default_rng(0))

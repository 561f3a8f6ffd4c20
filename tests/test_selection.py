from collections import Counter

import numpy as np
import pytest

from al.selection import (
    initial_labelled,
    initial_per_class,
    oracle_candidates,
    per_class_quota,
    round_count,
    select_random_balanced,
    select_top_balanced,
)


def _glas_like() -> tuple[list[str], np.ndarray]:
    """67 train ids: 29 of class 0, 38 of class 1 (GlaS fold 0), interleaved."""
    labels = np.array([0] * 29 + [1] * 38)
    order = np.random.default_rng(5).permutation(67)
    return [str(i) for i in range(67)], labels[order]


def test_paper_budgets() -> None:
    assert initial_per_class(800 / 67, 67, 2) == 4
    assert initial_per_class(20000 / 4794, 4794, 200) == 1
    assert round_count(200 / 67, 67) == 2
    assert round_count(20000 / 4794, 4794) == 200
    # 8/67*100 is the same percentage written another way; plain int() would give 3 and 7.
    assert initial_per_class(8 / 67 * 100, 67, 2) == 4
    assert round_count(8 / 67 * 100, 67) == 8


def test_budget_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        initial_per_class(120.0, 67, 2)
    with pytest.raises(ValueError):
        round_count(2.0, 0)


def test_per_class_quota() -> None:
    _, labels = _glas_like()
    assert per_class_quota(2, labels) == 1
    assert per_class_quota(200, np.repeat(np.arange(200), 23)) == 1
    assert per_class_quota(200, np.repeat(np.arange(10), 5)) == 5
    assert per_class_quota(1, np.array([0, 1, 1])) == 1
    assert per_class_quota(3, np.array([], dtype=np.int64)) == 0


def test_random_balanced_respects_pool_and_quota() -> None:
    ids, labels = _glas_like()
    picked = select_random_balanced(ids, labels, 4, np.random.default_rng(0))
    assert len(picked) == len(set(picked)) == 8
    assert set(picked) <= set(ids)
    lab = dict(zip(ids, labels.tolist()))
    assert Counter(lab[i] for i in picked) == {0: 4, 1: 4}
    # A class with fewer samples than the quota gives what it has.
    few = select_random_balanced(["a", "b", "c"], np.array([0, 1, 1]), 5, np.random.default_rng(0))
    assert sorted(few) == ["a", "b", "c"]


def test_random_balanced_determinism() -> None:
    ids, labels = _glas_like()
    a = select_random_balanced(ids, labels, 4, np.random.default_rng(3))
    b = select_random_balanced(ids, labels, 4, np.random.default_rng(3))
    assert a == b
    shuffled = np.random.default_rng(9).permutation(len(ids))
    c = select_random_balanced([ids[i] for i in shuffled], labels[shuffled], 4, np.random.default_rng(3))
    assert c == a
    others = {tuple(select_random_balanced(ids, labels, 4, np.random.default_rng(s))) for s in range(5)}
    assert len(others) > 1


def test_rounds_never_repeat_and_exhaust_the_pool() -> None:
    ids, labels = _glas_like()
    lab = dict(zip(ids, labels.tolist()))
    labelled = initial_labelled(ids, labels, initial_per_class(800 / 67, 67, 2), seed=0)
    count = round_count(200 / 67, 67)
    rng = np.random.default_rng(0)
    while True:
        pool = [i for i in ids if i not in set(labelled)]
        pool_labels = np.array([lab[i] for i in pool], dtype=np.int64)
        new = select_random_balanced(pool, pool_labels, per_class_quota(count, pool_labels), rng)
        if not pool:
            assert new == []
            break
        assert new and not set(new) & set(labelled)
        assert len(new) <= len(pool)
        labelled += new
    assert sorted(labelled) == sorted(ids)


def test_top_balanced_picks_highest_with_id_ties() -> None:
    ids = ["b", "a", "c", "d", "e", "f"]
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.5, 0.5, 0.1, 0.2, 0.9, 0.3])
    assert select_top_balanced(ids, labels, scores, 1) == ["a", "e"]
    assert select_top_balanced(ids, labels, scores, 2) == ["a", "b", "e", "f"]
    assert sorted(select_top_balanced(ids, labels, scores, 10)) == sorted(ids)
    assert select_top_balanced([], np.array([], dtype=np.int64), np.array([]), 3) == []


def test_top_balanced_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        select_top_balanced(["a", "b"], np.array([0, 1]), np.array([0.1, np.nan]), 1)
    with pytest.raises(ValueError):
        select_top_balanced(["a", "a"], np.array([0, 1]), np.array([0.1, 0.2]), 1)
    with pytest.raises(ValueError):
        select_top_balanced(["a", "b"], np.array([0, 1]), np.array([0.1]), 1)


def test_random_balanced_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        select_random_balanced(["a", "b"], np.array([0]), 1, np.random.default_rng(0))
    with pytest.raises(ValueError):
        select_random_balanced(["a", "b"], np.array([0.0, 1.0]), 1, np.random.default_rng(0))
    assert select_random_balanced([], np.array([], dtype=np.int64), 2, np.random.default_rng(0)) == []


def test_protect_pl_rule() -> None:
    leftovers = ["1", "2", "3", "4", "5"]
    # 5 - 3 = 2 >= 2 classes: P is withheld.
    assert oracle_candidates(leftovers, ["2", "4", "5"], 2, protect_pl=True) == ["1", "3"]
    # 5 - 4 = 1 < 2 classes: everything stays a candidate.
    assert oracle_candidates(leftovers, ["1", "2", "4", "5"], 2, protect_pl=True) == leftovers
    assert oracle_candidates(leftovers, ["2", "4", "5"], 2, protect_pl=False) == leftovers


def test_initial_labelled_same_for_a_seed() -> None:
    ids, labels = _glas_like()
    l0 = initial_labelled(ids, labels, 4, seed=1)
    assert l0 == initial_labelled(ids, labels, 4, seed=1)
    assert l0 != initial_labelled(ids, labels, 4, seed=2)
    lab = dict(zip(ids, labels.tolist()))
    assert Counter(lab[i] for i in l0) == {0: 4, 1: 4}

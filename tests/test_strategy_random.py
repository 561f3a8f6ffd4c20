"""Random: class-balanced, reproducible from the round's generator, never a labelled sample."""

from __future__ import annotations

import numpy as np

from al.strategies.base import Evidence, StrategySettings
from al.strategies.random import RandomStrategy


def evidence(order: list[int]) -> Evidence:
    ids = [f"s{i:02d}" for i in range(12)]
    labels = np.array([i % 3 for i in range(12)])
    return Evidence(candidates=[ids[i] for i in order], candidate_labels=labels[order], labelled=["x"],
                    labelled_labels=np.array([0]))


def test_same_generator_same_pick_whatever_the_candidate_order() -> None:
    s = RandomStrategy(StrategySettings())
    first = s.select(evidence(list(range(12))), 2, np.random.default_rng(7)).selected
    again = s.select(evidence(list(reversed(range(12)))), 2, np.random.default_rng(7)).selected
    assert first == again
    assert s.select(evidence(list(range(12))), 2, np.random.default_rng(8)).selected != first


def test_two_per_class_and_no_score() -> None:
    picked = RandomStrategy(StrategySettings()).select(evidence(list(range(12))), 2, np.random.default_rng(0))
    assert sorted(int(i[1:]) % 3 for i in picked.selected) == [0, 0, 1, 1, 2, 2]
    assert picked.scores == {}

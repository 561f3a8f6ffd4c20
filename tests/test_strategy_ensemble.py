"""Deep ensembles (strategies.md section 5): members as passes, member count, golden pick."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import constants as C
from al.scores import PassStats
from al.strategies.base import Evidence, StrategySettings
from al.strategies.ensemble import Ensemble

# Three members' foreground probabilities for four images.
MEMBERS = torch.tensor([[0.1, 0.5, 0.1, 0.9], [0.9, 0.5, 0.1, 0.9], [0.5, 0.5, 0.1, 0.9]], dtype=torch.float64)


def member_stats() -> PassStats:
    stats = PassStats()
    for p in MEMBERS:
        stats.update(p.reshape(-1, 1))
    return stats


def test_the_ensemble_trains_its_size() -> None:
    assert Ensemble(StrategySettings(ensemble_size=4)).n_models() == 4


@pytest.mark.parametrize(("kind", "expected"), [
    (C.SCORE_ENTROPY, [0.6931, 0.6931, 0.3251, 0.3251]),
    (C.SCORE_BALD, [0.6931 - (0.3251 * 2 + 0.6931) / 3, 0.0, 0.0, 0.0]),
    (C.SCORE_VARIANCE, [0.32 / 3, 0.0, 0.0, 0.0])])
def test_scores_across_members(kind: str, expected: list[float]) -> None:
    scores = Ensemble(StrategySettings(ensemble_score=kind)).pass_scores(member_stats())
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-4)


def test_golden_class_balanced_pick() -> None:
    s = Ensemble(StrategySettings(ensemble_score=C.SCORE_BALD))
    evidence = Evidence(candidates=["i0", "i1", "i2", "i3"], candidate_labels=np.array([1, 1, 0, 0]), labelled=[],
                        labelled_labels=np.array([], dtype=np.int64), image_scores=s.pass_scores(member_stats()).numpy())
    # Class 0 first (i2 and i3 tie at 0: the smaller id), then class 1 (i0 disagrees most).
    assert s.select(evidence, 1, np.random.default_rng(0)).selected == ["i2", "i0"]

"""MC dropout scores (strategies.md section 4): worked numbers, properties, golden picks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import constants as C
from al.scores import PassStats, pass_score
from al.strategies.base import Evidence, StrategySettings
from al.strategies.mc import MCBALD, MCDropout, MCEntropy

# C = 2, T = 2: foreground probability of each pass for x1, x2, x3.
PASSES = torch.tensor([[0.1, 0.5, 0.1], [0.9, 0.5, 0.1]], dtype=torch.float64)


def stats_of(passes: torch.Tensor) -> PassStats:
    stats = PassStats()
    for p in passes:
        stats.update(p.reshape(-1, 1))
    return stats


def test_worked_numbers() -> None:
    stats = stats_of(PASSES)
    np.testing.assert_allclose(stats.predictive_entropy().numpy(), [0.6931, 0.6931, 0.3251], atol=1e-4)
    np.testing.assert_allclose(stats.bald().numpy(), [0.3681, 0, 0], atol=1e-4)
    np.testing.assert_allclose(stats.variance().numpy(), [0.16, 0, 0], atol=1e-12)


def test_strategies_read_their_score() -> None:
    stats = stats_of(PASSES)
    settings = StrategySettings(mc_score=C.SCORE_BALD)
    torch.testing.assert_close(MCEntropy(settings).pass_scores(stats), stats.predictive_entropy())
    torch.testing.assert_close(MCBALD(settings).pass_scores(stats), stats.bald())
    torch.testing.assert_close(MCDropout(settings).pass_scores(stats), stats.bald())
    torch.testing.assert_close(MCDropout(StrategySettings(mc_score=C.SCORE_VARIANCE)).pass_scores(stats),
                               stats.variance())
    with pytest.raises(ValueError, match="unknown pass score"):
        pass_score(stats, "ratio")


def test_probabilities_are_averaged_not_logits() -> None:
    # Logits (4, 0) and (0, 0): the mean probability has entropy .5720; the mean logit would give .3653.
    p = torch.softmax(torch.tensor([[4.0, 0.0], [0.0, 0.0]], dtype=torch.float64), dim=1)[:, 0]
    assert stats_of(p.reshape(2, 1)).predictive_entropy().item() == pytest.approx(0.5720, abs=1e-4)


def test_bald_is_non_negative_and_at_most_the_predictive_entropy() -> None:
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        passes = torch.rand(7, 5, 16, generator=gen, dtype=torch.float64) ** 3
        stats = PassStats()
        for p in passes:
            stats.update(p)
        assert (stats.bald() >= 0).all()
        assert (stats.bald() <= stats.predictive_entropy() + 1e-12).all()


def test_predictive_entropy_is_maximal_when_the_mean_is_one_half() -> None:
    values = [stats_of(torch.tensor([[m - 0.1], [m + 0.1]], dtype=torch.float64)).predictive_entropy().item()
              for m in (0.2, 0.35, 0.5, 0.65, 0.8)]
    assert int(np.argmax(values)) == 2 and values[1] == pytest.approx(values[3])


def test_golden_class_balanced_pick() -> None:
    stats = stats_of(torch.tensor([[0.2, 0.5, 0.1, 0.3], [0.7, 0.5, 0.1, 0.8]], dtype=torch.float64))
    for strategy, expected in ((MCBALD, ["a", "d"]), (MCEntropy, ["b", "d"])):
        s = strategy(StrategySettings())
        evidence = Evidence(candidates=["a", "b", "c", "d"], candidate_labels=np.array([0, 0, 1, 1]), labelled=[],
                            labelled_labels=np.array([], dtype=np.int64),
                            image_scores=s.pass_scores(stats).numpy())
        assert s.select(evidence, 1, np.random.default_rng(0)).selected == expected

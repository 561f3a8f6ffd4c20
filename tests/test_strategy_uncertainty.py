"""Least confidence, margin and entropy: strategies.md section 3's worked numbers and golden picks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al.scores import binary_entropy
from al.strategies.base import Evidence, StrategySettings, two_class
from al.strategies.uncertainty import Entropy, LeastConfidence, Margin, entropy, least_confidence, margin

CLASS_PROBS = torch.tensor([[0.8, 0.1, 0.1], [0.45, 0.45, 0.10], [0.4, 0.3, 0.3]], dtype=torch.float64)
# Three binary masks of four pixels (foreground probabilities).
MASKS = torch.tensor([[0.5, 0.9, 0.9, 0.9], [0.99, 0.99, 0.99, 0.6], [0.2, 0.2, 0.3, 0.3]],
                     dtype=torch.float64).reshape(3, 1, 2, 2)


def ranking(scores: torch.Tensor) -> list[int]:
    """1-based sample numbers, highest score first (the spec's notation)."""
    return [int(i) + 1 for i in np.argsort(-scores.numpy(), kind="stable")]


def image_mean(strategy: object, probs: torch.Tensor) -> torch.Tensor:
    return strategy.pixel_scores(two_class(probs)).reshape(probs.shape[0], -1).mean(dim=1)


def test_classification_worked_numbers() -> None:
    lc, mg, h = least_confidence(CLASS_PROBS), margin(CLASS_PROBS), entropy(CLASS_PROBS)
    np.testing.assert_allclose(lc.numpy(), [0.20, 0.55, 0.60], atol=1e-12)
    np.testing.assert_allclose(mg.numpy(), [0.70, 0.00, 0.10], atol=1e-12)
    np.testing.assert_allclose(h.numpy(), [0.6390, 0.9489, 1.0889], atol=1e-4)
    assert ranking(lc) == [3, 2, 1]
    assert ranking(-mg) == [2, 3, 1]  # smallest margin first
    assert ranking(h) == [3, 2, 1]


def test_binary_masks_worked_numbers_and_the_original_bug() -> None:
    settings = StrategySettings()
    h = image_mean(Entropy(settings), MASKS)
    np.testing.assert_allclose(h.numpy(), [0.4171, 0.2103, 0.5556], atol=1e-4)
    assert ranking(h) == [3, 1, 2]
    buggy = (-2 * MASKS * MASKS.log()).reshape(3, -1).mean(1)  # the (p, p) class vector of the original
    np.testing.assert_allclose(buggy.numpy(), [0.3155, 0.1682, 0.6831], atol=1e-4)
    assert not torch.allclose(buggy, h, atol=1e-2)


def test_binary_entropy_equals_the_entropy_of_the_class_vector() -> None:
    p = torch.linspace(0, 1, 101, dtype=torch.float64).reshape(1, 1, 101)
    torch.testing.assert_close(entropy(two_class(p))[0], binary_entropy(p)[0, 0])
    assert entropy(two_class(torch.tensor([[0.9]]))).item() == pytest.approx(0.3251, abs=1e-4)
    assert entropy(two_class(torch.tensor([[0.0]]))).item() == 0.0  # 0 ln 0 = 0, never NaN


def test_every_score_is_maximal_at_one_half_and_symmetric() -> None:
    p = torch.linspace(0, 1, 201, dtype=torch.float64).reshape(1, 1, 201)
    vector = two_class(p)
    for score in (entropy(vector), least_confidence(vector), 1 - margin(vector)):
        values = score[0]
        assert int(values.argmax()) == 100
        torch.testing.assert_close(values, values.flip(0))


def test_margin_of_a_binary_pixel_is_its_distance_from_one_half() -> None:
    p = torch.rand(4, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(margin(two_class(p)), (2 * p - 1).abs()[:, 0])


@pytest.mark.parametrize(("strategy", "expected"), [
    (LeastConfidence, ["c", "e"]), (Margin, ["c", "e"]), (Entropy, ["c", "e"])])
def test_golden_class_balanced_pick(strategy: type, expected: list[str]) -> None:
    # Per-image scores of five candidates in two classes; one pick per class, highest first.
    masks = torch.tensor([0.9, 0.7, 0.5, 0.95, 0.6], dtype=torch.float64).reshape(5, 1, 1, 1)
    s = strategy(StrategySettings())
    evidence = Evidence(candidates=["a", "b", "c", "d", "e"], candidate_labels=np.array([0, 0, 0, 1, 1]),
                        labelled=[], labelled_labels=np.array([], dtype=np.int64),
                        image_scores=image_mean(s, masks).numpy())
    picked = s.select(evidence, 1, np.random.default_rng(0))
    assert picked.selected == expected
    assert set(picked.scores) == {"a", "b", "c", "d", "e"}


def test_ties_go_to_the_smaller_id() -> None:
    evidence = Evidence(candidates=["z", "y", "x"], candidate_labels=np.array([0, 0, 0]), labelled=[],
                        labelled_labels=np.array([], dtype=np.int64), image_scores=np.array([0.3, 0.3, 0.1]))
    assert Entropy(StrategySettings()).select(evidence, 1, np.random.default_rng(0)).selected == ["y"]

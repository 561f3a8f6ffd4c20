"""Learning Loss for AL (strategies.md 6): the ranking loss's worked numbers, the module, the pick."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al.strategies.base import Evidence, StrategyError, StrategySettings
from al.strategies.ll4al import LearningLoss
from losses.ranking import margin_ranking_loss
from models.hybrid import HybridModel
from models.loss_prediction import LossPredictionModule


def test_ranking_loss_worked_numbers() -> None:
    target = torch.tensor([2.0, 0.5, 1.0, 3.0])
    predicted = torch.tensor([0.3, 0.1, 0.9, 0.2])
    # Pair (1, 4): y = -1 -> 1.1; pair (2, 3): y = -1 -> 0.2; mean 0.65.
    assert margin_ranking_loss(predicted, target, 1.0).item() == pytest.approx(0.65)


def test_ranking_loss_on_odd_and_single_batches() -> None:
    predicted = torch.tensor([0.3, 5.0, 0.2], requires_grad=True)
    loss = margin_ranking_loss(predicted, torch.tensor([2.0, 9.0, 3.0]), 1.0)
    assert loss.item() == pytest.approx(1.1)  # the middle sample has no partner
    loss.backward()
    assert predicted.grad[1] == 0
    single = margin_ranking_loss(torch.tensor([0.7], requires_grad=True), torch.tensor([1.0]), 1.0)
    assert single.item() == 0.0 and single.requires_grad  # no pair, no division by zero


def test_ranking_loss_is_zero_when_the_order_is_right_by_the_margin() -> None:
    target = torch.tensor([3.0, 1.0, 0.0, 2.0])
    assert margin_ranking_loss(torch.tensor([5.0, 1.0, -2.0, 2.0]), target, 1.0).item() == 0.0
    ties = margin_ranking_loss(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0]), 1.0)
    assert ties.item() == 1.0  # equal targets count as y = -1


def test_module_pools_each_level() -> None:
    module = LossPredictionModule([4, 8], width=3)
    maps = [torch.rand(5, 4, 6, 6), torch.rand(5, 8, 3, 3)]
    out = module(maps)
    assert out.shape == (5,)
    # Only the spatial mean of each map matters.
    flat = [m.mean(dim=(2, 3), keepdim=True).expand_as(m).contiguous() for m in maps]
    torch.testing.assert_close(module(flat), out)


def test_detached_maps_send_no_gradient_into_the_head() -> None:
    model = HybridModel(2, base_width=2, leak=4, full_res_width=4, loss_prediction_width=8)
    model.freeze_classifier()
    enc = model.encode(torch.rand(2, 3, 72, 72))
    for detach in (False, True):
        model.zero_grad(set_to_none=True)
        taps: list[torch.Tensor] = []
        model.segment(enc, taps)
        model.predict_loss(taps, detach=detach).sum().backward()
        head_grad = model.seg_head.downs[0][0].weight.grad
        assert (head_grad is None) == detach
        assert model.loss_head.out.weight.grad is not None


def test_adding_the_module_changes_no_other_weight_and_no_later_draw() -> None:
    torch.manual_seed(5)
    plain = HybridModel(2, base_width=2, leak=4, full_res_width=4)
    after_plain = torch.rand(3)
    torch.manual_seed(5)
    with_module = HybridModel(2, base_width=2, leak=4, full_res_width=4, loss_prediction_width=8)
    assert torch.equal(torch.rand(3), after_plain)
    own = with_module.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in plain.state_dict().items())
    assert any(k.startswith("loss_head.") for k in own)  # saved with the model


def test_highest_predicted_loss_is_picked() -> None:
    s = LearningLoss(StrategySettings())
    evidence = Evidence(candidates=["a", "b", "c"], candidate_labels=np.array([0, 0, 0]), labelled=[],
                        labelled_labels=np.array([], dtype=np.int64), image_scores=np.array([0.3, 1.2, -0.4]))
    assert s.select(evidence, 1, np.random.default_rng(0)).selected == ["b"]


def test_subset_is_random_reproducible_and_kept_in_pool_order() -> None:
    pool = [f"u{i:03d}" for i in range(50)]
    s = LearningLoss(StrategySettings(ll4al_subset=10))
    first = s.candidate_subset(pool, np.random.default_rng(1))
    assert len(first) == 10 and first == sorted(first) and set(first) <= set(pool)
    assert s.candidate_subset(pool, np.random.default_rng(1)) == first
    assert s.candidate_subset(pool, np.random.default_rng(2)) != first
    assert LearningLoss(StrategySettings(ll4al_subset=60)).candidate_subset(pool, np.random.default_rng(1)) == pool


def test_a_diverged_module_is_named_not_ranked() -> None:
    evidence = Evidence(candidates=["a", "b"], candidate_labels=np.array([0, 0]), labelled=[],
                        labelled_labels=np.array([], dtype=np.int64), image_scores=np.array([0.3, np.nan]))
    with pytest.raises(StrategyError, match="ll4al_weight") as info:
        LearningLoss(StrategySettings()).select(evidence, 1, np.random.default_rng(0))
    assert "\n" not in str(info.value)

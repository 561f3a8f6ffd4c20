"""The training loop: the batching rule, gradient clipping, the per-epoch history and the stop on a non-finite loss."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
import torch

import constants as C
from engine.evaluate import Inference
from engine.resident import TrainingItems
from engine.train import (
    BestModel,
    FitStats,
    HybridObjective,
    TrainingError,
    TrainSettings,
    batch_bounds,
    clip_gradient,
    fit,
)
from losses.hybrid import HybridLoss
from models.hybrid import HybridModel

SIZE = 72


def test_batches_are_near_equal_and_never_hold_one_sample_unless_asked() -> None:
    for n in range(1, 201):
        for batch_size in range(1, 65):
            bounds = batch_bounds(n, batch_size)
            sizes = [b - a for a, b in bounds]
            assert bounds[0][0] == 0 and bounds[-1][1] == n, (n, batch_size)
            assert all(b == c for (_, b), (c, _) in itertools.pairwise(bounds)), (n, batch_size)  # each item once
            assert max(sizes) - min(sizes) <= 1, (n, batch_size)
            assert len(bounds) == max(1, min(-(-n // batch_size), n // 2 if batch_size >= 2 else n)), (n, batch_size)
            if batch_size >= 2 and n >= 2:
                assert min(sizes) >= 2, (n, batch_size)   # BatchNorm never trains on one sample
            assert max(sizes) <= batch_size or (batch_size == 2 and max(sizes) == 3), (n, batch_size)


def test_a_small_trailing_batch_is_spread_over_the_batches() -> None:
    # Round 3 of PH2 (21 labelled images, batch 20) trained on 19 + 2: a two-image batch, always last, set the
    # head's BatchNorm statistics as often as the large one.
    assert batch_bounds(21, 20) == [(0, 11), (11, 21)]
    assert batch_bounds(3, 2) == [(0, 3)]
    assert batch_bounds(5, 2) == [(0, 3), (3, 5)]
    assert batch_bounds(9, 8) == [(0, 5), (5, 9)]
    assert batch_bounds(12, 20) == [(0, 12)]
    assert batch_bounds(0, 8) == []
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        batch_bounds(4, 0)


def tiny_model(seed: int = 0) -> HybridModel:
    torch.manual_seed(seed)
    model = HybridModel(2, base_width=2, leak=2, full_res_width=2)
    model.freeze_classifier()
    return model


def items(n: int = 4) -> TrainingItems:
    gen = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=gen) for _ in range(n)]
    masks = [(torch.rand(SIZE, SIZE, generator=gen) > 0.5).to(torch.uint8) for _ in range(n)]
    return TrainingItems(images=images, masks=masks, labels=torch.zeros(n, dtype=torch.int64),
                         tags=torch.full((n,), C.L, dtype=torch.int64))


def settings(**changes: object) -> TrainSettings:
    base = TrainSettings(epochs=2, batch_size=4, lr=0.1, momentum=0.9, nesterov=True, dampening=0.0, weight_decay=0.0,
                         scheduler="none", step_size=1, gamma=1.0, min_lr=0.0, crop=SIZE, hflip=False, vflip=False,
                         segmentation=True)
    return replace(base, **changes)


def train(model: HybridModel, s: TrainSettings) -> FitStats:
    loss = HybridLoss(1.0, 1.0, 0.1, train_classifier=False)
    infer = Inference(torch.device("cpu"))
    stats = fit(model, items(), HybridObjective(loss, infer), s, infer, lambda m: 0.5, BestModel(model), 0,
                torch.Generator().manual_seed(2))
    return stats


def test_every_epoch_records_its_loss_gradient_norm_and_logit_peak() -> None:
    stats = train(tiny_model(), settings(epochs=3))
    curves = stats.curves()
    assert set(curves) == {"loss", "valid", "grad_norm", "logit_peak"}
    assert all(len(v) == 3 for v in curves.values())
    assert all(g > 0 and math.isfinite(g) for g in curves["grad_norm"])
    assert all(p > 0 for p in curves["logit_peak"])


def test_clipping_caps_the_step_and_records_the_norm_before_clipping() -> None:
    unclipped = train(tiny_model(), settings(epochs=1)).grad_norms[0]
    cap = unclipped / 100
    model = tiny_model()
    before = torch.cat([p.detach().flatten().clone() for p in model.trainable_parameters()])
    stats = train(model, settings(epochs=1, grad_clip_norm=cap))
    after = torch.cat([p.detach().flatten() for p in model.trainable_parameters()])
    assert stats.grad_norms[0] == pytest.approx(unclipped, rel=1e-5)   # the history keeps the spike's size
    # One Nesterov step from a zero momentum buffer moves the weights by lr * (1 + momentum) * |g|, |g| <= cap.
    assert float((after - before).norm()) <= 0.1 * 1.9 * cap * (1 + 1e-4)
    assert float((after - before).norm()) < 0.1 * unclipped


def test_clip_gradient_leaves_short_gradients_and_reports_their_norm() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    assert float(clip_gradient([p], 10.0)) == pytest.approx(5.0) and p.grad.tolist() == [3.0, 4.0]
    assert float(clip_gradient([p], 1.0)) == pytest.approx(5.0)
    assert p.grad.tolist() == pytest.approx([0.6, 0.8], rel=1e-5)
    p.grad = torch.tensor([3.0, 4.0])
    assert float(clip_gradient([p], 0.0)) == pytest.approx(5.0) and p.grad.tolist() == [3.0, 4.0]


def test_a_non_finite_loss_stops_the_cycle_naming_the_epoch_and_the_settings() -> None:
    with pytest.raises(TrainingError, match=r"became (nan|inf) at epoch \d+.*--lr, now 1e\+30.*--grad_clip_norm, now 0, off"):
        train(tiny_model(), settings(epochs=5, lr=1e30))

"""Hybrid loss: each term against a hand computation, normalisations, ignored U samples, gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

from al.regions import partial_mask
from constants import NORM_GROUP, NORM_SAMPLE, PL, L, U
from losses import HybridLoss

LAMBDA = 0.1


def _bce(logit: float, target: float) -> float:
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(target * math.log(p) + (1.0 - target) * math.log(1.0 - p))


def _per_sample_bce(logits: torch.Tensor, masks: torch.Tensor) -> list[float]:
    return [
        sum(_bce(x, y) for x, y in zip(lg.flatten().tolist(), mk.flatten().tolist())) / lg.numel()
        for lg, mk in zip(logits, masks)
    ]


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "scores": torch.tensor(
            [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, -1.0, 0.0], [0.0, 0.0, 3.0]]
        ),
        "labels": torch.tensor([0, 2, 1, 2]),
        "mask_logits": torch.randn(4, 1, 3, 2, dtype=torch.float64),
        "masks": torch.randint(0, 2, (4, 1, 3, 2), dtype=torch.uint8),
        "tags": torch.tensor([L, PL, U, L]),
    }


def _loss(batch, **kwargs) -> tuple[torch.Tensor, dict[str, float]]:
    criterion = HybridLoss(scale_seg_u=LAMBDA, **kwargs)
    return criterion(
        batch["scores"], batch["mask_logits"], batch["labels"], batch["masks"], batch["tags"]
    )


def test_cross_entropy_term(batch) -> None:
    _, terms = _loss(batch)
    expected = 0.0
    for row, label in zip(batch["scores"].tolist(), batch["labels"].tolist()):
        expected += math.log(sum(math.exp(v) for v in row)) - row[label]
    assert terms["cl"] == pytest.approx(expected / 4)


def test_sample_normalisation_on_a_mixed_batch(batch) -> None:
    total, terms = _loss(batch, normalisation=NORM_SAMPLE)
    b = _per_sample_bce(batch["mask_logits"], batch["masks"])
    assert terms["seg_l"] == pytest.approx((b[0] + b[3]) / 3)
    assert terms["seg_pl"] == pytest.approx(b[1] / 3)
    assert terms["total"] == pytest.approx(terms["cl"] + (b[0] + b[3] + LAMBDA * b[1]) / 3)
    assert total.item() == pytest.approx(terms["total"])


def test_group_normalisation_on_a_mixed_batch(batch) -> None:
    _, terms = _loss(batch, normalisation=NORM_GROUP)
    b = _per_sample_bce(batch["mask_logits"], batch["masks"])
    assert terms["seg_l"] == pytest.approx((b[0] + b[3]) / 2)
    assert terms["seg_pl"] == pytest.approx(b[1])
    assert terms["total"] == pytest.approx(terms["cl"] + (b[0] + b[3]) / 2 + LAMBDA * b[1])


def test_sample_normalisation_is_the_batch_mean_without_u(batch) -> None:
    batch["tags"] = torch.tensor([L, PL, PL, L])
    _, terms = _loss(batch, train_classifier=False)
    b = _per_sample_bce(batch["mask_logits"], batch["masks"])
    assert terms["total"] == pytest.approx((b[0] + b[3] + LAMBDA * (b[1] + b[2])) / 4)


@pytest.mark.parametrize("normalisation", [NORM_SAMPLE, NORM_GROUP])
def test_empty_groups_give_zero_not_nan(batch, normalisation: str) -> None:
    batch["tags"] = torch.tensor([L, L, U, L])
    _, terms = _loss(batch, normalisation=normalisation)
    assert terms["seg_pl"] == 0.0 and math.isfinite(terms["seg_l"])
    batch["tags"] = torch.full((4,), U)
    batch["mask_logits"].requires_grad_(True)
    total, terms = _loss(batch, normalisation=normalisation, train_classifier=False)
    total.backward()
    assert terms["seg_l"] == 0.0 and terms["seg_pl"] == 0.0 and terms["total"] == 0.0
    assert torch.equal(batch["mask_logits"].grad, torch.zeros_like(batch["mask_logits"]))


def test_u_samples_are_ignored(batch) -> None:
    batch["mask_logits"].requires_grad_(True)
    total, _ = _loss(batch)
    total.backward()
    assert torch.equal(batch["mask_logits"].grad[2], torch.zeros_like(batch["mask_logits"][2]))
    changed = {k: v.clone() for k, v in batch.items()}
    changed["masks"] = changed["masks"].double()
    changed["masks"][2] = float("nan")
    changed["mask_logits"][2] = 50.0
    changed_total, _ = _loss(changed)
    assert changed_total.item() == pytest.approx(total.item())


def test_stable_for_large_logits() -> None:
    criterion = HybridLoss(train_classifier=False)
    logits = torch.tensor([100.0, -100.0]).reshape(1, 1, 1, 2)
    masks = torch.tensor([0, 0], dtype=torch.uint8).reshape(1, 1, 1, 2)
    total, terms = criterion(None, logits, None, masks, torch.tensor([L]))
    assert terms["seg_l"] == pytest.approx(50.0)
    assert torch.isfinite(total)


def test_no_gradient_into_the_classifier_when_it_does_not_train(batch) -> None:
    batch["scores"].requires_grad_(True)
    batch["mask_logits"].requires_grad_(True)
    total, terms = _loss(batch, train_classifier=False)
    total.backward()
    assert batch["scores"].grad is None
    assert batch["mask_logits"].grad is not None
    assert terms["cl"] == 0.0


def test_classification_only_leaves_the_masks_out_of_the_graph(batch) -> None:
    batch["mask_logits"].requires_grad_(True)
    criterion = HybridLoss(scale_seg=0.0, scale_seg_u=0.0)
    total, terms = criterion(
        batch["scores"], batch["mask_logits"], batch["labels"], batch["masks"], batch["tags"]
    )
    assert not total.requires_grad  # only the mask logits require grad here
    assert terms["seg_l"] == 0.0 and terms["total"] == pytest.approx(terms["cl"])


def test_terms_are_optional(batch) -> None:
    with_terms, terms = _loss(batch)
    without, empty = HybridLoss(scale_seg_u=LAMBDA)(
        batch["scores"],
        batch["mask_logits"],
        batch["labels"],
        batch["masks"],
        batch["tags"],
        return_terms=False,
    )
    assert empty == {}
    assert torch.equal(with_terms, without)
    assert set(terms) == {"cl", "seg_l", "seg_pl", "total"}


def test_bad_arguments_raise_value_errors(batch) -> None:
    with pytest.raises(ValueError, match="normalisation"):
        HybridLoss(normalisation="batch")
    with pytest.raises(ValueError, match="no term"):
        HybridLoss(scale_seg=0.0, scale_seg_u=0.0, train_classifier=False)
    with pytest.raises(ValueError, match="differ in shape"):
        HybridLoss()(
            batch["scores"],
            batch["mask_logits"],
            batch["labels"],
            batch["masks"][:, :, :2],
            batch["tags"],
        )


def test_partial_masks_equal_full_masks_when_every_region_is_revealed_and_ignore_the_rest() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 6, 8, generator=gen)
    masks = (torch.rand(2, 6, 8, generator=gen) > 0.5).to(torch.uint8)
    labels = torch.arange(48).reshape(6, 8) // 12          # 4 regions of 12 pixels
    tags = torch.tensor([L, L])
    full = HybridLoss(train_classifier=False)(None, logits, None, masks.unsqueeze(1), tags)[0]
    revealed = torch.stack([partial_mask(m, labels, range(4)) for m in masks]).unsqueeze(1)
    partial = HybridLoss(train_classifier=False, ignore_unrevealed=True)(None, logits, None, revealed, tags)[0]
    torch.testing.assert_close(partial, full)
    # Two regions revealed: the loss is the BCE of their pixels only, whatever the logits elsewhere.
    some = torch.stack([partial_mask(m, labels, [0, 2]) for m in masks]).unsqueeze(1)
    loss = HybridLoss(train_classifier=False, ignore_unrevealed=True)
    other = logits.clone()
    other[:, :, (labels == 1) | (labels == 3)] = 50.0
    torch.testing.assert_close(loss(None, logits, None, some, tags)[0], loss(None, other, None, some, tags)[0])
    keep = (labels == 0) | (labels == 2)
    expected = torch.stack([F.binary_cross_entropy_with_logits(logits[i, 0][keep], masks[i][keep].float())
                            for i in range(2)]).mean()
    torch.testing.assert_close(loss(None, logits, None, some, tags)[0], expected)

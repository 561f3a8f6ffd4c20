"""Every reported Dice, mIoU and estimated threshold comes from engine/metrics.py: hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.metrics import (
    best_threshold,
    confusion_counts,
    confusion_matrix,
    dice,
    dice_from_counts,
    miou_from_counts,
    segmentation_summary,
    sweep_thresholds,
)

# One 2x2 image: probabilities and truth.
PROBS = torch.tensor([[[0.2, 0.6], [0.9, 0.4]]])
TRUTH = torch.tensor([[[0, 1], [1, 1]]], dtype=torch.uint8)


def test_counts_dice_and_miou_of_one_image() -> None:
    tp, fp, fn, tn = confusion_counts(PROBS, TRUTH, torch.tensor([0.5], dtype=torch.float64))
    assert [float(x) for x in (tp, fp, fn, tn)] == [2.0, 0.0, 1.0, 1.0]
    assert float(dice_from_counts(tp, fp, fn)) == pytest.approx(4 / 5)             # 2*2 / (2*2 + 0 + 1)
    # mIoU: mean of the smoothed foreground (2+1)/(2+0+1+1) and background (1+1)/(1+1+0+1) IoU.
    assert float(miou_from_counts(tp, fp, fn, tn)) == pytest.approx((3 / 4 + 2 / 3) / 2)


def test_a_pixel_at_the_threshold_is_foreground() -> None:
    probs = torch.tensor([[0.5, 0.49]])
    tp, fp, _, _ = confusion_counts(probs, torch.tensor([[1, 0]]), torch.tensor([0.5], dtype=torch.float64))
    assert (float(tp), float(fp)) == (1.0, 0.0)


def test_many_thresholds_in_one_pass_equal_one_at_a_time() -> None:
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(3, 7, 5, generator=gen)
    truth = (torch.rand(3, 7, 5, generator=gen) > 0.6).to(torch.uint8)
    thresholds = sweep_thresholds()
    swept = confusion_counts(probs, truth, thresholds)
    for k in (0, 17, 94):
        one = confusion_counts(probs, truth, thresholds[k:k + 1])
        for a, b in zip(swept, one, strict=True):
            assert torch.equal(a[:, k], b[:, 0])
    pred = probs >= 0.5
    assert torch.allclose(dice(pred, truth), dice_from_counts(*swept[:3])[:, 45])   # 0.50 is the 46th threshold


def test_empty_mask_and_empty_prediction() -> None:
    empty = torch.zeros(1, 2, 2, dtype=torch.uint8)
    tp, fp, fn, tn = confusion_counts(torch.zeros(1, 2, 2), empty, torch.tensor([0.5], dtype=torch.float64))
    assert float(dice_from_counts(tp, fp, fn)) == 0.0          # 0 / (0 + 1e-8): the original's convention
    assert float(miou_from_counts(tp, fp, fn, tn)) == 1.0      # both IoUs (0+1)/(0+1) and (4+1)/(4+1)
    assert float(dice(torch.zeros(1, 4, dtype=torch.bool), empty.reshape(1, 4))) == 0.0
    # A mask the prediction misses entirely: Dice 0, foreground IoU 1/(0+0+2+1).
    tp, fp, fn, tn = confusion_counts(torch.zeros(1, 2, 2), torch.tensor([[[1, 1], [0, 0]]]),
                                      torch.tensor([0.5], dtype=torch.float64))
    assert float(dice_from_counts(tp, fp, fn)) == 0.0
    assert float(miou_from_counts(tp, fp, fn, tn)) == pytest.approx((1 / 3 + 3 / 5) / 2)


def test_dice_of_binary_predictions_per_image() -> None:
    pred = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    truth = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.uint8)
    assert dice(pred, truth).tolist() == pytest.approx([2 / 3, 1.0])


def test_the_sweep_and_its_ties() -> None:
    thresholds = sweep_thresholds()
    assert thresholds.numel() == 95 and float(thresholds[0]) == 0.05 and float(thresholds[-1]) == 0.99
    per_image = torch.tensor([[0.2, 0.8, 0.8, 0.1], [0.4, 0.6, 0.6, 0.9]], dtype=torch.float64)
    t = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    assert best_threshold(per_image, t) == (0.2, pytest.approx(0.7))   # 0.2 and 0.3 tie at 0.7: the lower wins


# The segmentation task's multi-class metrics: one confusion matrix over every pixel of a set.

def test_confusion_matrix_counts_pixels_and_leaves_out_the_ignored_ones() -> None:
    truth = torch.tensor([[[0, 1, 2], [2, 255, 1]]])
    pred = torch.tensor([[[0, 2, 2], [2, 0, 1]]])
    confusion = confusion_matrix(pred, truth, 3, 255)
    assert confusion.tolist() == [[1, 0, 0],    # the ignored pixel predicted 0 is not counted
                                  [0, 1, 1],
                                  [0, 0, 2]]


def test_miou_and_pixel_accuracy_by_hand_with_an_absent_class() -> None:
    confusion = np.array([[1, 0, 0, 0],
                          [0, 1, 1, 0],
                          [0, 0, 2, 0],
                          [0, 0, 0, 0]])          # class 3: neither labelled nor predicted
    out = segmentation_summary(confusion, ["bg", "a", "b", "c"])
    # IoU: bg 1/1, a 1/(1+1), b 2/(2+1); c absent from both: left out of the mean, None per class.
    assert out["per_class_iou"]["bg"] == pytest.approx(100.0)
    assert out["per_class_iou"]["a"] == pytest.approx(50.0)
    assert out["per_class_iou"]["b"] == pytest.approx(200 / 3)
    assert out["per_class_iou"]["c"] is None
    assert out["miou"] == pytest.approx((100 + 50 + 200 / 3) / 3)
    assert out["pixel_acc"] == pytest.approx(100 * 4 / 5)
    assert out["n_pixels"] == 5


def test_a_class_only_predicted_counts_with_iou_zero() -> None:
    out = segmentation_summary(np.array([[2, 1], [0, 0]]), ["bg", "fg"])
    assert out["per_class_iou"] == {"bg": pytest.approx(200 / 3), "fg": 0.0}
    assert out["miou"] == pytest.approx(100 / 3)


def test_an_empty_set_has_no_metrics() -> None:
    out = segmentation_summary(np.zeros((2, 2), dtype=np.int64), ["bg", "fg"])
    assert out["miou"] is None and out["pixel_acc"] is None

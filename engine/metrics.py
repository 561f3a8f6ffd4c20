"""Segmentation metrics at original resolution, for many thresholds in one pass.

Every metric is computed per image and then averaged over the set (method-spec section 5):
Dice = 2|P∩G| / (|P| + |G| + 1e-8), so an empty prediction on an empty mask scores 0;
mIoU = mean of the foreground and background IoU, each smoothed with +1.
A pixel is foreground at threshold t when its probability is >= t.
The segmentation task's multi-class metrics (confusion_matrix, segmentation_summary) are at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

DICE_EPS = 1e-8
IOU_SMOOTH = 1.0


def sweep_thresholds() -> Tensor:
    """The thresholds tried when estimating one: 0.05, 0.06, ..., 0.99 (95 values)."""
    return torch.arange(5, 100, dtype=torch.float64) / 100


def confusion_counts(probs: Tensor, target: Tensor, thresholds: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """True/false positives/negatives per image and threshold, each of shape (B, K).

    probs: (B, ...) foreground probabilities; target: (B, ...) 0/1 of the same shape. One
    bucketize and one bincount, however many thresholds: the sweep costs as much as one Dice.
    """
    b = probs.shape[0]
    k = thresholds.numel()
    p = probs.reshape(b, -1).float()
    g = target.reshape(b, -1).bool()
    t = thresholds.to(device=p.device, dtype=torch.float32)
    # index j = number of thresholds <= p: the pixel is foreground for thresholds 0..j-1.
    idx = torch.bucketize(p, t, right=True)
    offset = (torch.arange(b, device=p.device) * (k + 1)).unsqueeze(1)
    flat = (idx + offset).reshape(-1)
    fg_hist = torch.bincount(flat[g.reshape(-1)], minlength=b * (k + 1)).reshape(b, k + 1)
    bg_hist = torch.bincount(flat[~g.reshape(-1)], minlength=b * (k + 1)).reshape(b, k + 1)
    # Pixels predicted foreground at threshold k: those with index > k (reverse cumulative sum).
    tp = fg_hist.flip(1).cumsum(1).flip(1)[:, 1:].double()
    fp = bg_hist.flip(1).cumsum(1).flip(1)[:, 1:].double()
    fn = g.sum(1, keepdim=True).double() - tp
    tn = (~g).sum(1, keepdim=True).double() - fp
    return tp, fp, fn, tn


def dice_from_counts(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    return 2 * tp / (2 * tp + fp + fn + DICE_EPS)


def miou_from_counts(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    fg = (tp + IOU_SMOOTH) / (tp + fp + fn + IOU_SMOOTH)
    bg = (tn + IOU_SMOOTH) / (tn + fn + fp + IOU_SMOOTH)
    return (fg + bg) / 2


def dice(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image Dice of binary predictions (B, ...) against binary targets."""
    b = pred.shape[0]
    p = pred.reshape(b, -1).bool()
    g = target.reshape(b, -1).bool()
    inter = (p & g).sum(1).double()
    return 2 * inter / (p.sum(1).double() + g.sum(1).double() + DICE_EPS)


def best_threshold(miou_per_image: Tensor, thresholds: Tensor) -> tuple[float, float]:
    """(threshold, mean mIoU) with the highest mean mIoU over images; ties go to the lowest threshold."""
    mean = miou_per_image.mean(0)
    best = int(torch.argmax(mean))
    return float(thresholds[best]), float(mean[best])


# Multi-class semantic segmentation (the segmentation task): one confusion matrix over every pixel of a set,
# as the Cityscapes and VOC benchmarks count it (not per image).

def confusion_matrix(pred: Tensor, target: Tensor, n_classes: int, ignore: int) -> Tensor:
    """(K, K) int64 pixel counts, rows the true class, columns the predicted one; `ignore` pixels left out."""
    keep = target != ignore
    t, p = target[keep].long(), pred[keep].long()
    return torch.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def segmentation_summary(confusion: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """mIoU over the classes present in the labels or the predictions, per-class IoU (None when absent from
    both) and pixel accuracy, in %."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = [100.0 * float(tp[k] / union[k]) if union[k] > 0 else None for k in range(len(classes))]
    present = [v for v in iou if v is not None]
    total = confusion.sum()
    return {"miou": float(np.mean(present)) if present else None,
            "pixel_acc": 100.0 * float(tp.sum() / total) if total else None,
            "per_class_iou": dict(zip(classes, iou)), "n_pixels": int(total)}

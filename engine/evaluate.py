"""Evaluation at original resolution: Dice, mIoU, accuracy, threshold estimation, pseudo-masks.

Every prediction is brought back to the image's original size (data.views.restore_logits) before
the sigmoid and the threshold, as the protocol requires. Metrics stay on the device until the
end of a pass; one transfer per pass brings them back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from data.augment import normalise
from data.views import restore_logits
from engine.crf import CrfParams, refine_batch
from engine.metrics import best_threshold, confusion_counts, dice, dice_from_counts, miou_from_counts, sweep_thresholds
from engine.resident import EvalBatch, EvalSet
from engine.runtime import autocast


@dataclass(frozen=True)
class Inference:
    """How forward passes run on the device."""

    device: torch.device
    bf16: bool = False
    channels_last: bool = False

    def prepare(self, images_uint8: Tensor) -> Tensor:
        x = normalise(images_uint8)
        if self.channels_last and self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration, then back to the previous mode (frozen parts stay frozen)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(model: nn.Module, eval_set: EvalSet, inference: Inference,
            positions: Sequence[int] | None = None, with_masks: bool = True
            ) -> Iterator[tuple[EvalBatch, Tensor | None, Tensor]]:
    """(batch, foreground probabilities (B,1,H,W) at original resolution or None, class scores)."""
    with evaluating(model):
        for batch in eval_set.batches(positions):
            x = inference.prepare(batch.images)
            with autocast(inference.device, inference.bf16):
                enc = model.encode(x, with_full_res=with_masks, keys=batch.keys)
                scores, _ = model.classify(enc)
                logits = model.segment(enc) if with_masks else None
            probs = None
            if logits is not None:
                probs = torch.sigmoid(restore_logits(logits.float(), batch.geometry))
            yield batch, probs, scores.float()


def validation_dice(model: nn.Module, valid: EvalSet, inference: Inference, threshold: float) -> float:
    """Mean per-image Dice at a fixed threshold: the stage-2 model-selection criterion."""
    total = torch.zeros((), dtype=torch.float64, device=inference.device)
    for batch, probs, _ in predict(model, valid, inference):
        total += dice(probs >= threshold, batch.masks).sum()
    return float(total) / len(valid)


def validation_accuracy(model: nn.Module, valid: EvalSet, inference: Inference) -> float:
    """Classification accuracy: the stage-1 model-selection criterion."""
    correct = torch.zeros((), dtype=torch.int64, device=inference.device)
    for batch, _, scores in predict(model, valid, inference, with_masks=False):
        correct += (scores.argmax(1) == batch.labels).sum()
    return float(correct) / len(valid)


@dataclass
class SetMetrics:
    """Per-image metrics of one set (lists follow `ids`) and their means, in %."""

    ids: list[str]
    dice: list[float]
    miou: list[float]
    correct: list[bool]
    dice_bg: list[float] = field(default_factory=list)   # Dice of the background (F1-), where measured
    masks: dict[str, np.ndarray] = field(default_factory=dict)   # id -> 0/1 mask measured, when kept

    def summary(self) -> dict[str, float]:
        n = max(len(self.ids), 1)
        out = {"dice_idx": 100 * sum(self.dice) / n, "miou": 100 * sum(self.miou) / n,
               "acc": 100 * sum(self.correct) / n, "n": len(self.ids)}
        if self.dice_bg:
            out["dice_bg"] = 100 * sum(self.dice_bg) / n
        return out


def mask_rows(pred: Tensor, masks: Tensor, correct: Tensor) -> Tensor:
    """(B, 4) per image: Dice of the foreground (F1+), mIoU, correct class, Dice of the background (F1-)."""
    truth = masks.bool()
    tp = (pred & truth).flatten(1).sum(1).double()
    fp = (pred & ~truth).flatten(1).sum(1).double()
    fn = truth.flatten(1).sum(1).double() - tp
    tn = pred[0].numel() - tp - fp - fn
    return torch.stack([dice_from_counts(tp, fp, fn), miou_from_counts(tp, fp, fn, tn), correct.double(),
                        dice_from_counts(tn, fn, fp)], 1)


def segmentation_metrics(model: nn.Module, eval_set: EvalSet, inference: Inference, threshold: float,
                         positions: Sequence[int] | None = None, keep_masks: bool = False) -> SetMetrics:
    """Dice and mIoU at `threshold` and accuracy, per image, at original resolution; with `keep_masks`, the
    masks measured too (on the CPU)."""
    t = torch.tensor([threshold], dtype=torch.float64)
    order: list[int] = []
    rows: list[Tensor] = []
    masks: dict[str, np.ndarray] = {}
    for batch, probs, scores in predict(model, eval_set, inference, positions):
        tp, fp, fn, tn = confusion_counts(probs, batch.masks, t)
        rows.append(torch.stack([dice_from_counts(tp, fp, fn)[:, 0], miou_from_counts(tp, fp, fn, tn)[:, 0],
                                 (scores.argmax(1) == batch.labels).double()], 1))
        order.extend(batch.positions)
        if keep_masks:
            binary = (probs[:, 0] >= threshold).to(torch.uint8).cpu().numpy()
            masks.update((eval_set.ids[p], binary[k]) for k, p in enumerate(batch.positions))
    metrics = collect_rows(eval_set, order, rows)
    metrics.masks = masks
    return metrics


def wsl_metrics(model: nn.Module, eval_set: EvalSet, inference: Inference) -> dict[str, SetMetrics]:
    """Masks from the class activation maps: pixels where the predicted class wins the argmax.

    The original compares the argmax to the TRUE class, which uses the test label at test
    time; the headline metric here uses the predicted class and the true-class variant is
    reported beside it for comparison with the paper.
    """
    order: list[int] = []
    rows_pred: list[Tensor] = []
    rows_true: list[Tensor] = []
    with evaluating(model), torch.no_grad():
        for batch in eval_set.batches():
            x = inference.prepare(batch.images)
            with autocast(inference.device, inference.bf16):
                scores, maps = model.classify(model.encode(x, with_full_res=False))
            maps = restore_logits(model.class_maps_at(maps.float(), x.shape[-2:]), batch.geometry)
            winner = maps.argmax(1, keepdim=True)
            predicted = scores.float().argmax(1)
            correct = (predicted == batch.labels).double()
            for rows, cls in ((rows_pred, predicted), (rows_true, batch.labels)):
                rows.append(mask_rows(winner == cls.view(-1, 1, 1, 1), batch.masks, correct))
            order.extend(batch.positions)
    return {"predicted_class": collect_rows(eval_set, order, rows_pred),
            "true_class": collect_rows(eval_set, order, rows_true)}


def collect_rows(eval_set: EvalSet, order: list[int], rows: list[Tensor]) -> SetMetrics:
    """Per-image rows (dice, miou, correct[, dice_bg]) gathered in any order, as the set's metrics."""
    if not rows:
        return SetMetrics([], [], [], [])
    table = torch.cat(rows).cpu().numpy()
    by_position = np.argsort(np.asarray(order), kind="stable")
    table = table[by_position]
    ids = [eval_set.ids[p] for p in sorted(order)]
    return SetMetrics(ids=ids, dice=table[:, 0].tolist(), miou=table[:, 1].tolist(),
                      correct=[bool(v) for v in table[:, 2]], dice_bg=table[:, 3].tolist() if table.shape[1] > 3 else [])


def estimate_threshold(model: nn.Module, valid: EvalSet, inference: Inference) -> tuple[float, float]:
    """The threshold in 0.05..0.99 with the best mean mIoU on validation (method-spec 3.4)."""
    thresholds = sweep_thresholds()
    rows = []
    for batch, probs, _ in predict(model, valid, inference):
        tp, fp, fn, tn = confusion_counts(probs, batch.masks, thresholds)
        rows.append(miou_from_counts(tp, fp, fn, tn))
    return best_threshold(torch.cat(rows).cpu(), thresholds)


def predict_masks(model: nn.Module, eval_set: EvalSet, inference: Inference, threshold: float,
                  positions: Sequence[int], crf: CrfParams | None = None) -> tuple[dict[int, Tensor], dict[int, float]]:
    """Binary masks (uint8, original resolution, on the device) and their Dice against the true masks; with
    `crf`, the probabilities are refined by a dense CRF before the threshold."""
    masks: dict[int, Tensor] = {}
    scores: dict[int, float] = {}
    for batch, probs, _ in predict(model, eval_set, inference, positions):
        if crf is not None:
            probs = refine_batch(batch, probs, crf)
        binary = (probs >= threshold).to(torch.uint8)
        if batch.masks is not None:
            values = dice(binary, batch.masks).cpu().tolist()
            scores.update(zip(batch.positions, values))
        for i, p in enumerate(batch.positions):
            masks[p] = binary[i, 0]
    return masks, scores

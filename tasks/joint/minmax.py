"""Training and evaluation of the min-max entropy localiser (minmax-entropy spec sections 2-4, 7).

Training, per batch: the localiser's cross-entropy, with recursive erasing from `erase_from_epoch` on
(the mask A gathered over up to `erase_steps` passes), then the classifier of masked images on
X+ = X A (cross-entropy to the label: low entropy) and X- = X (1 - A) (cross-entropy to the uniform
distribution: high entropy). Evaluation: no erasing, no dropout; the mask is the per-image normalised
map at >= sigma (R+ >= 0.5) at original resolution, the label is argmax C(X+).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from data.views import restore_logits
from engine.crf import CrfParams, refine_batch
from engine.evaluate import Inference, SetMetrics, collect_rows, evaluating, mask_rows
from engine.resident import EvalBatch, EvalSet
from engine.runtime import autocast
from engine.train import Batch, StepLoss
from losses.minmax import accumulate_mask, erase, erasing_trust, uniform_cross_entropy
from models.minmax import MinMaxEntropyModel


@dataclass(frozen=True)
class MinMaxObjective:
    """The three losses of one batch (weights 1); the localiser's are backpropagated step by step."""

    inference: Inference

    def __call__(self, model: MinMaxEntropyModel, x: Tensor, batch: Batch, epoch: int) -> StepLoss:
        s = model.settings
        steps = s.erase_steps if epoch >= s.erase_from_epoch else 0
        accumulated, seg = (self._erase(model, x, batch.labels, steps) if steps
                            else self._localise_once(model, x, batch.labels))
        with autocast(self.inference.device, self.inference.bf16):
            positive = model.classify_masked(x * accumulated).float()
            negative = model.classify_masked(x * (1 - accumulated)).float()
        loss = F.cross_entropy(positive, batch.labels) + uniform_cross_entropy(negative)
        return StepLoss(loss, loss.detach() + seg, torch.maximum(positive.detach().abs().amax(),
                                                                 negative.detach().abs().amax()))

    def _localised(self, model: MinMaxEntropyModel, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(R+, per-sample localiser loss, localiser probabilities); the mean loss is backpropagated now."""
        with autocast(self.inference.device, self.inference.bf16):
            loc = model.localise(x, per_image=model.settings.per_image_norm)
        per_sample = F.cross_entropy(loc.scores.float(), labels, reduction="none")
        per_sample.mean().backward(retain_graph=not model.settings.detach_map)
        return loc.soft, per_sample.detach(), loc.scores.detach().float().softmax(1)

    def _localise_once(self, model: MinMaxEntropyModel, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        soft, per_sample, _ = self._localised(model, x, labels)
        return soft, per_sample.mean()

    def _erase(self, model: MinMaxEntropyModel, x: Tensor, labels: Tensor, steps: int) -> tuple[Tensor, Tensor]:
        """The accumulated mask A of recursive erasing (spec section 3) and the mean localiser loss."""
        s = model.settings
        history = torch.ones(len(labels), device=x.device)
        accumulated = torch.zeros((len(labels), 1, *x.shape[-2:]), device=x.device)
        current, first, total, t = x, None, torch.zeros((), device=x.device), 0
        while t < steps and bool(history.sum() > 0):
            soft, per_sample, probs = self._localised(model, current, labels)
            first = per_sample if first is None else first
            confidence, predicted = probs.max(1)
            tau, history = erasing_trust(t, (predicted == labels).float(), per_sample, first, confidence, history,
                                         s.sigma_erase)
            accumulated = accumulate_mask(accumulated, tau, soft)
            current = erase(current, accumulated, tau)
            total, t = total + per_sample.mean(), t + 1
        return accumulated, total / t


@torch.no_grad()
def localisations(model: MinMaxEntropyModel, eval_set: EvalSet, inference: Inference
                  ) -> Iterator[tuple[EvalBatch, Tensor, Tensor]]:
    """(batch, R+ (B, 1, h, w) at the evaluation view's size, predicted labels argmax C(X+))."""
    with evaluating(model):
        for batch in eval_set.batches():
            x = inference.prepare(batch.images)
            with autocast(inference.device, inference.bf16):
                loc = model.localise(x, per_image=True)
                scores = model.classify_masked(x * loc.soft.to(x.dtype))
            yield batch, loc.soft, scores.float().argmax(1)


def minmax_accuracy(model: MinMaxEntropyModel, valid: EvalSet, inference: Inference) -> float:
    """Accuracy of argmax C(X+): the model-selection criterion (lowest classification error)."""
    correct = sum(int((predicted == batch.labels).sum()) for batch, _, predicted in
                  localisations(model, valid, inference))
    return correct / len(valid)


def minmax_metrics(model: MinMaxEntropyModel, eval_set: EvalSet, inference: Inference,
                   crf: CrfParams | None = None) -> dict[str, SetMetrics]:
    """F1+ (dice_idx), F1- (dice_bg), mIoU and accuracy of the masks R+ >= 0.5, and of the refined masks
    ("crf") when `crf` is given; masks at the images' original resolution."""
    order: list[int] = []
    rows: dict[str, list[Tensor]] = {"plain": [], "crf": []} if crf else {"plain": []}
    for batch, view_soft, predicted in localisations(model, eval_set, inference):
        soft = restore_logits(view_soft.float(), batch.geometry)
        correct = predicted == batch.labels
        rows["plain"].append(mask_rows(soft >= 0.5, batch.masks, correct))
        if crf is not None:
            rows["crf"].append(mask_rows(refine_batch(batch, soft, crf) >= 0.5, batch.masks, correct))
        order.extend(batch.positions)
    return {name: collect_rows(eval_set, order, table) for name, table in rows.items()}

"""One training cycle with model selection on validation (method-spec 3.2 and 3.4).

The data already sits on the device; an epoch crops, flips and normalises there, so the loop
never waits on files or loader workers. The best weights are copied into buffers allocated once,
not deep-copied at every improvement.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import torch
from torch import nn
from tqdm import tqdm

from data.augment import random_crop_flip
from engine.evaluate import Inference
from engine.resident import TrainingItems
from engine.runtime import autocast, cpu_generator, derived_seed, sync
from engine.training_log import MemberLog
from losses.hybrid import HybridLoss, per_sample_bce
from losses.ranking import margin_ranking_loss


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    dampening: float
    weight_decay: float
    scheduler: str          # "mystep" or "none"
    step_size: int
    gamma: float
    min_lr: float
    crop: int
    hflip: bool
    vflip: bool
    segmentation: bool      # False in stage 1: classification only, the segmentation head is skipped
    progress: bool = False
    grad_clip_norm: float = 0.0   # largest L2 norm of one step's gradient (0: none)
    per_sample_augmentation: bool = False   # each sample's crop and flips drawn from (seed, epoch, index)


@dataclass(frozen=True)
class LossPredictionTraining:
    """Learning Loss for AL trained jointly with the head: total = loss + weight * ranking loss."""

    weight: float
    margin: float
    detach_epoch: int       # from this epoch on, the tapped maps enter the module detached


def lr_at(settings: TrainSettings, epoch: int) -> float:
    """mystep as the original steps it: epoch 0 uses lr, epoch e >= 1 uses lr*gamma^floor((e-1)/step)."""
    if settings.scheduler == "none" or epoch == 0:
        return settings.lr
    return max(settings.lr * settings.gamma ** ((epoch - 1) // settings.step_size), settings.min_lr)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Limits of the fewest batches of near-equal size (they differ by at most one) covering n items.

    A small trailing batch (21 items, batch 20 -> 20 + 1, or 19 + 2) updates BatchNorm's running
    statistics as often as a full one, always last in the epoch, and from a handful of values;
    equal batches (11 + 10) do not. With batch_size >= 2 no batch holds a single item, so that
    BatchNorm never trains on one sample: odd n at batch_size 2 gives one batch of 3.
    """
    if n < 1:
        return []
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    count = -(-n // batch_size)
    if batch_size >= 2 and n >= 2:
        count = min(count, n // 2)
    small, extra = divmod(n, count)
    sizes = [small + 1] * extra + [small] * (count - extra)
    ends = [sum(sizes[:k + 1]) for k in range(count)]
    return list(zip([0, *ends[:-1]], ends, strict=True))


def clip_gradient(params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """The gradient's L2 norm before clipping (on the device); the gradient scaled down to max_norm when it is
    longer (0: left as is). Caps the spikes of SGD at lr 0.1 (README, "Training that can be trusted")."""
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    return torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])


class BestModel:
    """The best weights seen so far (over one or several cycles), with their score and epoch."""

    def __init__(self, model: nn.Module):
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.score = -math.inf
        self.epoch = -1
        self.cycle = -1
        self.member = 0     # which model of a deep ensemble (set by the caller)

    def offer(self, model: nn.Module, score: float, epoch: int, cycle: int) -> bool:
        """Keep the weights if they are at least as good (ties go to the later epoch, as the original)."""
        if score < self.score:
            return False
        with torch.no_grad():
            for k, v in model.state_dict().items():
                self.state[k].copy_(v)
        self.score, self.epoch, self.cycle = score, epoch, cycle
        return True

    def restore(self, model: nn.Module) -> None:
        model.load_state_dict(self.state)


@dataclass
class FitStats:
    train_seconds: float = 0.0
    validate_seconds: float = 0.0
    images_seen: int = 0
    losses: list[float] = field(default_factory=list)
    valid_scores: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)    # per epoch, the largest step's gradient norm
    logit_peaks: list[float] = field(default_factory=list)   # per epoch, the largest |mask logit| trained on

    def curves(self) -> dict[str, list[float]]:
        """The per-epoch history a round keeps in its state."""
        return {"loss": self.losses, "valid": self.valid_scores, "grad_norm": self.grad_norms,
                "logit_peak": self.logit_peaks}


class TrainingError(RuntimeError):
    """Training diverged (a non-finite loss); the message names the round, epoch and likely cause."""


def diverged(desc: str, loss: float, epoch: int, settings: TrainSettings) -> TrainingError:
    clip = f"{settings.grad_clip_norm:g}" if settings.grad_clip_norm > 0 else "0, off"
    return TrainingError(f"{desc}: the training loss became {loss} at epoch {epoch}, so nothing of this round is "
                         f"written: lower the learning rate (--lr, now {settings.lr:g}) or the gradient clipping "
                         f"norm (--grad_clip_norm, now {clip}), or check the data")


class StepLoss(NamedTuple):
    """What one batch's objective gives the loop: the loss still to backpropagate (an objective may have
    backpropagated parts of its loss itself), the batch's loss to log, and the largest |logit|."""

    backward: torch.Tensor
    logged: torch.Tensor
    peak: torch.Tensor


class Objective(Protocol):
    """The loss of one training batch; called after the gradients are zeroed, before the optimiser steps."""

    def __call__(self, model: nn.Module, x: torch.Tensor, batch: Batch, epoch: int) -> StepLoss: ...


class Batch(NamedTuple):
    labels: torch.Tensor
    masks: torch.Tensor | None
    tags: torch.Tensor


@dataclass(frozen=True)
class HybridObjective:
    """The hybrid loss of the classifier (stage 1) or of the segmentation head (stage 2), with LL4AL's
    ranking loss when `loss_prediction` is set. The head trains when the batch has masks."""

    loss_fn: HybridLoss
    inference: Inference
    loss_prediction: LossPredictionTraining | None = None

    def __call__(self, model: nn.Module, x: torch.Tensor, batch: Batch, epoch: int) -> StepLoss:
        taps: list[torch.Tensor] | None = [] if self.loss_prediction is not None else None
        segmentation = batch.masks is not None
        with autocast(self.inference.device, self.inference.bf16):
            enc = model.encode(x, with_full_res=segmentation)
            scores, _ = model.classify(enc)
            logits = model.segment(enc, taps) if segmentation else None
        loss, _ = self.loss_fn(scores.float(), None if logits is None else logits.float(), batch.labels,
                               batch.masks, batch.tags, return_terms=False)
        if self.loss_prediction is not None:
            predicted = model.predict_loss(taps, detach=epoch >= self.loss_prediction.detach_epoch)
            target = per_sample_bce(logits.float(), batch.masks, self.loss_fn.ignore_unrevealed)
            loss = loss + self.loss_prediction.weight * margin_ranking_loss(predicted, target,
                                                                            self.loss_prediction.margin)
        return StepLoss(loss, loss.detach(), (scores if logits is None else logits).detach().abs().amax().float())


def augmented_batch(items: TrainingItems, idx: list[int], settings: TrainSettings, epoch: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops and flips of the batch; with `per_sample_augmentation` each sample's draws come from (the run's
    seed, epoch, its index) alone, so they do not depend on which batch it lands in."""
    draws = None
    if settings.per_sample_augmentation:
        seed = generator.initial_seed()
        draws = torch.stack([torch.rand(4, generator=cpu_generator(derived_seed(seed, epoch, i))) for i in idx])
    masks = [items.masks[i] for i in idx] if settings.segmentation else [None] * len(idx)
    return random_crop_flip([items.images[i] for i in idx], masks, settings.crop, settings.hflip, settings.vflip,
                            generator, draws=draws)


def fit(model: nn.Module, items: TrainingItems, objective: Objective, settings: TrainSettings,
        inference: Inference, validate: Callable[[nn.Module], float], best: BestModel, cycle: int,
        generator: torch.Generator, desc: str = "train", log: MemberLog | None = None) -> FitStats:
    """Train for settings.epochs, validating after every epoch and offering the weights to `best`; each
    finished epoch goes to `log` (the round's training_log.csv and TensorBoard)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                                nesterov=settings.nesterov, dampening=settings.dampening,
                                weight_decay=settings.weight_decay)
    stats = FitStats()
    n = len(items)
    device = inference.device
    bar = tqdm(range(settings.epochs), desc=desc, disable=None if settings.progress else True, leave=False,
               dynamic_ncols=True)
    for epoch in bar:
        lr = lr_at(settings, epoch)
        for group in optimiser.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        model.train()
        epoch_loss = torch.zeros((), device=device)
        peaks = torch.zeros(2, device=device)   # gradient norm, |logit|: kept on the device until the epoch ends
        order = torch.randperm(n, generator=generator).tolist()
        for first, last in batch_bounds(n, settings.batch_size):
            idx = order[first:last]
            images, masks = augmented_batch(items, idx, settings, epoch, generator)
            optimiser.zero_grad(set_to_none=True)
            step = objective(model, inference.prepare(images), Batch(items.labels[idx], masks if
                                                                      settings.segmentation else None,
                                                                      items.tags[idx]), epoch)
            step.backward.backward()
            grad_norm = clip_gradient(params, settings.grad_clip_norm)
            peaks = torch.maximum(peaks, torch.stack([grad_norm.to(device), step.peak.to(device)]))
            optimiser.step()
            epoch_loss += step.logged * len(idx)
        sync(device)
        middle = time.perf_counter()
        score = validate(model)
        stats.validate_seconds += time.perf_counter() - middle
        stats.train_seconds += middle - start
        stats.images_seen += n
        stats.losses.append(float(epoch_loss) / max(n, 1))
        grad_peak, logit_peak = peaks.tolist()
        stats.grad_norms.append(grad_peak)
        stats.logit_peaks.append(logit_peak)
        if not math.isfinite(stats.losses[-1]):
            raise diverged(desc, stats.losses[-1], epoch, settings)
        stats.valid_scores.append(score)
        best.offer(model, score, epoch, cycle)
        if log is not None:
            log.epoch(epoch, lr, stats.losses[-1], score, grad_peak, logit_peak)
        bar.set_postfix(loss=f"{stats.losses[-1]:.4f}", valid=f"{score:.4f}", best=f"{best.score:.4f}")
    return stats

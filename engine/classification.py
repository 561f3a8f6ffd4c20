"""The classification task: the oracle reveals class labels, any torchvision classifier learns them.

The loop of 002: n_start images per class drawn at random before round 0, n_new picked per round by
the strategy, a model trained for max_epochs each round (fresh, or warm-started from the previous
round's weights), and the study stops when validation accuracy has not beaten its best for
`patience` rounds. The strategies are the plug-ins of the joint task (al/strategies): they receive
class-probability vectors, several passes, members or penultimate features instead of masks.

Every subset sits on the device as one uint8 tensor; training crops, flips and normalises there,
and evaluation and scoring run in batches of valid_batch_size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from al.scores import CategoricalPassStats
from al.state import RunStateError
from al.strategies.base import (
    FEATURES,
    LOSS_MODULE,
    MC_PASSES,
    MEMBERS,
    PROBABILITIES,
    VALID_FEATURES,
    Evidence,
    Strategy,
)
from data.arrays import gather, read_arrays
from data.folds import load_fold
from data.records import DataError
from engine.context import train_settings
from engine.evaluate import Inference
from engine.resident import ResidentSet, ResidentSplits
from engine.round_model import RoundModelError, load_round_model
from engine.runtime import autocast
from engine.train import LossPredictionTraining, TrainSettings, batch_bounds, clip_gradient, diverged, lr_at
from engine.training_log import MemberLog
from losses.ranking import margin_ranking_loss
from models.classifier import Classifier, dropout_train
from parseit import Config, ConfigError, resolve_path, resource_path

# Per-channel statistics the inputs are normalised with (ImageNet's, which pretrained weights expect).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Datasets of natural images, which random horizontal flips keep plausible (not digits or letters).
FLIPPABLE = ("cifar10",)


@dataclass
class ClassificationData(ResidentSplits):
    flippable: bool = False   # random horizontal flips keep the images plausible

    @property
    def n_classes(self) -> int:
        return len(self.fold.classes)


def load_classification_data(cfg: Config, device: torch.device) -> ClassificationData:
    """The fold's three subsets read from the dataset's official files, moved to the device once."""
    fold = load_fold(resource_path(cfg.fold_folder, cfg.dataset), cfg.dataset, cfg.split, cfg.fold)
    if len(fold.classes) != cfg.model.num_classes:
        raise DataError(f"fold {cfg.dataset}/split_{cfg.split}/fold_{cfg.fold} has {len(fold.classes)} classes "
                        f"but model.num_classes is {cfg.model.num_classes}: pass --num_classes {len(fold.classes)}")
    arrays = read_arrays(cfg.dataset, resolve_path(cfg.data_root))
    encoding = fold.encoding
    subsets = []
    for records in (fold.train, fold.valid, fold.test):
        if not records:
            raise DataError(f"fold {cfg.dataset}/split_{cfg.split}/fold_{cfg.fold} has an empty subset: "
                            "make the folds again with create_folds.py")
        images, _ = gather(arrays, records)
        subsets.append(ResidentSet([r.id for r in records],
                                   torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device),
                                   torch.tensor([encoding[r.label] for r in records], device=device)))
    data = ClassificationData(fold, *subsets, flippable=cfg.dataset in FLIPPABLE)
    counts = np.bincount(data.train.labels_np, minlength=data.n_classes)
    n_start = cfg.classification.n_start
    if cfg.al_type != "Full_sup" and n_start > counts.min():
        smallest = fold.classes[int(counts.argmin())]
        raise ConfigError(f"n_start {n_start} is more than class '{smallest}' has in the train pool "
                          f"({counts.min()} images): pass --n_start {counts.min()} or less")
    return data


def normalised(images: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) -> float inputs normalised with MEAN and STD."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def augmented(images: Tensor, generator: torch.Generator, flip: bool) -> Tensor:
    """Random shifts of up to 1/8 of the side (zero padding), and horizontal flips when allowed."""
    b, _, h, w = images.shape
    pad = max(1, min(h, w) // 8)
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    out = torch.stack([padded[k, :, dy[k]:dy[k] + h, dx[k]:dx[k] + w] for k in range(b)])
    if flip:
        mirror = torch.rand(b, generator=generator) < 0.5
        out[mirror.to(out.device)] = out[mirror.to(out.device)].flip(-1)
    return out


@dataclass
class TrainSetup:
    """The joint task's optimiser settings (engine.train.TrainSettings: epochs, batch, lr and its
    schedule, SGD terms) and what only the classification task has."""

    settings: TrainSettings
    solver: str                           # sgd or adam
    data_aug: bool
    flip: bool
    loss_prediction: LossPredictionTraining | None = None


def train_setup(cfg: Config, flip: bool, loss_prediction: bool) -> TrainSetup:
    settings = train_settings(cfg, crop=0, segmentation=False, hflip=flip, vflip=False)
    ll4al = LossPredictionTraining(cfg.ll4al_weight, cfg.ll4al_margin, cfg.ll4al_detach_epoch) \
        if loss_prediction else None
    return TrainSetup(settings, cfg.classification.solver, cfg.classification.data_aug, flip, ll4al)


def prepared(images: Tensor, infer: Inference | None) -> Tensor:
    """Normalised inputs, in channels_last on CUDA when the run asks for it."""
    x = normalised(images)
    return x.contiguous(memory_format=torch.channels_last) if infer and infer.channels_last and x.is_cuda else x


def _autocast(infer: Inference | None) -> AbstractContextManager:
    return nullcontext() if infer is None else autocast(infer.device, infer.bf16)


def train(model: Classifier, images: Tensor, labels: Tensor, setup: TrainSetup, generator: torch.Generator,
          desc: str, infer: Inference | None = None, log: MemberLog | None = None) -> list[float]:
    """Fit on (images, labels) for the settings' epochs; the mean loss of each epoch (also to `log`). A non-finite
    loss stops the round with one line (learning rate too high, usually) instead of writing NaN results."""
    s = setup.settings
    params = [p for p in model.parameters() if p.requires_grad]
    if setup.solver == "adam":
        optimiser: torch.optim.Optimizer = torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
    else:
        optimiser = torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, nesterov=s.nesterov,
                                    dampening=s.dampening, weight_decay=s.weight_decay)
    n = len(labels)
    losses = []
    model.train()
    ll4al = setup.loss_prediction
    for epoch in tqdm(range(s.epochs), desc=desc, disable=None if s.progress else True, leave=False):
        lr = lr_at(s, epoch)
        for group in optimiser.param_groups:
            group["lr"] = lr
        if ll4al is not None:
            model.detach_taps = epoch >= ll4al.detach_epoch
        order = torch.randperm(n, generator=generator).to(labels.device)
        total = 0.0
        for first, last in batch_bounds(n, s.batch_size):
            index = order[first:last]
            x = images[index]
            if setup.data_aug:
                x = augmented(x, generator, setup.flip)
            with _autocast(infer):
                out = model(prepared(x, infer))
            per_sample = F.cross_entropy(out.logits.float(), labels[index], reduction="none")
            loss = per_sample.mean()
            if out.predicted_loss is not None and ll4al is not None and ll4al.weight > 0:
                loss = loss + ll4al.weight * margin_ranking_loss(out.predicted_loss.float(), per_sample.detach(),
                                                                 ll4al.margin)
            if not torch.isfinite(loss):
                raise diverged(desc, loss.item(), epoch, s)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradient(params, s.grad_clip_norm)
            optimiser.step()
            total += float(loss.detach()) * len(index)
        losses.append(total / n)
        if log is not None:
            log.epoch(epoch, lr, losses[-1])
    model.eval()
    return losses


@contextmanager
def _mode(model: Classifier, stochastic: bool) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        if stochastic:
            with dropout_train(model):
                yield
        else:
            yield
    finally:
        model.train(was)


@torch.no_grad()
def outputs(model: Classifier, subset: ResidentSet, positions: Sequence[int] | None, batch_size: int,
            stochastic: bool = False, infer: Inference | None = None) -> Iterator[tuple[slice, Any]]:
    """(rows, model output) over `positions` (all by default) in batches, in eval mode (dropout on when
    `stochastic`); bf16 and channels_last as `infer` says."""
    index = torch.arange(len(subset)) if positions is None else torch.as_tensor(list(positions), dtype=torch.long)
    with _mode(model, stochastic):
        for start in range(0, len(index), batch_size):
            rows = index[start:start + batch_size].to(subset.images.device)
            with _autocast(infer):
                out = model(prepared(subset.images[rows], infer))
            yield slice(start, start + len(rows)), out


def probabilities(model: Classifier, subset: ResidentSet, positions: Sequence[int] | None, batch_size: int,
                  stochastic: bool = False, infer: Inference | None = None) -> Tensor:
    """(n, C) softmax outputs, on the device."""
    return torch.cat([out.logits.float().softmax(dim=1) for _, out in
                      outputs(model, subset, positions, batch_size, stochastic, infer)])


def features(model: Classifier, subset: ResidentSet, positions: Sequence[int] | None, batch_size: int,
             infer: Inference | None = None) -> Tensor:
    """(n, D) float32 penultimate features, on the device."""
    rows = [out.features.float() for _, out in outputs(model, subset, positions, batch_size, infer=infer)]
    return torch.cat(rows) if rows else torch.zeros(0, model.feature_dim, device=subset.images.device)


def evaluate(model: Classifier, subset: ResidentSet, batch_size: int, infer: Inference | None = None) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix (rows: true class, columns: predicted), in %."""
    predicted = probabilities(model, subset, None, batch_size, infer=infer).argmax(dim=1).cpu().numpy()
    truth = subset.labels_np
    n_classes = int(model.num_classes)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    per_class = [100.0 * confusion[c, c] / confusion[c].sum() if confusion[c].sum() else None
                 for c in range(n_classes)]
    return {"acc": 100.0 * float((predicted == truth).mean()), "per_class_acc": per_class,
            "confusion": confusion.tolist(), "n": len(truth)}


def gather_evidence(strategy: Strategy, members: Sequence[Classifier], data: ClassificationData,
                    evidence: Evidence, positions: Sequence[int], labelled_positions: Sequence[int],
                    batch_size: int, mc_seed: int, infer: Inference | None = None) -> Evidence:
    """Fill `evidence` with what the strategy declared, from the classifier(s) of the round."""
    model = members[0]
    needs = strategy.required()
    pool = data.train
    if PROBABILITIES in needs:
        evidence.image_scores = strategy.pixel_scores(probabilities(model, pool, positions, batch_size, infer=infer)
                                                      ).double().cpu().numpy()
    if MC_PASSES in needs:
        torch.manual_seed(mc_seed)
        stats = CategoricalPassStats()
        for _ in range(strategy.settings.mc_passes):
            stats.update(probabilities(model, pool, positions, batch_size, stochastic=True, infer=infer))
        evidence.image_scores = strategy.pass_scores(stats).cpu().numpy()
    if MEMBERS in needs:
        stats = CategoricalPassStats()
        for member in members:
            stats.update(probabilities(member, pool, positions, batch_size, infer=infer))
        evidence.image_scores = strategy.pass_scores(stats).cpu().numpy()
    if LOSS_MODULE in needs:
        evidence.image_scores = torch.cat([out.predicted_loss.double() for _, out in
                                           outputs(model, pool, positions, batch_size, infer=infer)]).cpu().numpy()
    if FEATURES in needs:
        evidence.candidate_features = features(model, pool, positions, batch_size, infer)
        evidence.labelled_features = features(model, pool, labelled_positions, batch_size, infer)
    if VALID_FEATURES in needs:
        evidence.valid_features = features(model, data.valid, None, batch_size, infer)
        evidence.valid_labels = data.valid.labels_np
    return evidence


def load_weights(model: Classifier, path: Path, member: int) -> None:
    """A warm start from a member of the round model a finished round saved; RunStateError naming the file when it
    is missing, damaged or of another model."""
    problem = "missing: keep_models last or none deletes earlier rounds' models; a redone round needs --keep_models all"
    if path.is_file():
        try:
            model.load_state_dict(load_round_model(path).members[member])
            return
        except RoundModelError:
            problem = "damaged or not a round model"
        except (RuntimeError, TypeError, IndexError):
            problem = "the weights of another model"
    raise RunStateError(f"{path} cannot be used for the warm start ({problem}): delete {path.parent} and run that "
                        "round again")

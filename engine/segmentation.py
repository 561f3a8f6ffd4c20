"""The segmentation task on the device: resident label maps, training, evaluation and evidence.

Every subset is resized once to image_height x image_width (images bilinear, label maps nearest)
and sits on the device as one uint8 tensor; metrics (mIoU, pixel accuracy) are computed at that
size. Training flips horizontally (when allowed) and normalises on the device; cross-entropy
ignores the pixels labelled IGNORE (255).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from tqdm import tqdm

import constants as C
from al.scores import CategoricalPassStats
from al.strategies.base import FEATURES, MC_PASSES, MEMBERS, PROBABILITIES, Evidence, Strategy
from data.folds import load_fold
from data.records import DataError
from data.scenes import generate_scenes
from data.segmentation import CLASSES, decode_label
from engine.classification import normalised
from engine.evaluate import Inference
from engine.metrics import confusion_matrix, segmentation_summary
from engine.resident import ResidentSet, ResidentSplits
from engine.runtime import autocast
from engine.train import TrainSettings, batch_bounds, clip_gradient, diverged, lr_at
from engine.training_log import MemberLog
from models.classifier import dropout_train
from models.segmentation import SegmentationNet
from parseit import Config, resolve_path, resource_path


@dataclass
class SegmentationData(ResidentSplits):
    classes: tuple[str, ...] = ()   # the dataset's K classes, in label order

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def load_segmentation_data(cfg: Config, device: torch.device) -> SegmentationData:
    """The fold's three subsets, decoded, resized and moved to the device once."""
    root, s = resolve_path(cfg.data_root), cfg.segmentation
    if cfg.dataset == C.SCENES:
        generate_scenes(root)   # the embedded default: written once, on first use
    fold = load_fold(resource_path(cfg.fold_folder, cfg.dataset), cfg.dataset, cfg.split, cfg.fold)
    classes = CLASSES[cfg.dataset]
    if len(classes) != cfg.model.num_classes:
        raise DataError(f"{cfg.dataset} has {len(classes)} classes but model.num_classes is {cfg.model.num_classes}: "
                        f"pass --num_classes {len(classes)}")
    size = (s.image_width, s.image_height)
    subsets = []
    for name, records in ((C.TRAIN, fold.train), (C.VALID, fold.valid), (C.TEST, fold.test)):
        if not records:
            raise DataError(f"the {name} subset of {cfg.dataset}/split_{cfg.split}/fold_{cfg.fold} is empty: make the "
                            "folds again with create_folds.py")
        images, labels = [], []
        for record in tqdm(records, desc=f"decoding {name}", disable=None if cfg.progress else True, leave=False):
            images.append(_image(root / record.image, size))
            labels.append(_label(cfg.dataset, root / record.mask, size))
        subsets.append(ResidentSet([r.id for r in records],
                                   torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy()).to(device),
                                   torch.from_numpy(np.stack(labels)).to(device)))
    return SegmentationData(fold, *subsets, classes=classes)


def _image(path: Path, size: tuple[int, int]) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} is missing: complete the download or make the folds again")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.BILINEAR))


def _label(dataset: str, path: Path, size: tuple[int, int]) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} is missing: complete the download or make the folds again")
    return np.asarray(Image.fromarray(decode_label(dataset, path)).resize(size, Image.NEAREST))


def _prepare(images: Tensor, infer: Inference) -> Tensor:
    x = normalised(images)
    return x.contiguous(memory_format=torch.channels_last) if infer.channels_last and x.is_cuda else x


def train(model: SegmentationNet, data: ResidentSet, rows: list[int], settings: TrainSettings, infer: Inference,
          generator: torch.Generator, desc: str, labels: Tensor | None = None, log: MemberLog | None = None
          ) -> list[float]:
    """SGD on the labelled rows for the settings' epochs; the mean loss of each epoch (also to `log`). `labels`
    replaces the set's label maps (partial ones, IGNORE outside revealed regions). A non-finite loss stops the
    round with one line."""
    labels = data.labels if labels is None else labels
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum, nesterov=settings.nesterov,
                                dampening=settings.dampening, weight_decay=settings.weight_decay)
    index = torch.as_tensor(rows, dtype=torch.long)
    losses = []
    model.train()
    for epoch in tqdm(range(settings.epochs), desc=desc, disable=None if settings.progress else True, leave=False):
        lr = lr_at(settings, epoch)
        for group in optimiser.param_groups:
            group["lr"] = lr
        order = index[torch.randperm(len(index), generator=generator)].to(data.images.device)
        total = 0.0
        for first, last in batch_bounds(len(order), settings.batch_size):
            x, y = data.images[order[first:last]], labels[order[first:last]].long()
            if settings.hflip:
                mirror = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
                x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
                y = torch.where(mirror[:, None, None], y.flip(-1), y)
            with autocast(infer.device, infer.bf16):
                logits = model(_prepare(x, infer))
            loss = F.cross_entropy(logits.float(), y, ignore_index=C.IGNORE)
            if not torch.isfinite(loss):
                raise diverged(desc, loss.item(), epoch, settings)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradient(params, settings.grad_clip_norm)
            optimiser.step()
            total += float(loss.detach()) * len(x)
        losses.append(total / len(order))
        if log is not None:
            log.epoch(epoch, lr, losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def probabilities(model: SegmentationNet, subset: ResidentSet, positions: Sequence[int] | None, batch_size: int,
                  infer: Inference, stochastic: bool = False) -> Iterator[tuple[slice, Tensor]]:
    """(rows of `positions`, (B, K, H, W) float32 softmax) in batches, eval mode (dropout on when `stochastic`)."""
    index = torch.arange(len(subset)) if positions is None else torch.as_tensor(list(positions), dtype=torch.long)
    was = model.training
    model.eval()
    try:
        with dropout_train(model) if stochastic else torch.no_grad():
            for start in range(0, len(index), batch_size):
                rows = index[start:start + batch_size].to(subset.images.device)
                with autocast(infer.device, infer.bf16):
                    logits = model(_prepare(subset.images[rows], infer))
                yield slice(start, start + len(rows)), logits.float().softmax(dim=1)
    finally:
        model.train(was)


def evaluate(model: SegmentationNet, subset: ResidentSet, batch_size: int, infer: Inference,
             classes: Sequence[str]) -> dict[str, Any]:
    """mIoU (classes present in the labels or the predictions), per-class IoU and pixel accuracy, in %."""
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.int64, device=subset.images.device)
    for rows, probs in probabilities(model, subset, None, batch_size, infer):
        confusion += confusion_matrix(probs.argmax(dim=1), subset.labels[rows].long(), len(classes), C.IGNORE)
    return segmentation_summary(confusion.cpu().numpy(), classes)


@torch.no_grad()
def features(model: SegmentationNet, subset: ResidentSet, positions: Sequence[int], batch_size: int,
             infer: Inference) -> Tensor:
    """(n, D) float32 pooled encoder features, on the device."""
    model.eval()
    index = torch.as_tensor(list(positions), dtype=torch.long)
    rows = []
    for start in range(0, len(index), batch_size):
        with autocast(infer.device, infer.bf16):
            rows.append(model.features(_prepare(subset.images[index[start:start + batch_size].to(
                subset.images.device)], infer)).float())
    return torch.cat(rows) if rows else torch.zeros(0, 1, device=subset.images.device)


def _pass_maps(strategy: Strategy, passes: Sequence[Tensor]) -> Tensor:
    """(B, H, W) per-pixel score of several passes or members, each (B, K, H, W)."""
    stats = CategoricalPassStats()
    b, k, h, w = passes[0].shape
    for p in passes:
        stats.update(p.permute(0, 2, 3, 1).reshape(-1, k))
    return strategy.pass_scores(stats).reshape(b, h, w)


def pixel_score_maps(strategy: Strategy, members: Sequence[SegmentationNet], subset: ResidentSet,
                     positions: Sequence[int], batch_size: int, infer: Inference, mc_seed: int
                     ) -> Iterator[tuple[list[int], Tensor]]:
    """(positions of a batch, (B, H, W) per-pixel scores) from the K-class distributions of one pass,
    of T passes with dropout (masks drawn from `mc_seed`) or of the members."""
    needs, model, index = strategy.required(), members[0], list(positions)
    if MC_PASSES in needs:
        torch.manual_seed(mc_seed)
    for start in range(0, len(index), batch_size):
        rows = index[start:start + batch_size]
        if PROBABILITIES in needs:
            yield rows, strategy.pixel_scores(_one_pass(model, subset, rows, infer))
        elif MC_PASSES in needs:
            yield rows, _pass_maps(strategy, [_one_pass(model, subset, rows, infer, stochastic=True)
                                              for _ in range(strategy.settings.mc_passes)])
        elif MEMBERS in needs:
            yield rows, _pass_maps(strategy, [_one_pass(m, subset, rows, infer) for m in members])
        else:
            raise ValueError(f"{strategy.name} does not score pixels")


def _one_pass(model: SegmentationNet, subset: ResidentSet, rows: list[int], infer: Inference,
              stochastic: bool = False) -> Tensor:
    """(B, K, H, W) probabilities of one batch of rows."""
    return next(iter(probabilities(model, subset, rows, len(rows), infer, stochastic)))[1]


def gather_evidence(strategy: Strategy, members: Sequence[SegmentationNet], data: SegmentationData,
                    evidence: Evidence, positions: Sequence[int], labelled_positions: Sequence[int], batch_size: int,
                    infer: Inference, mc_seed: int) -> Evidence:
    """Fill `evidence` with what the strategy declared: each image's mean of the per-pixel scores of the
    K-class distributions (one pass, MC passes or members), or pooled features."""
    needs = strategy.required()
    if needs & {PROBABILITIES, MC_PASSES, MEMBERS}:
        maps = pixel_score_maps(strategy, members, data.train, positions, batch_size, infer, mc_seed)
        evidence.image_scores = torch.cat([m.reshape(len(m), -1).mean(dim=1, dtype=torch.float64)
                                           for _, m in maps]).cpu().numpy() if positions else np.zeros(0)
    if FEATURES in needs:
        evidence.candidate_features = features(members[0], data.train, positions, batch_size, infer)
        evidence.labelled_features = features(members[0], data.train, labelled_positions, batch_size, infer)
    return evidence

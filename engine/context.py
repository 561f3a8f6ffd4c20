"""Everything a run needs before its first round: device, fold, decoded images, resident sets.

Built once per process; a range of rounds (--al_it_end) reuses it, so images are decoded and
moved to the device once, not once per round.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

import constants as C
from data.decoded import DecodedSample, decode_records
from data.folds import load_fold
from data.records import DataError, Fold
from data.synthetic import generate_synthetic
from data.views import Geometry
from engine.evaluate import Inference
from engine.resident import EvalSet, TrainPool
from engine.train import TrainSettings
from models.frozen import FrozenFeatures
from models.unet import MIN_INPUT_SIZE
from parseit import Config, ConfigError, resolve_path, resource_path


@dataclass
class RunData:
    fold: Fold
    train: list[DecodedSample]
    pool: TrainPool           # training views of the train set
    train_eval: EvalSet       # evaluation views of the train set (scores, pseudo-masks, metrics on L)
    valid: EvalSet
    test: EvalSet
    frozen: FrozenFeatures | None = None   # stage 2: the frozen backbone's stages for the run's theta0

    @property
    def n_classes(self) -> int:
        return len(self.fold.classes)


def geometry(cfg: Config) -> Geometry:
    return Geometry(crop_size=cfg.crop_size, up_scale_small_dim_to=cfg.up_scale_small_dim_to,
                    ratio_scale_patch=cfg.ratio_scale_patch, padding_ratio=cfg.padding_ratio,
                    pad_eval=cfg.pad_eval, padding_mode=cfg.padding_mode, scale_algo=cfg.scale_algo)


def inference(cfg: Config, device: torch.device) -> Inference:
    return Inference(device=device, bf16=cfg.amp_bf16, channels_last=cfg.channels_last)


def load_data(cfg: Config, device: torch.device) -> RunData:
    root = resolve_path(cfg.data_root)
    if cfg.dataset == C.SYNTHETIC:
        generate_synthetic(root)
    fold = load_fold(resource_path(cfg.fold_folder, cfg.dataset), cfg.dataset, cfg.split, cfg.fold)
    for subset, records in ((C.TRAIN, fold.train), (C.VALID, fold.valid), (C.TEST, fold.test)):
        if not records:
            raise DataError(f"the {subset} subset of {cfg.dataset}/split_{cfg.split}/fold_{cfg.fold} is empty: "
                            "make the folds again with create_folds.py (lower --valid_ratio / --test_ratio if needed)")
    if len(fold.classes) != cfg.model.num_classes:
        raise DataError(f"fold {cfg.dataset}/split_{cfg.split}/fold_{cfg.fold} has {len(fold.classes)} classes "
                        f"but model.num_classes is {cfg.model.num_classes}: pass --num_classes {len(fold.classes)}")
    cache = None if cfg.cache_dir is None else resolve_path(cfg.cache_dir)
    decoded = {subset: decode_records(records, root, cfg.dataset, fold.encoding, cache_dir=cache,
                                      progress=cfg.progress)
               for subset, records in ((C.TRAIN, fold.train), (C.VALID, fold.valid), (C.TEST, fold.test))}
    for subset in (C.VALID, C.TEST):
        if any(s.mask is None for s in decoded[subset]):
            raise DataError(f"every {subset} image needs a mask for the segmentation metrics: "
                            f"check the mask column of the {subset} fold of {cfg.dataset}")
    geom = geometry(cfg)
    if geom.train_crop < MIN_INPUT_SIZE:
        raise ConfigError(f"training crop {geom.train_crop} px (crop_size {cfg.crop_size} x ratio_scale_patch "
                          f"{cfg.ratio_scale_patch:g}) is below the network's minimum of {MIN_INPUT_SIZE} px: "
                          "raise --crop_size")
    return RunData(fold=fold, train=decoded[C.TRAIN],
                   pool=TrainPool(decoded[C.TRAIN], geom, device),
                   train_eval=EvalSet(decoded[C.TRAIN], geom, device, cfg.valid_batch_size),
                   valid=EvalSet(decoded[C.VALID], geom, device, cfg.valid_batch_size),
                   test=EvalSet(decoded[C.TEST], geom, device, cfg.valid_batch_size))


def train_settings(cfg: Config, crop: int, segmentation: bool, hflip: bool, vflip: bool) -> TrainSettings:
    """The optimiser, schedule and batch settings every task trains with (flips: the task's own keys)."""
    o = cfg.optimizer
    return TrainSettings(epochs=cfg.max_epochs, batch_size=cfg.batch_size, lr=o.lr, momentum=o.momentum,
                         nesterov=o.nesterov, dampening=o.dampening, weight_decay=o.weight_decay,
                         scheduler=o.name_lr_scheduler, step_size=o.step_size, gamma=o.gamma, min_lr=o.min_lr,
                         crop=crop, hflip=hflip, vflip=vflip, segmentation=segmentation,
                         progress=cfg.progress, grad_clip_norm=o.grad_clip_norm)

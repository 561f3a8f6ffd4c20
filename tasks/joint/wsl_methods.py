"""The localisers stage 1 can train (`wsl_method`), one class each, looked up by name in WSL_METHODS.

Both write theta0 in the same form (the hybrid model's backbone and `classifier`), so every stage-2
method runs on top of either; the theta0 of each sits in its own file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch
from torch import nn

import constants as C
from engine.checkpoint import build_model, hybrid_arguments, placed
from engine.crf import CRF_PRESETS
from engine.evaluate import Inference, validation_accuracy, wsl_metrics
from engine.resident import EvalSet
from engine.train import HybridObjective, Objective, TrainSettings
from losses.hybrid import HybridLoss
from models.hybrid import HybridModel
from models.minmax import MinMaxEntropyModel, MinMaxSettings
from parseit import Config
from tasks.joint.minmax import MinMaxObjective, minmax_accuracy, minmax_metrics


class WSLMethod(Protocol):
    """What stage 1 needs of a localiser."""

    subsets: tuple[str, ...]    # the sets its round reports metrics on

    def build(self, num_classes: int, device: torch.device) -> HybridModel: ...
    def settings(self, base: TrainSettings) -> TrainSettings: ...
    def objective(self, inference: Inference) -> Objective: ...
    def validate(self, model: nn.Module, valid: EvalSet, inference: Inference) -> float: ...
    def metrics(self, model: nn.Module, eval_set: EvalSet, inference: Inference) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Wildcat:
    """WILDCAT trained on the image labels; masks where the predicted class wins the class maps' argmax."""

    cfg: Config
    subsets = (C.VALID, C.TEST)

    def build(self, num_classes: int, device: torch.device) -> HybridModel:
        return build_model(self.cfg, num_classes, device, imagenet=True)

    def settings(self, base: TrainSettings) -> TrainSettings:
        return base

    def objective(self, inference: Inference) -> Objective:
        loss = HybridLoss(self.cfg.scale_cl, 0.0, 0.0, normalisation=self.cfg.seg_loss_normalisation,
                          train_classifier=True)
        return HybridObjective(loss, inference)

    def validate(self, model: nn.Module, valid: EvalSet, inference: Inference) -> float:
        return validation_accuracy(model, valid, inference)

    def metrics(self, model: nn.Module, eval_set: EvalSet, inference: Inference) -> dict[str, Any]:
        both = wsl_metrics(model, eval_set, inference)
        return {**both["predicted_class"].summary(), "dice_idx_true_class": both["true_class"].summary()["dice_idx"]}


def minmax_settings(cfg: Config) -> MinMaxSettings:
    m = cfg.minmax
    return MinMaxSettings(sigma=m.sigma, w=m.w, scale=m.scale, erase_steps=m.erase_steps,
                          erase_from_epoch=m.erase_from_epoch, sigma_erase=m.sigma_erase, detach_map=m.detach_map,
                          per_image_norm=m.normalise == C.NORMALISE_IMAGE)


@dataclass(frozen=True)
class MinMaxEntropy:
    """Min-max entropy with recursive erasing (models/minmax.py); F1+ (dice_idx), F1- (dice_bg) and the
    classification error, also after a dense CRF with `crf: true` (keys with the suffix _crf)."""

    cfg: Config
    subsets = (C.TRAIN, C.VALID, C.TEST)

    def build(self, num_classes: int, device: torch.device) -> HybridModel:
        arguments = {**hybrid_arguments(self.cfg, imagenet=True), "dropout": self.cfg.minmax.pool_dropout}
        return placed(MinMaxEntropyModel(num_classes, minmax_settings(self.cfg), **arguments), self.cfg, device)

    def settings(self, base: TrainSettings) -> TrainSettings:
        return replace(base, per_sample_augmentation=True)

    def objective(self, inference: Inference) -> Objective:
        return MinMaxObjective(inference)

    def validate(self, model: nn.Module, valid: EvalSet, inference: Inference) -> float:
        return minmax_accuracy(model, valid, inference)

    def metrics(self, model: nn.Module, eval_set: EvalSet, inference: Inference) -> dict[str, Any]:
        measured = minmax_metrics(model, eval_set, inference, CRF_PRESETS[self.cfg.crf_preset] if self.cfg.crf else None)
        out = measured["plain"].summary()
        out["cl_error"] = 100 - out["acc"]
        if "crf" in measured:
            out.update({f"{k}_crf": v for k, v in measured["crf"].summary().items() if k in ("dice_idx", "dice_bg",
                                                                                              "miou")})
        return out


WSL_METHODS: dict[str, type[WSLMethod]] = {C.WSL_WILDCAT: Wildcat, C.WSL_MINMAX: MinMaxEntropy}


def wsl_method(cfg: Config) -> WSLMethod:
    return WSL_METHODS[cfg.wsl_method](cfg)

"""Building the hybrid model from a configuration, and the stage-1 checkpoint theta0.

Stage 1 (WSL) writes theta0 where every stage-2 run of the same dataset, split, fold and seed
finds it; no hand copy is needed. Each seed has its own theta0 (the original reused seed 0's
for every seed, which understates the variance across seeds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from models.frozen import FrozenFeatures
from models.hybrid import HybridModel, load_matching_state
from parseit import Config
from torch_io import TorchFileError, load_torch, save_torch

# What to do about a theta0 that cannot be used.
THETA0_FIX = ("delete it and run the WSL round again (stage-2 runs that started from it then refuse to go on), "
              "or pass --path_pre_trained with a stage-1 checkpoint")


class CheckpointError(ValueError):
    """theta0 is missing, damaged or does not fit the model (one line naming the file and the fix)."""


def hybrid_arguments(cfg: Config, imagenet: bool) -> dict[str, Any]:
    """The hybrid model's keyword arguments from the configuration's model keys."""
    m = cfg.model
    return {"modalities": m.modalities, "kmax": m.kmax, "kmin": m.kmin, "alpha": m.alpha, "dropout": m.dropout,
            "base_width": m.base_width, "leak": m.leak, "backbone_dropout": m.backbone_dropout,
            "full_res_width": m.full_res_width, "pretrained": imagenet and cfg.pre_trained,
            "weights_path": cfg.imagenet_weights_path if imagenet else None}


def placed(model: HybridModel, cfg: Config, device: torch.device) -> HybridModel:
    """The model on the device, channels_last on CUDA when configured."""
    model.to(device)
    if cfg.channels_last and device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def build_model(cfg: Config, num_classes: int, device: torch.device, imagenet: bool,
                loss_prediction_width: int = 0) -> HybridModel:
    """A fresh hybrid model; ImageNet weights only where asked (stage 1), theta0 covers stage 2.

    `loss_prediction_width` > 0 adds LL4AL's loss-prediction module (stage 2 of LL4AL only).
    """
    return placed(HybridModel(num_classes, **hybrid_arguments(cfg, imagenet),
                              loss_prediction_width=loss_prediction_width), cfg, device)


def save_theta0(path: Path, model: HybridModel, meta: Mapping[str, Any]) -> None:
    """theta0: the model's weights on the CPU and what it was trained for (dataset, split, fold, seed, run)."""
    save_torch(path, {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                      "meta": dict(meta)})


def load_theta0(path: Path) -> dict[str, Any]:
    """theta0's content: its weights ("state_dict") and what it was trained for ("meta")."""
    if not path.is_file():
        raise CheckpointError(f"stage-1 checkpoint {path} not found: run the WSL round first "
                              "(python main.py --yaml <dataset>.yaml --al_type WSL ...) or pass --path_pre_trained FILE")
    try:
        payload = load_torch(path)
    except TorchFileError as error:
        raise CheckpointError(f"stage-1 checkpoint {error}: {THETA0_FIX}") from None
    if not (isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict)
            and isinstance(payload.get("meta", {}), dict)):
        raise CheckpointError(f"{path} is not a stage-1 checkpoint of this project: {THETA0_FIX}")
    return payload


def theta0_digest(path: Path) -> str:
    """sha256 of the checkpoint file: a run records which theta0 it started from."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_theta0_origin(theta0: Mapping[str, Any], path: Path, expected: Mapping[str, Any]) -> None:
    """theta0's recorded dataset, split, fold (and seed) must be the run's."""
    meta = theta0.get("meta", {})
    differ = [f"{k} {meta[k]!r} (run: {v!r})" for k, v in expected.items() if k in meta and meta[k] != v]
    if differ:
        raise CheckpointError(f"{path} was trained for another run: {', '.join(differ)}; run the WSL round of this "
                              "dataset, split, fold and seed, or pass --path_pre_trained with a matching file")


def model_from_theta0(cfg: Config, theta0: Mapping[str, Any], num_classes: int, device: torch.device,
                      path: Path, loss_prediction_width: int = 0, frozen: FrozenFeatures | None = None
                      ) -> HybridModel:
    """A stage-2 model: theta0 loaded (backbone, classifier and the head's initial weights), classifier frozen;
    `frozen` holds the frozen backbone's stages on evaluation images for this theta0 (None: none kept)."""
    model = build_model(cfg, num_classes, device, imagenet=False, loss_prediction_width=loss_prediction_width)
    loaded = set(load_matching_state(model, theta0["state_dict"]))
    missing = [k for k in model.state_dict() if k.startswith(("backbone.", "classifier.")) and k not in loaded]
    if missing:
        raise CheckpointError(f"{path} does not fit this model (e.g. '{missing[0]}'; classes "
                              f"{theta0.get('meta', {}).get('num_classes')} vs {num_classes}): "
                              "run the WSL round with the same dataset and model keys")
    model.freeze_classifier()
    model.frozen_features = frozen
    return model

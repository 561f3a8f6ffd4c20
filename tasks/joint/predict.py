"""The joint task's round model as a function of new images: the evaluation views of the run's geometry, the
segmentation head's foreground probability at original resolution, the round's threshold, and the class scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.decoded import DecodedSample
from engine.checkpoint import build_model, load_theta0, theta0_digest
from engine.context import geometry
from engine.evaluate import Inference, predict
from engine.prediction import Prediction
from engine.resident import EvalSet
from engine.round_model import RoundModel, RoundModelError
from models.hybrid import HybridModel


@dataclass
class JointPredictor:
    model: HybridModel
    round_model: RoundModel
    inference: Inference
    channels: int = 3
    with_masks: bool = True
    label_map: bool = False

    @classmethod
    def load(cls, round_model: RoundModel, inference: Inference) -> JointPredictor:
        cfg, extra = round_model.config, round_model.extra
        model = build_model(cfg, len(round_model.classes), inference.device, imagenet=False,
                            loss_prediction_width=extra["loss_prediction_width"])
        model.load_state_dict({**theta0_weights(round_model), **round_model.weights})
        return cls(model, round_model, inference)

    def __call__(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        cfg = self.round_model.config
        samples = [DecodedSample(str(k), 0, torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), None)
                   for k, image in enumerate(images)]
        views = EvalSet(samples, geometry(cfg), self.inference.device, cfg.valid_batch_size)
        out: dict[int, Prediction] = {}
        threshold = self.round_model.extra["threshold"]
        for batch, probs, scores in predict(self.model, views, self.inference):
            masks = (probs[:, 0] >= threshold).to(torch.uint8).cpu().numpy()
            classes = scores.softmax(1).cpu().numpy()
            for k, p in enumerate(batch.positions):
                out[p] = Prediction(masks[k], classes[k])
        return [out[p] for p in range(len(images))]


def theta0_weights(round_model: RoundModel) -> dict[str, torch.Tensor]:
    """The weights of the theta0 the round trained from (the round model holds what differs from it)."""
    path, digest = Path(round_model.extra["theta0"]), round_model.extra["theta0_sha256"]
    try:
        found = theta0_digest(path)
    except OSError:
        found = None
    if found != digest:
        problem = "is missing" if found is None else f"is another theta0 (sha256 {found[:12]}... now)"
        raise RoundModelError(f"{round_model.path} holds the segmentation head trained on theta0 {path} (sha256 "
                              f"{digest[:12]}...), which {problem}: restore that file")
    return load_theta0(path)["state_dict"]

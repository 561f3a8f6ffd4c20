"""The joint task's round model as a function of new images: the evaluation views of the run's geometry, the
segmentation head's foreground probability at original resolution, the round's threshold, and the class scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from data.decoded import DecodedSample
from engine.checkpoint import build_model
from engine.context import geometry
from engine.evaluate import Inference, predict
from engine.prediction import Prediction
from engine.resident import EvalSet
from engine.round_model import RoundModel
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
        cfg = round_model.config
        model = build_model(cfg, len(round_model.classes), inference.device, imagenet=False,
                            loss_prediction_width=round_model.extra["loss_prediction_width"])
        model.load_state_dict(round_model.weights)
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

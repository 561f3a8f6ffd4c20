"""What a person annotates for the joint task: the picked images with the model's mask and its
binary-entropy heat map (tasks/request.py writes the request)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from al.request import PickedImage, RankedCandidate
from al.state import RunFolder
from engine.context import RunData
from engine.evaluate import Inference, predict
from parseit import Config
from tasks.request import write_pick_request


def write_next_request(cfg: Config, run: RunFolder, folder: Path, r: int, data: RunData, model: Any,
                       infer: Inference, threshold: float, candidates: Sequence[str], picked: Sequence[str],
                       scores: dict[str, float], regions_picked: dict[str, list[int]],
                       regions: dict[str, torch.Tensor]) -> None:
    """The request for round r+1's pick, with the reported model's masks and uncertainty
    (r = -1: the initial labelled set, without a model)."""
    pool = data.pool
    probabilities: dict[str, np.ndarray] = {}
    positions = [pool.position[i] for i in picked]
    if model is not None and positions:
        for batch, probs, _ in predict(model, data.train_eval, infer, positions):
            for k, p in enumerate(batch.positions):
                probabilities[pool.ids[p]] = probs[k, 0].float().cpu().numpy()

    def picture(i: str, inside: np.ndarray | None) -> PickedImage:
        prob = probabilities.get(i)
        return PickedImage(i, data.train[pool.position[i]].image.permute(1, 2, 0).cpu().numpy(),
                           None if prob is None else (prob >= threshold).astype(np.uint8), prob, inside)

    paths = {rec.id: rec.image for rec in data.fold.train}
    rows = [RankedCandidate(i, paths[i], data.fold.classes[int(pool.labels[pool.position[i]])],
                            scores.get(i), i in set(picked)) for i in candidates]
    write_pick_request(cfg, run, folder, r, rows, picture, picked, regions, regions_picked)

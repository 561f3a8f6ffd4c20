"""The naive MC-dropout scorer, as the original computes it: the whole network T times per batch.

Reference for engine.acquire.mc_pass_scores, which runs the deterministic part once and only
the stochastic head T times, several passes per call. Both reduce the passes with the same
streaming statistics (al.scores.PassStats) at original resolution, so the difference in
speed is the repeated backbone, classifier, full-resolution branch and that branch's half of the
fusion conv, and the one-pass batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from al.scores import PassStats, pass_score
from data.views import restore_logits
from engine.evaluate import Inference
from engine.resident import EvalSet
from engine.runtime import autocast
from models.hybrid import HybridModel


@torch.no_grad()
def naive_mc_dropout_scores(model: HybridModel, pool: EvalSet, inference: Inference, positions: Sequence[int],
                            passes: int, kind: str, seed: int) -> np.ndarray:
    """Per-image score `kind` ("variance", "bald" or "entropy", al.scores.pass_score) over `passes`
    full forward passes with dropout active."""
    torch.manual_seed(seed)
    out = np.zeros(len(positions))
    where = {p: i for i, p in enumerate(positions)}
    with model.mc_dropout():
        for batch in pool.batches(positions):
            x = inference.prepare(batch.images)
            stats = PassStats()
            for _ in range(passes):
                with autocast(inference.device, inference.bf16):
                    logits = model(x).masks
                stats.update(torch.sigmoid(restore_logits(logits.float(), batch.geometry)))
            out[[where[p] for p in batch.positions]] = pass_score(stats, kind).cpu().numpy()
    return out

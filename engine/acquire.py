"""Acquisition scores of the unlabelled pool, computed with the current model.

Entropy: one pass. MC dropout: the deterministic part of the network (backbone, full-resolution
branch and that branch's half of the fusion conv) runs once per batch and only the stochastic head
runs T times, several passes batched together; statistics are reduced on the device as passes arrive, so nothing of
size T x H x W is ever held for the pool.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from al.scores import MCDropoutStats, mean_binary_entropy
from data.views import restore_logits
from engine.evaluate import Inference, predict
from engine.resident import EvalSet
from engine.runtime import autocast


def entropy_scores(model: nn.Module, pool: EvalSet, inference: Inference, positions: Sequence[int]) -> np.ndarray:
    """Mean binary entropy of the foreground probability at original resolution, per image."""
    out = np.zeros(len(positions))
    where = {p: i for i, p in enumerate(positions)}
    for batch, probs, _ in predict(model, pool, inference, positions):
        values = mean_binary_entropy(probs).cpu().numpy()
        out[[where[p] for p in batch.positions]] = values
    return out


@torch.no_grad()
def mc_dropout_scores(model: nn.Module, pool: EvalSet, inference: Inference, positions: Sequence[int],
                      passes: int, kind: str, seed: int, max_batch: int = 64) -> np.ndarray:
    """Per-image MC-dropout score over `passes` stochastic passes: "variance" or "bald".

    The dropout masks come from the global generator seeded with `seed`, so a rerun draws the
    same masks. `max_batch` bounds how many (image, pass) pairs go through the head at once.
    """
    torch.manual_seed(seed)
    out = np.zeros(len(positions))
    where = {p: i for i, p in enumerate(positions)}
    with model.mc_dropout():
        for batch in pool.batches(positions):
            x = inference.prepare(batch.images)
            b = x.shape[0]
            stats = MCDropoutStats()
            with autocast(inference.device, inference.bf16):
                enc = model.encode(x, sampling=True)
            per_call = max(1, min(passes, max_batch // b))
            done = 0
            while done < passes:
                t = min(per_call, passes - done)
                with autocast(inference.device, inference.bf16):
                    logits = model.segment(enc.repeat(t))
                probs = torch.sigmoid(restore_logits(logits.float(), batch.geometry))
                probs = probs.reshape(b, t, *probs.shape[1:])
                for j in range(t):
                    stats.update(probs[:, j])
                done += t
            values = (stats.bald() if kind == "bald" else stats.variance()).cpu().numpy()
            out[[where[p] for p in batch.positions]] = values
    return out

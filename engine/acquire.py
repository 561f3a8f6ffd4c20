"""The evidence strategies ask for, computed with the round's model(s) on the device.

- Image scores from one pass: the strategy's per-pixel score of the class vector (1 - p, p),
  averaged over the valid pixels of each image at original resolution.
- MC dropout: the deterministic part of the network (backbone, full-resolution branch and that
  branch's half of the fusion conv) runs once per batch and only the stochastic head runs T times,
  several passes batched together; statistics are reduced on the device as passes arrive, so
  nothing of size T x H x W is ever held for the pool.
- Ensemble members: the same statistics over the members' probabilities.
- Pooled encoder features: global average of the last backbone stage (core-set, HU, DAL).
- Predicted losses: the loss-prediction module on the head's multi-scale maps (LL4AL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from al.scores import PassStats
from al.strategies.base import (
    FEATURES,
    LOSS_MODULE,
    MC_PASSES,
    MEMBERS,
    PROBABILITIES,
    VALID_FEATURES,
    Evidence,
    Strategy,
    two_class,
)
from data.views import restore_logits
from engine.evaluate import Inference, evaluating, predict
from engine.resident import EvalBatch, EvalSet
from engine.runtime import autocast


def image_scores(model: nn.Module, pool: EvalSet, inference: Inference, positions: Sequence[int],
                 pixel_scores: Callable[[Tensor], Tensor]) -> np.ndarray:
    """Mean over valid pixels of pixel_scores((1 - p, p)) at original resolution, per image (float64)."""
    out = np.zeros(len(positions))
    where = {p: i for i, p in enumerate(positions)}
    for batch, probs, _ in predict(model, pool, inference, positions):
        values = pixel_scores(two_class(probs)).reshape(probs.shape[0], -1).mean(dim=1, dtype=torch.float64)
        out[[where[p] for p in batch.positions]] = values.cpu().numpy()
    return out


def _mc_stats(model: nn.Module, pool: EvalSet, inference: Inference, positions: Sequence[int], passes: int,
              seed: int, max_batch: int = 64) -> Iterator[tuple[EvalBatch, PassStats]]:
    """The statistics of `passes` stochastic passes, batch by batch (dropout masks from `seed`)."""
    torch.manual_seed(seed)
    with torch.no_grad(), model.mc_dropout():
        for batch in pool.batches(positions):
            x = inference.prepare(batch.images)
            b = x.shape[0]
            stats = PassStats()
            with autocast(inference.device, inference.bf16):
                enc = model.encode(x, sampling=True, keys=batch.keys)
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
            yield batch, stats


def _member_stats(members: Sequence[nn.Module], pool: EvalSet, inference: Inference,
                  positions: Sequence[int]) -> Iterator[tuple[EvalBatch, PassStats]]:
    """The statistics of the members' foreground probabilities (deterministic passes), batch by batch."""
    with torch.no_grad():
        for batch in pool.batches(positions):
            x = inference.prepare(batch.images)
            stats = PassStats()
            for member in members:
                with evaluating(member), autocast(inference.device, inference.bf16):
                    logits = member.segment(member.encode(x, keys=batch.keys))
                stats.update(torch.sigmoid(restore_logits(logits.float(), batch.geometry)))
            yield batch, stats


def _reduced(stats_of: Iterator[tuple[EvalBatch, PassStats]], reduce: Callable[[PassStats], Tensor],
             positions: Sequence[int]) -> np.ndarray:
    """One score per position, `reduce` applied to each batch's statistics."""
    out = np.zeros(len(positions))
    where = {p: i for i, p in enumerate(positions)}
    for batch, stats in stats_of:
        out[[where[p] for p in batch.positions]] = reduce(stats).cpu().numpy()
    return out


def mc_pass_scores(model: nn.Module, pool: EvalSet, inference: Inference, positions: Sequence[int],
                   passes: int, reduce: Callable[[PassStats], Tensor], seed: int, max_batch: int = 64) -> np.ndarray:
    """Per-image score `reduce(stats)` over `passes` stochastic passes.

    The dropout masks come from the global generator seeded with `seed`, so a rerun draws the
    same masks. `max_batch` bounds how many (image, pass) pairs go through the head at once.
    """
    return _reduced(_mc_stats(model, pool, inference, positions, passes, seed, max_batch), reduce, positions)


def member_scores(members: Sequence[nn.Module], pool: EvalSet, inference: Inference, positions: Sequence[int],
                  reduce: Callable[[PassStats], Tensor]) -> np.ndarray:
    """Per-image score `reduce(stats)` over the members' foreground probabilities (deterministic passes)."""
    return _reduced(_member_stats(members, pool, inference, positions), reduce, positions)


def pixel_score_maps(strategy: Strategy, members: Sequence[nn.Module], pool: EvalSet, inference: Inference,
                     positions: Sequence[int], mc_seed: int) -> Iterator[tuple[int, Tensor]]:
    """(position, (H, W) per-pixel score at original resolution) for a strategy that scores pixels."""
    needs = strategy.required()
    if PROBABILITIES in needs:
        for batch, probs, _ in predict(members[0], pool, inference, positions):
            yield from zip(batch.positions, strategy.pixel_scores(two_class(probs)))
        return
    if MC_PASSES in needs:
        stats_of = _mc_stats(members[0], pool, inference, positions, strategy.settings.mc_passes, mc_seed)
    elif MEMBERS in needs:
        stats_of = _member_stats(members, pool, inference, positions)
    else:
        raise ValueError(f"{strategy.name} does not score pixels")
    for batch, stats in stats_of:
        maps = strategy.pass_pixel_scores(stats).reshape(len(batch.positions), *batch.geometry.original_hw)
        yield from zip(batch.positions, maps)


@torch.no_grad()
def pooled_features(model: nn.Module, eval_set: EvalSet, inference: Inference,
                    positions: Sequence[int]) -> Tensor:
    """(n, D) float32 global averages of the last backbone stage, in the order of `positions`, on the device."""
    rows: dict[int, Tensor] = {}
    with evaluating(model):
        for batch in eval_set.batches(positions):
            with autocast(inference.device, inference.bf16):
                enc = model.encode(inference.prepare(batch.images), with_full_res=False, keys=batch.keys)
            pooled = enc.stages[-1].float().mean(dim=(2, 3))
            rows.update(zip(batch.positions, pooled))
    if not positions:
        return torch.zeros(0, feature_dim(model), device=inference.device)
    return torch.stack([rows[p] for p in positions])


@torch.no_grad()
def predicted_losses(model: nn.Module, pool: EvalSet, inference: Inference, positions: Sequence[int]) -> np.ndarray:
    """(n,) losses the model's loss-prediction module predicts for the evaluation views, in eval mode."""
    out = np.zeros(len(positions))
    where = {p: i for i, p in enumerate(positions)}
    with evaluating(model):
        for batch in pool.batches(positions):
            taps: list[Tensor] = []
            with autocast(inference.device, inference.bf16):
                model.segment(model.encode(inference.prepare(batch.images), keys=batch.keys), taps)
                values = model.predict_loss(taps)
            out[[where[p] for p in batch.positions]] = values.double().cpu().numpy()
    return out


def feature_dim(model: nn.Module) -> int:
    """Size of the pooled encoder features (512 for ResNet-18)."""
    return int(model.backbone.out_channels[-1])


def gather_evidence(strategy: Strategy, members: Sequence[nn.Module], train_eval: EvalSet, valid: EvalSet,
                    inference: Inference, evidence: Evidence, positions: Sequence[int],
                    labelled_positions: Sequence[int], mc_seed: int) -> Evidence:
    """Fill `evidence` with what the strategy declared it needs; members[0] is the round's model."""
    model = members[0]
    needs = strategy.required()
    if PROBABILITIES in needs:
        evidence.image_scores = image_scores(model, train_eval, inference, positions, strategy.pixel_scores)
    if MC_PASSES in needs:
        evidence.image_scores = mc_pass_scores(model, train_eval, inference, positions,
                                               strategy.settings.mc_passes, strategy.pass_scores, mc_seed)
    if MEMBERS in needs:
        evidence.image_scores = member_scores(members, train_eval, inference, positions, strategy.pass_scores)
    if LOSS_MODULE in needs:
        evidence.image_scores = predicted_losses(model, train_eval, inference, positions)
    if FEATURES in needs:
        evidence.candidate_features = pooled_features(model, train_eval, inference, positions)
        evidence.labelled_features = pooled_features(model, train_eval, inference, labelled_positions)
    if VALID_FEATURES in needs:
        evidence.valid_features = pooled_features(model, valid, inference, range(len(valid)))
        evidence.valid_labels = valid.labels
    return evidence

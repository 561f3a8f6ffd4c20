"""Label_prop's pseudo-labelling (method-spec 3): pair unlabelled samples with a labelled class-mate by
colour-histogram kNN, and let the round's model draw their masks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from al.pseudo_label import FeatureSettings, load_or_build, pair_unlabelled
from al.state import RoundState, RunFolder, experiment_dir
from engine.context import RunData
from engine.crf import CRF_PRESETS
from engine.evaluate import estimate_threshold, predict_masks
from engine.resident import TrainPool
from parseit import Config


@dataclass
class PseudoMasks:
    masks: dict[int, torch.Tensor]   # pool position -> binary mask at original resolution, on the device
    dice: dict[int, float]           # pool position -> Dice against the true mask
    threshold: float | None


def feature_settings(cfg: Config) -> FeatureSettings:
    return FeatureSettings(bins=cfg.nbr_bins_histc, lo=cfg.min_histc, hi=cfg.max_histc,
                           resize_h=cfg.resize_h_to_opt_mask, smooth=cfg.smooth_img, smooth_ksize=cfg.smooth_img_ksz,
                           smooth_sigma=cfg.smooth_img_sigma, enhance_color=cfg.enhance_color,
                           enhance_factor=cfg.enhance_color_fact)


def pair_by_colour(cfg: Config, data: RunData, labelled: list[str], device: torch.device) -> dict[str, str]:
    """Label_prop's U'': unlabelled samples paired with a labelled class-mate by colour-histogram kNN."""
    pool = data.pool
    cache = load_or_build(experiment_dir(cfg) / "knn_cache", pool.ids, pool.labels.tolist(),
                          [s.image for s in data.train], feature_settings(cfg), cfg.knn_block_size,
                          device, cfg.progress)
    return pair_unlabelled(cache, set(labelled), cfg.knn, cfg.knn_block_size, device)


def carried_pseudo_masks(run: RunFolder, r: int, previous: RoundState | None,
                         pool: TrainPool) -> dict[str, torch.Tensor]:
    """P_{r-1}: the previous round's pseudo-masks, brought to the training geometry."""
    if previous is None:
        return {}
    return {u: pool.mask_view(pool.position[u], torch.from_numpy(run.read_mask(r - 1, u)))
            for u in previous.pseudo_pairs}


def pseudo_masks(cfg: Config, model: Any, data: RunData, infer: Any, ids: list[str],
                 threshold: float | None = None) -> PseudoMasks:
    """Masks the model draws for `ids`, cut at `threshold` or at the pseudo-label threshold of the config."""
    if threshold is None:
        threshold = estimate_threshold(model, data.valid, infer)[0] if cfg.estimate_pseg_thres else cfg.seg_threshold
    masks, dice = predict_masks(model, data.train_eval, infer, threshold, [data.pool.position[u] for u in ids],
                                crf=CRF_PRESETS[cfg.crf_preset] if cfg.crf_pseudo_masks else None)
    return PseudoMasks(masks, dice, threshold)

"""Region-level annotation of the joint task: superpixels of every train image, the partial masks
they reveal, and the strategy's pick of regions (seed 004's setting)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from al import selection
from al.regions import load_or_build, partial_mask, random_regions, scored_regions
from al.state import experiment_dir
from al.strategies import Strategy
from engine.acquire import pixel_score_maps
from engine.context import RunData
from parseit import Config


def superpixel_maps(cfg: Config, data: RunData) -> dict[str, torch.Tensor]:
    """Every train image's superpixels at original resolution, computed once per fold and cached."""
    return load_or_build(experiment_dir(cfg) / "superpixels", data.pool.ids, [s.image for s in data.train],
                         cfg.regions_per_image, cfg.superpixel_method, cfg.progress)


def partial_mask_view(data: RunData, regions: dict[str, torch.Tensor], u: str, revealed: set[int]) -> torch.Tensor:
    """Image u's true mask on its revealed regions and IGNORE elsewhere, in the training geometry."""
    p = data.pool.position[u]
    return data.pool.mask_view(p, partial_mask(data.train[p].mask, regions[u], sorted(revealed)))


def annotated_pixels(data: RunData, labelled: list[str], regions: dict[str, torch.Tensor],
                     revealed: dict[str, set[int]]) -> int:
    """Pixels the oracle annotated for this round's training: whole images of L_r and revealed regions."""
    total = sum(int(data.train[data.pool.position[i]].image[0].numel()) for i in labelled)
    for u, ks in revealed.items():
        total += int(torch.isin(regions[u], torch.tensor(sorted(ks), dtype=regions[u].dtype)).sum())
    return total


def region_rows(strategy: Strategy, members: Sequence[Any], data: RunData, infer: Any,
                regions: dict[str, torch.Tensor], leftovers: list[str], rng: np.random.Generator,
                mc_seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Image id -> (mean score of each region, size of each region); random scores for Random."""
    if not strategy.required():
        return random_regions(leftovers, regions, rng)
    pool = data.pool
    maps = pixel_score_maps(strategy, members, data.train_eval, infer, [pool.position[u] for u in leftovers], mc_seed)
    return scored_regions(((pool.ids[p], pixel_map) for p, pixel_map in maps), regions)


def region_budget(cfg: Config, data: RunData) -> int:
    """The budget of image-level AL (p_samples of the pool) in regions, or in pixels of an average image."""
    images = selection.round_count(cfg.p_samples, len(data.pool))
    if cfg.region_budget == "regions":
        return images * cfg.regions_per_image
    return images * sum(s.image[0].numel() for s in data.train) // len(data.pool)

"""Region-level annotation (strategies.md §10): the oracle labels superpixels instead of whole images.

Each training image is cut once into superpixels (SLIC, or the watershed of the Sobel gradient as in
S001), cached per (method, number of regions). A round scores every region by the mean of a
pixel-wise uncertainty map over it, picks the best regions under a budget counted in regions or in
pixels, and the oracle reveals the true mask on the picked regions only; the other pixels carry
IGNORE so that the segmentation loss skips them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from skimage.color import rgb2gray
from skimage.filters import sobel
from skimage.segmentation import slic, watershed
from torch import Tensor
from tqdm import tqdm

from constants import IGNORE, REGION_BUDGET_UNITS, SUPERPIXEL_METHODS
from torch_io import load_cache, save_torch

_SLIC_COMPACTNESS = 10.0
_WATERSHED_COMPACTNESS = 0.001


def superpixels(image: np.ndarray, n_regions: int, method: str) -> np.ndarray:
    """(H, W) int32 labels 0..K-1 of the superpixels of a (H, W, 3) uint8 image; every label is used.

    Consecutive labels let the region scores live in one array of length K per image.
    Both methods are deterministic: the same image always gives the same map.
    """
    if n_regions < 1:
        raise ValueError(f"n_regions must be >= 1, got {n_regions}")
    if method not in SUPERPIXEL_METHODS:
        raise ValueError(f"unknown superpixel method {method!r}, expected one of {SUPERPIXEL_METHODS}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be (H, W, 3), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if method == "slic":
        raw = slic(image, n_segments=n_regions, compactness=_SLIC_COMPACTNESS, start_label=0, channel_axis=-1)
    else:
        raw = watershed(sobel(rgb2gray(image)), markers=n_regions, compactness=_WATERSHED_COMPACTNESS)
    _, inverse = np.unique(raw, return_inverse=True)
    return inverse.reshape(raw.shape).astype(np.int32)


def _cache_path(folder: Path, n_regions: int, method: str) -> Path:
    return folder / f"superpixels-{method}-{n_regions}.pt"


def _read_cache(path: Path, ids: Sequence[str], images: Sequence[Tensor]) -> dict[str, Tensor] | None:
    """The cached maps when the file is readable and matches these ids and image sizes, else None."""
    payload = load_cache(path, "superpixel cache")
    if not isinstance(payload, dict) or payload.get("ids") != list(ids):
        return None
    maps = payload.get("labels")
    if not isinstance(maps, list) or len(maps) != len(ids):
        return None
    for label_map, image in zip(maps, images):
        if (not isinstance(label_map, Tensor) or label_map.dtype != torch.int32
                or tuple(label_map.shape) != tuple(image.shape[1:])):
            return None
    return dict(zip(ids, maps))


def load_or_build(folder: Path, ids: Sequence[str], images: Sequence[Tensor], n_regions: int, method: str,
                  progress: bool = True) -> dict[str, Tensor]:
    """{id: (H, W) int32 label map} of (3, H, W) uint8 images, from the cache when it matches.

    Superpixels depend only on the image, so one file per (method, n_regions) serves every seed and
    round. A cache whose ids or map sizes differ, or that cannot be read, is rebuilt.
    """
    if len(ids) != len(images):
        raise ValueError(f"{len(ids)} ids for {len(images)} images")
    for image in images:
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"images must be (3, H, W) tensors, got shape {tuple(image.shape)}")
    path = _cache_path(folder, n_regions, method)
    cached = _read_cache(path, ids, images)
    if cached is not None:
        return cached
    maps = [torch.from_numpy(superpixels(image.permute(1, 2, 0).cpu().numpy(), n_regions, method))
            for image in tqdm(images, desc="superpixels", disable=None if progress else True, leave=False)]
    save_torch(path, {"ids": list(ids), "labels": maps, "method": method, "n_regions": n_regions})
    return dict(zip(ids, maps))


def _check_labels(labels: Tensor, n: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n):
        raise ValueError(f"labels must lie in 0..{n - 1}, got {int(labels.min())}..{int(labels.max())}")


def region_means(pixel_scores: Tensor, labels: Tensor, n: int) -> Tensor:
    """(n,) float64 mean of the (H, W) pixel scores over each region, 0 for an empty region.

    One bincount on the scores' device, so the map never leaves the accelerator.
    """
    if pixel_scores.shape != labels.shape:
        raise ValueError(f"scores {tuple(pixel_scores.shape)} and labels {tuple(labels.shape)} differ in shape")
    if pixel_scores.device != labels.device:
        raise ValueError(f"scores on {pixel_scores.device} but labels on {labels.device}")
    _check_labels(labels, n)
    flat = labels.reshape(-1).to(torch.int64)
    sums = torch.bincount(flat, weights=pixel_scores.reshape(-1).to(torch.float64), minlength=n)
    counts = torch.bincount(flat, minlength=n)
    return torch.where(counts > 0, sums / counts.clamp(min=1), torch.zeros_like(sums))


def region_sizes(labels: Tensor, n: int) -> Tensor:
    """(n,) int64 pixel count of each region, what a pixel budget is charged per region."""
    _check_labels(labels, n)
    return torch.bincount(labels.reshape(-1).to(torch.int64), minlength=n)


def top_regions(image_ids: Sequence[str], regions: np.ndarray, scores: np.ndarray, sizes: np.ndarray,
                budget: int, unit: str) -> list[tuple[str, int]]:
    """[(image id, region)] picked in order of score descending, ties by (image id, region) ascending.

    unit "regions": the first `budget` candidates. unit "pixels": candidates in that order while the
    pixel total stays <= budget, stopping at the first that does not fit, but at least one when the
    budget is positive, so a budget smaller than every region still labels something. A budget of 0
    picks nothing in both units.
    """
    n = len(image_ids)
    regions = np.asarray(regions)
    scores = np.asarray(scores, dtype=np.float64)
    sizes = np.asarray(sizes)
    if not (regions.shape == scores.shape == sizes.shape == (n,)):
        raise ValueError(f"candidate columns differ in length: ids {n}, regions {regions.shape}, "
                         f"scores {scores.shape}, sizes {sizes.shape}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if unit not in REGION_BUDGET_UNITS:
        raise ValueError(f"unknown budget unit {unit!r}, expected one of {REGION_BUDGET_UNITS}")
    if (sizes < 0).any():
        raise ValueError(f"region sizes must be >= 0, got a minimum of {sizes.min()}")
    if np.isnan(scores).any():
        raise ValueError(f"{int(np.isnan(scores).sum())} candidate scores are NaN")
    if n == 0 or budget == 0:
        return []
    id_rank = np.unique(np.asarray(list(image_ids), dtype=str), return_inverse=True)[1].reshape(-1)
    order = np.lexsort((regions, id_rank, -scores))  # last key is the primary one
    if unit == "regions":
        picked = order[:budget]
    else:
        cumulative = np.cumsum(sizes[order].astype(np.int64))
        picked = order[:max(1, int(np.searchsorted(cumulative, budget, side="right")))]
    return [(str(image_ids[i]), int(regions[i])) for i in picked]


def scored_regions(maps: Iterable[tuple[str, Tensor]], regions: dict[str, Tensor]
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Image id -> (mean pixel score of each of its regions, size of each region), from (id, (H, W) map) pairs."""
    rows = {}
    for u, pixel_map in maps:
        labels = regions[u].to(pixel_map.device, torch.int64)
        n = int(labels.max()) + 1
        rows[u] = (region_means(pixel_map, labels, n).cpu().numpy(), region_sizes(labels, n).cpu().numpy())
    return rows


def random_regions(ids: Iterable[str], regions: dict[str, Tensor], rng: np.random.Generator
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The same rows with a uniform random score per region (Random), drawn image by image in id order."""
    rows = {}
    for u in sorted(ids):
        labels = regions[u].to(torch.int64)
        n = int(labels.max()) + 1
        rows[u] = (rng.random(n), region_sizes(labels, n).numpy())
    return rows


@dataclass
class RegionPick:
    regions: dict[str, list[int]]   # image id -> regions the oracle reveals next
    scores: dict[str, float]        # image id -> highest score among its candidate regions
    exhausted: bool                 # no unrevealed region is left after this pick


def pick_regions(rows: dict[str, tuple[np.ndarray, np.ndarray]], revealed: dict[str, set[int]], budget: int,
                 unit: str) -> RegionPick:
    """The top unrevealed regions of `rows` (image id -> (mean score per region, size per region)) under the
    budget (top_regions)."""
    ids, index, values, sizes = [], [], [], []
    for u in sorted(rows):
        means, counts = rows[u]
        for k in range(len(means)):
            if k not in revealed.get(u, ()):
                ids.append(u)
                index.append(k)
                values.append(means[k])
                sizes.append(counts[k])
    picks = top_regions(ids, np.asarray(index), np.asarray(values), np.asarray(sizes), budget, unit)
    picked: dict[str, list[int]] = {}
    for u, k in picks:
        picked.setdefault(u, []).append(int(k))
    best = {u: float(rows[u][0][[k for k in range(len(rows[u][0])) if k not in revealed.get(u, ())]].max())
            for u in rows if len(rows[u][0]) > len(revealed.get(u, ()))}
    return RegionPick({u: sorted(k) for u, k in sorted(picked.items())}, best, exhausted=len(picks) == len(ids))


def partial_mask(mask: Tensor, labels: Tensor, revealed: Collection[int]) -> Tensor:
    """uint8 mask equal to the (H, W) 0/1 true mask on the revealed regions and IGNORE elsewhere."""
    if mask.numel() and int(mask.max()) > 1:
        raise ValueError(f"true mask must be 0/1, got a maximum of {int(mask.max())}")
    return partial_label(mask, labels, revealed)


def partial_label(label: Tensor, labels: Tensor, revealed: Collection[int]) -> Tensor:
    """uint8 copy of the (H, W) label map (any classes) on the revealed regions and IGNORE elsewhere."""
    if label.shape != labels.shape:
        raise ValueError(f"mask {tuple(label.shape)} and labels {tuple(labels.shape)} differ in shape")
    wanted = torch.as_tensor(sorted(int(r) for r in revealed), dtype=torch.int64, device=label.device)
    keep = torch.isin(labels.to(device=label.device, dtype=torch.int64), wanted)
    ignore = torch.full_like(label, IGNORE, dtype=torch.uint8)
    return torch.where(keep, label.to(torch.uint8), ignore)

"""Label_prop's choice of U'': colour histograms computed once per fold, then kNN pairing per round.

The histograms and the per-class normalisers depend only on the images of the fold's train set
and on the feature settings, so they are cached in one file per (dataset, split, fold, settings)
and shared by every seed and round. Each round only runs the block-wise kNN (al.knn.knn_pairs).
A cache file that cannot be read or does not hold what it should (truncated, overwritten) is
rebuilt, with one line on stderr naming it; one made for other ids is rebuilt silently.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from al.knn import class_normalisers, colour_features, colour_histograms, knn_pairs
from torch_io import load_cache, save_torch


@dataclass(frozen=True)
class FeatureSettings:
    bins: int
    lo: float
    hi: float
    resize_h: int
    smooth: bool
    smooth_ksize: int
    smooth_sigma: float
    enhance_color: bool
    enhance_factor: float

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class HistogramCache:
    ids: list[str]
    labels: Tensor                      # (n,) int64
    hists: Tensor                       # (n, 3, bins) float32
    normalisers: dict[int, Tensor]      # class -> (3,) float64


def load_or_build(folder: Path, ids: Sequence[str], labels: Sequence[int], images: Sequence[Tensor],
                  settings: FeatureSettings, block_size: int, device: torch.device,
                  progress: bool = True) -> HistogramCache:
    """The fold's histograms and normalisers, from the cache when it matches these ids and settings."""
    path = folder / f"histograms-{settings.key()}.pt"
    cached = _read_cache(path, list(ids), settings)
    if cached is not None:
        return cached
    hists = torch.stack([
        colour_histograms(colour_features(image.to(device), settings.resize_h, settings.enhance_color,
                                          settings.enhance_factor, settings.smooth, settings.smooth_ksize,
                                          settings.smooth_sigma),
                          settings.bins, settings.lo, settings.hi).cpu()
        for image in tqdm(images, desc="colour histograms", disable=None if progress else True, leave=False)])
    label_tensor = torch.as_tensor(list(labels), dtype=torch.int64)
    normalisers = class_normalisers(hists, label_tensor, block_size=block_size, device=device)
    save_torch(path, {"ids": list(ids), "labels": label_tensor, "hists": hists,
                      "normalisers": {str(k): v for k, v in normalisers.items()}, "settings": asdict(settings)})
    return HistogramCache(ids=list(ids), labels=label_tensor, hists=hists, normalisers=normalisers)


def _read_cache(path: Path, ids: list[str], settings: FeatureSettings) -> HistogramCache | None:
    """The cached histograms when the file holds a well-formed cache for these ids, else None."""
    payload = load_cache(path, "kNN cache")
    if payload is None:
        return None
    if isinstance(payload, dict) and isinstance(payload.get("ids"), list) and payload["ids"] != ids:
        return None  # made for another train set
    cache = _cache_from_payload(payload, len(ids), settings.bins)
    if cache is None:
        print(f"warning: kNN cache {path} does not hold valid histograms: rebuilding it",
              file=sys.stderr, flush=True)
    return cache


def _cache_from_payload(payload: object, n: int, bins: int) -> HistogramCache | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("ids"), list):
        return None
    labels, hists, normalisers = payload.get("labels"), payload.get("hists"), payload.get("normalisers")
    if not (isinstance(labels, Tensor) and labels.dtype == torch.int64 and tuple(labels.shape) == (n,)
            and isinstance(hists, Tensor) and hists.dtype == torch.float32
            and tuple(hists.shape) == (n, 3, bins) and bool(torch.isfinite(hists).all())
            and isinstance(normalisers, dict)):
        return None
    try:
        by_class = {int(k): v for k, v in normalisers.items()}
    except (TypeError, ValueError):
        return None
    if set(by_class) != set(labels.tolist()) or not all(
            isinstance(z, Tensor) and z.dtype == torch.float64 and tuple(z.shape) == (3,)
            for z in by_class.values()):
        return None
    return HistogramCache(ids=list(payload["ids"]), labels=labels, hists=hists, normalisers=by_class)


def pair_unlabelled(cache: HistogramCache, labelled: set[str], k: int, block_size: int,
                    device: torch.device) -> dict[str, str]:
    """{unlabelled id: labelled id} for the unlabelled samples with a labelled one among their k neighbours."""
    mask = torch.tensor([i in labelled for i in cache.ids], dtype=torch.bool)
    pairs = knn_pairs(cache.hists, cache.labels, mask, k, cache.normalisers, block_size=block_size, device=device)
    return {cache.ids[u]: cache.ids[lab] for u, lab in sorted(pairs.items())}


def merge_pairs(previous: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """All pairs of the round: previous ones kept, the new partner winning on a clash (method-spec 4.4)."""
    return {**previous, **new}

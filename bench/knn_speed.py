"""Item 3: Label_prop's kNN pairing (al.knn) against the plain full-matrix way, time and memory.

Fast path: al.knn.class_normalisers + al.knn.knn_pairs, tiled (block 256), as a round runs them.
Reference: the full n x n x channels Jensen-Shannon tensor in one al.knn.jsd call (what the
original computes), the class normalisers summed from it, and the brute-force walk of every
unlabelled sample's class-mates in (distance, index) order. The reference runs only where its
estimated peak fits in half of the memory available on the device; where it runs, both must give
the same pairs.

Histograms are Dirichlet draws around one random profile per class and channel (10 classes,
3 x 256 bins), 10 % of the samples labelled, k = 40, as on a large dataset.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from al.knn import class_normalisers, jsd, knn_pairs
from bench.measure import measure
from bench.report import Row
from bench.sizes import KNN_BINS, KNN_CHANNELS, KNN_CLASSES, KNN_K, KNN_LABELLED_FRACTION
from engine.runtime import set_deterministic

BLOCK_SIZE = 256
CONCENTRATION = 200.0       # how tightly a class's histograms gather around its profile
EPS = 1e-8                  # as al.knn.colour_histograms adds to every bin
MEMINFO = Path("/proc/meminfo")
_FLOAT32 = 4


def synthetic_histograms(n: int, seed: int = 0, classes: int = KNN_CLASSES,
                         labelled_fraction: float = KNN_LABELLED_FRACTION) -> tuple[torch.Tensor, torch.Tensor,
                                                                                     torch.Tensor]:
    """(hists (n, 3, 256) float32 summing to 1 per channel, labels (n,), labelled (n,) bool)."""
    rng = np.random.default_rng(seed)
    profiles = rng.dirichlet(np.ones(KNN_BINS), size=(classes, KNN_CHANNELS))
    labels = rng.permutation(np.arange(n) % classes)
    draws = rng.gamma(CONCENTRATION * profiles[labels] + EPS).astype(np.float32) + EPS
    hists = torch.from_numpy(draws / draws.sum(axis=-1, keepdims=True))
    labelled = np.zeros(n, dtype=bool)
    labelled[rng.permutation(n)[:max(1, int(labelled_fraction * n))]] = True
    return hists, torch.from_numpy(labels).to(torch.int64), torch.from_numpy(labelled)


def reference_bytes(n: int) -> int:
    """Peak of one jsd call on n x n pairs: two (n, n, C, bins) float32 tensors."""
    return 2 * n * n * KNN_CHANNELS * KNN_BINS * _FLOAT32


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        match = re.search(r"^MemAvailable:\s+(\d+) kB", MEMINFO.read_text(), re.MULTILINE)
    except OSError:
        match = None
    return int(match.group(1)) * 1024 if match else 0


def full_matrix_pairs(hists: torch.Tensor, labels: torch.Tensor, labelled: torch.Tensor, k: int,
                      device: torch.device) -> tuple[dict[int, int], dict[int, torch.Tensor]]:
    """Pairs and class normalisers from the whole distance tensor and the walk of method-spec 4.4."""
    h = hists.to(device)
    full = jsd(h, h)                                     # (n, n, C) in one go
    pairs: dict[int, int] = {}
    normalisers: dict[int, torch.Tensor] = {}
    is_labelled = labelled.numpy()
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        block = full[members.to(device)][:, members.to(device)]
        z = block.sum(dim=(0, 1), dtype=torch.float64).cpu()
        z = torch.where(z > 0, z, torch.ones_like(z))
        normalisers[int(c)] = z
        dist = (block.to(torch.float64) / z.to(device)).sum(dim=-1).cpu().numpy()
        index = members.numpy()
        for row in np.flatnonzero(~is_labelled[index]):
            order = np.lexsort((index, dist[row]))      # by distance, then by sample index
            order = order[order != row]
            first = np.flatnonzero(is_labelled[index[order]])
            if first.size and first[0] < k:
                pairs[int(index[row])] = int(index[order[first[0]]])
    return pairs, normalisers


def fast_pairs(hists: torch.Tensor, labels: torch.Tensor, labelled: torch.Tensor, k: int,
               device: torch.device) -> tuple[dict[int, int], dict[int, torch.Tensor]]:
    normalisers = class_normalisers(hists, labels, block_size=BLOCK_SIZE, device=device)
    return knn_pairs(hists, labels, labelled, k, normalisers, block_size=BLOCK_SIZE, device=device), normalisers


def knn_rows(sizes: tuple[int, ...], device: torch.device, seed: int = 0, k: int = KNN_K) -> list[Row]:
    """One row per n: fast-path seconds, with the reference's seconds and the agreement where it ran."""
    set_deterministic(False)
    fast_pairs(*synthetic_histograms(KNN_CLASSES * 4, seed), k, device)   # warm-up
    rows = []
    for n in sizes:
        hists, labels, labelled = synthetic_histograms(n, seed)
        with measure(device) as measured:
            pairs, z = fast_pairs(hists, labels, labelled, k, device)
        row = Row("knn", f"n={n}", "s", measured.seconds, extra={"n": n, "pairs": len(pairs)},
                  note=f"{KNN_CLASSES} classes, {int(labelled.sum())} labelled, k={k}, block {BLOCK_SIZE}; "
                       f"{len(pairs)} pairs").with_memory(measured)
        need, budget = reference_bytes(n), available_bytes(device) // 2
        if need <= budget:
            with measure(device) as ref:
                ref_pairs, ref_z = full_matrix_pairs(hists, labels, labelled, k, device)
            agree = ref_pairs == pairs
            peak = ref.device_peak_mb if device.type == "cuda" else ref.host_peak_mb
            row.reference, row.reference_value, row.ratio = "full matrix", ref.seconds, ref.seconds / measured.seconds
            row.note += f"; reference {'agrees' if agree else 'DISAGREES'} (peak {_mb(peak)} MB)"
            row.extra.update(agree=agree, reference_peak_mb=peak,
                             normaliser_rel_diff=max(float(((z[c] - ref_z[c]).abs() / ref_z[c]).max()) for c in ref_z))
        else:
            row.note += f"; full matrix not run (needs {need / 2**30:.0f} GiB > {budget / 2**30:.0f} GiB)"
        rows.append(row)
    return rows


def _mb(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"

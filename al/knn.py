"""Colour-histogram similarity and the kNN pairing of unlabelled samples with labelled class-mates
(method-spec 1.4 and 4.4).

An unlabelled sample u is paired with its nearest labelled class-mate l* iff fewer than k unlabelled
class-mates are closer to u than l*, where d(u, v) = sum_c JSD_c(u, v) / Z_c over the colour channels
c and Z_c normalises each channel within the class. Equal distances are ordered by index. Unlike the
original, u is excluded from its own neighbours by index (the original skipped the first neighbour,
which is wrong when an image has a duplicate).

Everything is computed in tiles of at most block_size × block_size pairs of samples of one class,
so the peak memory is about 2 · block_size² · channels · bins elements of the histogram dtype
(256² · 3 · 256 float32 ≈ 400 MB with the default block of 256), whatever the number of samples.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance
from torch import Tensor


def colour_features(
    image: Tensor,
    resize_h: int = 128,
    enhance_color: bool = True,
    enhance_factor: float = 3.0,
    smooth: bool = True,
    smooth_ksize: int = 3,
    smooth_sigma: float = 0.9,
) -> Tensor:
    """The image as the similarity features see it: float (3, resize_h, w') in [0, 1].

    Order as in the original: PIL ImageEnhance.Color (a saturation boost), resize to height resize_h
    keeping the aspect (width int(resize_h / h · w), Pillow's bicubic default), scale to [0, 1], then
    depthwise Gaussian smoothing with reflect padding. Smoothing runs on image's device.
    """
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be a uint8 (3, H, W) tensor, got {image.dtype} {tuple(image.shape)}")
    if resize_h < 1 or enhance_factor < 0.0:
        raise ValueError(f"resize_h={resize_h} must be >= 1 and enhance_factor={enhance_factor} >= 0")
    pil = Image.fromarray(image.permute(1, 2, 0).cpu().numpy())
    if enhance_color:
        pil = ImageEnhance.Color(pil).enhance(enhance_factor)
    w, h = pil.size
    new_w = max(1, int(resize_h / float(h) * w))
    pil = pil.resize((new_w, resize_h), resample=Image.Resampling.BICUBIC)
    features = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).to(image.device)
    features = features.to(torch.float32) / 255.0
    if smooth:
        features = _gaussian_smooth(features.unsqueeze(0), smooth_ksize, smooth_sigma).squeeze(0)
    return features


def _gaussian_smooth(x: Tensor, ksize: int, sigma: float) -> Tensor:
    """Depthwise Gaussian blur of x (B, C, h, w), same size out, reflect padding."""
    if ksize < 1 or ksize % 2 == 0 or sigma <= 0.0:
        raise ValueError(f"smoothing needs an odd kernel size >= 1 and sigma > 0, got {ksize} and {sigma}")
    pad = ksize // 2
    if min(x.shape[-2:]) <= pad:
        raise ValueError(
            f"features of size {tuple(x.shape[-2:])} are too small for reflect padding by {pad}; "
            "use a larger resize_h or a smaller smooth_ksize"
        )
    offsets = torch.arange(ksize, dtype=torch.float32, device=x.device) - (ksize - 1) / 2
    g = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = torch.outer(g, g)
    kernel = (kernel / kernel.sum()).expand(x.shape[1], 1, ksize, ksize)
    return F.conv2d(F.pad(x, [pad] * 4, mode="reflect"), kernel, groups=x.shape[1])


def colour_histograms(
    features: Tensor, bins: int = 256, lo: float = 0.0, hi: float = 1.0, eps: float = 1e-8
) -> Tensor:
    """Per-channel histogram of features (C, h, w) or (B, C, h, w), plus eps, normalised to sum 1.

    The original's SoftHistogram (sigma 1e5) is a difference of two steep sigmoids per bin, i.e.
    hard binning, but it builds a (channels, bins, pixels) tensor. This is its sigma -> infinity
    limit by bincount: bins are [lo + b·delta, lo + (b+1)·delta), a value lying exactly on an edge
    is split half/half between the two bins (so exactly lo and hi count half, as in the original),
    values outside [lo, hi] are ignored. The soft version differs only for values within ~1/sigma
    of an edge. Returns float32 of shape (C, bins) or (B, C, bins).
    """
    if features.ndim not in (3, 4):
        raise ValueError(f"features must be (C, h, w) or (B, C, h, w), got shape {tuple(features.shape)}")
    if bins < 1 or not hi > lo or eps < 0.0:
        raise ValueError(f"histogram needs bins >= 1, hi > lo and eps >= 0, got {bins}, [{lo}, {hi}], {eps}")
    rows = features.reshape(-1, features.shape[-2] * features.shape[-1]).to(torch.float64)
    t = (rows - lo) * (bins / (hi - lo))
    inside = (t >= 0) & (t <= bins)
    left = torch.floor(t)
    on_edge = inside & (t == left)
    # Shift by one so that bin -1 (the outer half of lo) and bin `bins` (of hi) are real columns.
    index = torch.where(inside, left, torch.full_like(left, -1.0)).to(torch.int64) + 1
    weight = torch.where(on_edge, 0.5, 1.0).to(torch.float32) * inside
    counts = torch.zeros(rows.shape[0], bins + 2, dtype=torch.float32, device=features.device)
    counts.scatter_add_(1, index, weight)
    counts.scatter_add_(1, (index - 1).clamp_min(0), weight * on_edge)
    hist = counts[:, 1 : bins + 1] + eps
    hist = hist / hist.sum(dim=1, keepdim=True)
    return hist.reshape(*features.shape[:-2], bins)


def jsd(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence per channel, natural log, clamped to [0, 1].

    p (n, C, bins) and q (m, C, bins) give (n, m, C). Summed per bin as
    p log(2p/(p+q)) + q log(2q/(p+q)), halved: identical inputs give exactly 0 (the ratio is exactly
    1), swapping p and q gives exactly the transpose, and close histograms keep their small
    divergence without the cancellation of the entropy form. Allocates two (n, m, C, bins) tensors:
    callers tile. Bins empty in both inputs contribute 0.
    """
    if p.ndim != 3 or q.ndim != 3 or p.shape[1:] != q.shape[1:]:
        raise ValueError(
            "histograms must be (n, C, bins) with matching C and bins, "
            f"got {tuple(p.shape)} and {tuple(q.shape)}"
        )
    # Empty bins become the smallest normal number: their terms vanish instead of giving 0·log 0.
    tiny = torch.finfo(p.dtype).tiny
    p, q = p.clamp_min(tiny).unsqueeze(1), q.clamp_min(tiny).unsqueeze(0)
    total = p + q
    p_term = torch.div(2.0 * p, total).log_().mul_(p)
    torch.div(2.0 * q, total, out=total).log_().mul_(q)
    return (0.5 * p_term.add_(total).sum(dim=-1)).clamp_(0.0, 1.0)


def class_normalisers(
    hists: Tensor, labels: Tensor, block_size: int = 256, device: torch.device | None = None
) -> dict[int, Tensor]:
    """Z[class] (C,) float64 = sum over ordered pairs (i, j) of the class of JSD_c(i, j).

    A channel whose Z is 0 (a single-image class, or all images identical) gets Z = 1: all its JSD
    terms are 0, so any positive value leaves the distances unchanged and avoids 0/0.
    Cost: about n_c²/2 JSDs per class (an off-diagonal tile is computed once and counted twice);
    memory as in the module doc.
    """
    hists, labels = _check_hists_labels(hists, labels)
    _check_block(block_size)
    device = torch.device("cpu") if device is None else torch.device(device)
    result: dict[int, Tensor] = {}
    for c in torch.unique(labels).tolist():
        h = hists[torch.nonzero(labels == c).flatten().to(hists.device)].to(device)
        z = torch.zeros(h.shape[1], dtype=torch.float64, device=device)
        for i in range(0, h.shape[0], block_size):
            for j in range(i, h.shape[0], block_size):
                tile = jsd(h[i : i + block_size], h[j : j + block_size]).sum(dim=(0, 1), dtype=torch.float64)
                z += tile if i == j else 2.0 * tile
        z = z.cpu()
        result[int(c)] = torch.where(z > 0, z, torch.ones_like(z))
    return result


def knn_pairs(
    hists: Tensor,
    labels: Tensor,
    labelled: Tensor,
    k: int,
    normalisers: dict[int, Tensor],
    block_size: int = 256,
    device: torch.device | None = None,
) -> dict[int, int]:
    """Pair each unlabelled sample with a labelled class-mate: {index of u: index of l*}.

    Walking u's class-mates (u itself excluded by index) by ascending (distance, index), u is paired
    with the first labelled one unless k unlabelled ones come before it. Implemented without the
    n×n matrix: per block of unlabelled rows of a class, one sweep over the labelled class-mates keeps
    the running nearest (distance, index), then one sweep over the unlabelled class-mates counts
    those ordered before it. The second sweep is skipped when the class has at most k unlabelled
    samples (nobody can then be blocked, the paper's setting). Cost per class: |U_c| · n_c JSDs (or
    |U_c| · |L_c| when the count is skipped); memory as in the module doc. A class without a labelled
    sample pairs nothing; k larger than a class pairs every unlabelled sample of a class with a label.
    """
    hists, labels = _check_hists_labels(hists, labels)
    _check_block(block_size)
    labelled = torch.as_tensor(labelled).cpu()
    if labelled.dtype != torch.bool or labelled.shape != labels.shape:
        raise ValueError(
            f"labelled must be a bool tensor of shape {tuple(labels.shape)}, "
            f"got {labelled.dtype} {tuple(labelled.shape)}"
        )
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    device = torch.device("cpu") if device is None else torch.device(device)
    pairs: dict[int, int] = {}
    for c in torch.unique(labels).tolist():
        in_class = labels == c
        lab_idx = torch.nonzero(in_class & labelled).flatten()
        unl_idx = torch.nonzero(in_class & ~labelled).flatten()
        if lab_idx.numel() == 0 or unl_idx.numel() == 0:
            continue
        if int(c) not in normalisers:
            raise ValueError(
                f"no normaliser for class {c}; compute them with class_normalisers on the same samples"
            )
        z = normalisers[int(c)].to(device=device, dtype=torch.float64)
        if z.shape != (hists.shape[1],):
            raise ValueError(
                f"normaliser of class {c} has shape {tuple(z.shape)}; expected ({hists.shape[1]},)"
            )
        lab_h = hists[lab_idx.to(hists.device)].to(device)
        unl_h = hists[unl_idx.to(hists.device)].to(device)
        lab_dev, unl_dev = lab_idx.to(device), unl_idx.to(device)
        count_needed = unl_idx.numel() - 1 >= k
        for r in range(0, unl_idx.numel(), block_size):
            rows, row_idx = unl_h[r : r + block_size], unl_dev[r : r + block_size]
            best_d, best_i = _nearest_labelled(rows, lab_h, lab_dev, z, block_size)
            keep = torch.ones_like(best_i, dtype=torch.bool)
            if count_needed:
                keep = _count_closer(rows, row_idx, unl_h, unl_dev, z, best_d, best_i, block_size) < k
            for u, lab in zip(unl_idx[r : r + block_size][keep.cpu()].tolist(), best_i[keep].cpu().tolist()):
                pairs[u] = lab
    return pairs


def _distances(rows: Tensor, cols: Tensor, z: Tensor) -> Tensor:
    """d = sum_c JSD_c / Z_c for a tile, float64 (rows, cols)."""
    return (jsd(rows, cols).to(torch.float64) / z).sum(dim=-1)


def _nearest_labelled(
    rows: Tensor, lab_h: Tensor, lab_idx: Tensor, z: Tensor, block_size: int
) -> tuple[Tensor, Tensor]:
    """Per row, the smallest (distance, index) over the labelled class-mates (sorted by index)."""
    best_d = torch.full((rows.shape[0],), math.inf, dtype=torch.float64, device=rows.device)
    best_i = torch.full((rows.shape[0],), -1, dtype=torch.int64, device=rows.device)
    for j in range(0, lab_h.shape[0], block_size):
        d_min, arg = _distances(rows, lab_h[j : j + block_size], z).min(dim=1)
        # Columns ascend in index across tiles, so a later tile wins only if strictly closer.
        better = d_min < best_d
        best_d = torch.where(better, d_min, best_d)
        best_i = torch.where(better, lab_idx[j : j + block_size][arg], best_i)
    return best_d, best_i


def _count_closer(
    rows: Tensor,
    row_idx: Tensor,
    unl_h: Tensor,
    unl_idx: Tensor,
    z: Tensor,
    best_d: Tensor,
    best_i: Tensor,
    block_size: int,
) -> Tensor:
    """Per row, how many unlabelled class-mates other than itself come before (best_d, best_i)."""
    closer = torch.zeros(rows.shape[0], dtype=torch.int64, device=rows.device)
    for j in range(0, unl_h.shape[0], block_size):
        d = _distances(rows, unl_h[j : j + block_size], z)
        cols = unl_idx[j : j + block_size].unsqueeze(0)
        before = (d < best_d.unsqueeze(1)) | ((d == best_d.unsqueeze(1)) & (cols < best_i.unsqueeze(1)))
        before &= cols != row_idx.unsqueeze(1)
        closer += before.sum(dim=1)
    return closer


def _check_hists_labels(hists: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    labels = torch.as_tensor(labels).cpu()
    if hists.ndim != 3:
        raise ValueError(f"histograms must be (n, C, bins), got shape {tuple(hists.shape)}")
    if labels.shape != (hists.shape[0],) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be an integer tensor of shape ({hists.shape[0]},), "
            f"got {labels.dtype} {tuple(labels.shape)}"
        )
    if not bool(torch.isfinite(hists).all()):
        raise ValueError("histograms hold NaN or infinite values; recompute them from valid images")
    return hists, labels


def _check_block(block_size: int) -> None:
    if block_size < 1:
        raise ValueError(f"block_size={block_size} must be >= 1")

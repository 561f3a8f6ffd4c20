"""Dense-CRF post-processing of a foreground probability map (fully connected CRF, Krähenbühl & Koltun).

A network's foreground map is smooth and ignores colour edges; a dense CRF with a Gaussian (smoothness)
and a bilateral (appearance) pairwise term snaps the map to the image's edges and removes isolated specks.
The library (pydensecrf2, imported as `pydensecrf`) is a compiled extension, so it is imported lazily:
this module loads without it and `require_crf` reports its absence with one actionable line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data.views import restore_logits
from engine.resident import EvalBatch

CRF_MISSING = (
    "dense CRF post-processing (crf: true) needs the pydensecrf2 package: run bash dependencies/setup.sh "
    "(it builds pydensecrf2 with the C++ compiler), or set --crf false"
)
PROB_EPS = 1e-5  # floor of each class probability, so the unary -log P stays finite
GAUSSIAN_COMPAT = 3
BILATERAL_COMPAT = 10


@dataclass(frozen=True)
class CrfParams:
    """Mean-field iterations and kernel widths: sxy in pixels, srgb in 0..255 colour units."""

    n_iter: int
    sxy_gaussian: tuple[float, float]
    sxy_bilateral: tuple[float, float]
    srgb_bilateral: tuple[float, float, float]


# From the method's reference code: per-dataset widths (GlaS images are small-scale tissue, CUB birds).
CRF_PRESETS: dict[str, CrfParams] = {
    "glas": CrfParams(n_iter=2, sxy_gaussian=(3, 3), sxy_bilateral=(13, 13), srgb_bilateral=(3, 3, 3)),
    "cub": CrfParams(n_iter=5, sxy_gaussian=(5, 5), sxy_bilateral=(19, 19), srgb_bilateral=(11, 11, 11)),
    "default": CrfParams(n_iter=5, sxy_gaussian=(3, 3), sxy_bilateral=(80, 80), srgb_bilateral=(13, 13, 13)),
}


class CrfUnavailable(RuntimeError):
    """The compiled pydensecrf2 library cannot be imported."""


def require_crf() -> None:
    """Fail early (before any training) with one actionable line when the CRF library is missing."""
    try:
        import pydensecrf.densecrf  # noqa: F401
    except ImportError:
        raise CrfUnavailable(CRF_MISSING) from None


def _check_inputs(image: np.ndarray, foreground: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate up front: the C++ side fails with opaque messages or reads wrong memory on bad input."""
    image = np.asarray(image)
    foreground = np.asarray(foreground)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"crf: image must be uint8 HxWx3, got {image.dtype} of shape {image.shape}")
    if foreground.ndim != 2 or foreground.shape != image.shape[:2]:
        raise ValueError(f"crf: foreground map must be HxW = {image.shape[:2]}, got shape {foreground.shape}")
    if not np.issubdtype(foreground.dtype, np.floating):
        raise ValueError(f"crf: foreground map must hold float probabilities, got {foreground.dtype}")
    if not np.isfinite(foreground).all():
        raise ValueError("crf: foreground map holds NaN or infinite values")
    if foreground.min() < -1e-6 or foreground.max() > 1 + 1e-6:
        raise ValueError(f"crf: foreground map must lie in [0, 1], got [{foreground.min()}, {foreground.max()}]")
    return np.ascontiguousarray(image), np.clip(foreground.astype(np.float64), 0.0, 1.0)


def class_probabilities(foreground: np.ndarray) -> np.ndarray:
    """(2, H*W) float32 C-contiguous [background, foreground], each >= PROB_EPS and summing to 1."""
    m = foreground.reshape(-1).astype(np.float64)
    prob = np.clip(np.stack([1.0 - m, m]), PROB_EPS, 1.0)
    prob /= prob.sum(axis=0, keepdims=True)
    return np.ascontiguousarray(prob, dtype=np.float32)


def refine_foreground(image: np.ndarray, foreground: np.ndarray, params: CrfParams) -> np.ndarray:
    """Mean-field inference of the dense CRF; returns the refined foreground probability, float32 HxW.

    image: uint8 HxWx3 RGB; foreground: float HxW probabilities in [0, 1] at the image's resolution.
    """
    image, fg = _check_inputs(image, foreground)
    require_crf()
    import pydensecrf.densecrf as dcrf

    h, w = fg.shape
    unary = -np.log(class_probabilities(fg))
    crf = dcrf.DenseCRF2D(w, h, 2)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(
        sxy=params.sxy_gaussian, compat=GAUSSIAN_COMPAT, kernel=dcrf.DIAG_KERNEL, normalization=dcrf.NORMALIZE_SYMMETRIC
    )
    crf.addPairwiseBilateral(
        sxy=params.sxy_bilateral,
        srgb=params.srgb_bilateral,
        rgbim=image,
        compat=BILATERAL_COMPAT,
        kernel=dcrf.DIAG_KERNEL,
        normalization=dcrf.NORMALIZE_SYMMETRIC,
    )
    q = np.array(crf.inference(params.n_iter), dtype=np.float32).reshape(2, h, w)
    return np.ascontiguousarray(q[1])


def original_images(batch: EvalBatch) -> np.ndarray:
    """(B, H, W, 3) uint8 images at original resolution, from the evaluation views."""
    restored = restore_logits(batch.images.float(), batch.geometry).round().clamp(0, 255).to(torch.uint8)
    return restored.permute(0, 2, 3, 1).cpu().numpy()


def refine_batch(batch: EvalBatch, foreground: torch.Tensor, params: CrfParams) -> torch.Tensor:
    """(B, 1, H, W) foreground probabilities at original resolution refined image by image (on the CPU),
    returned on their device."""
    images = original_images(batch)
    maps = foreground[:, 0].float().cpu().numpy()
    out = np.stack([refine_foreground(images[i], maps[i], params) for i in range(len(maps))])
    return torch.from_numpy(out).to(foreground.device).unsqueeze(1)

"""Geometry prepared once per image (method-spec 1.4), with Pillow, instead of every epoch.

The original, every epoch: upscale the small side to `up_scale_small_dim_to`, pad by
`padding_ratio`, crop `crop_size`, resize the crop by `ratio_scale_patch`. Here the whole
padded view is scaled by `ratio_scale_patch` ONCE, and training takes random crops of
`train_crop = int(crop_size * ratio_scale_patch)` from it on the device. A crop of the scaled
view equals a scaled crop of the unscaled view up to interpolation at the crop border, and the
random crop positions cover the same area, so this is the same augmentation for far less work.

Masks are always resized with NEAREST, so they stay exactly binary (the original resized them
with LANCZOS and thresholded later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from constants import PADDING_MODES, SCALE_ALGOS
from data.records import DataError

_NUMPY_PAD_MODES = {"reflect": "reflect", "constant": "constant", "replicate": "edge"}


@dataclass(frozen=True)
class Geometry:
    crop_size: int
    up_scale_small_dim_to: int | None
    ratio_scale_patch: float
    padding_ratio: float
    pad_eval: bool
    padding_mode: str  # reflect | constant | replicate
    scale_algo: str  # LANCZOS | BICUBIC | BILINEAR | NEAREST

    def __post_init__(self) -> None:
        if self.padding_mode not in PADDING_MODES:
            raise DataError(f"padding_mode '{self.padding_mode}' is not one of {PADDING_MODES}")
        if self.scale_algo not in SCALE_ALGOS:
            raise DataError(f"scale_algo '{self.scale_algo}' is not one of {SCALE_ALGOS}")
        if self.up_scale_small_dim_to is not None and self.up_scale_small_dim_to < 1:
            raise DataError(f"up_scale_small_dim_to must be >= 1 or None (got {self.up_scale_small_dim_to})")
        if not 0.0 <= self.padding_ratio < 0.5:
            raise DataError(f"padding_ratio must lie in [0, 0.5) (got {self.padding_ratio})")
        if self.ratio_scale_patch <= 0 or self.train_crop < 1:
            raise DataError(
                f"crop_size {self.crop_size} x ratio_scale_patch {self.ratio_scale_patch} "
                "must give a crop of at least 1 pixel"
            )

    @property
    def train_crop(self) -> int:
        """Side of the training crops taken from the scaled view."""
        return int(self.crop_size * self.ratio_scale_patch)


@dataclass(frozen=True)
class EvalGeometry:
    """What `restore_logits` needs to map a prediction on the eval view back to the image."""

    original_hw: tuple[int, int]
    padded_hw: tuple[int, int]  # after upscaling and padding, before the ratio scaling
    pad_hw: tuple[int, int]  # rows added on top (and bottom), columns on the left (and right)
    view_hw: tuple[int, int]


def train_view(
    image: torch.Tensor, mask: torch.Tensor | None, geom: Geometry
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (3, h, w) uint8 view that training crops come from, and its (h, w) 0/1 mask."""
    pil_image = _to_pil(image)
    pil_mask = None
    if mask is not None:
        if tuple(mask.shape) != tuple(image.shape[-2:]):
            raise DataError(f"mask {tuple(mask.shape)} and image {tuple(image.shape[-2:])} differ in size")
        pil_mask = Image.fromarray(mask.detach().cpu().numpy().astype(np.uint8))
    pil_image, pil_mask = _upscale(pil_image, pil_mask, geom)
    pads = _pads(pil_image.height, pil_image.width, geom.padding_ratio)
    pil_image = _pad(pil_image, pads, geom.padding_mode)
    pil_mask = _pad(pil_mask, pads, geom.padding_mode) if pil_mask is not None else None
    pil_image, pil_mask = _scale(pil_image, pil_mask, geom)
    if min(pil_image.height, pil_image.width) < geom.train_crop:
        raise DataError(
            f"a {pil_image.width}x{pil_image.height} training view is smaller than the "
            f"{geom.train_crop}-pixel crop: raise up_scale_small_dim_to or lower crop_size"
        )
    view_mask = None if pil_mask is None else torch.from_numpy(np.array(pil_mask, dtype=np.uint8))
    return _to_tensor(pil_image), view_mask


def eval_view(image: torch.Tensor, geom: Geometry) -> tuple[torch.Tensor, EvalGeometry]:
    """The whole image as the network sees it at evaluation (upscale, pad if pad_eval, scale)."""
    original_hw = (int(image.shape[-2]), int(image.shape[-1]))
    pil_image, _ = _upscale(_to_pil(image), None, geom)
    pads = _pads(pil_image.height, pil_image.width, geom.padding_ratio) if geom.pad_eval else (0, 0)
    pil_image = _pad(pil_image, pads, geom.padding_mode)
    padded_hw = (pil_image.height, pil_image.width)
    pil_image, _ = _scale(pil_image, None, geom)
    return _to_tensor(pil_image), EvalGeometry(
        original_hw=original_hw,
        padded_hw=padded_hw,
        pad_hw=pads,
        view_hw=(pil_image.height, pil_image.width),
    )


def restore_logits(logits: torch.Tensor, eg: EvalGeometry) -> torch.Tensor:
    """(B, C, h, w) logits on the eval view -> (B, C, H, W) on the original image.

    Bilinear (align_corners=False) to the padded size, crop each axis's own padding (the
    original used the height ratio for the width too), bilinear to the original size.
    """
    if logits.dim() != 4:
        raise ValueError(f"restore_logits expects (B, C, h, w) logits, got shape {tuple(logits.shape)}")
    restored = _resize(logits, eg.padded_hw)
    (pad_h, pad_w), (padded_h, padded_w) = eg.pad_hw, eg.padded_hw
    restored = restored[..., pad_h:padded_h - pad_h, pad_w:padded_w - pad_w]
    return _resize(restored, eg.original_hw)


def _resize(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)


def _to_pil(image: torch.Tensor) -> Image.Image:
    if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a uint8 (3, H, W) image, got {image.dtype} {tuple(image.shape)}")
    return Image.fromarray(image.detach().cpu().permute(1, 2, 0).numpy())


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def _upscale(
    image: Image.Image, mask: Image.Image | None, geom: Geometry
) -> tuple[Image.Image, Image.Image | None]:
    """Bring the small side up to `up_scale_small_dim_to` (never down)."""
    target = geom.up_scale_small_dim_to
    small = min(image.width, image.height)
    if target is None or small >= target:
        return image, mask
    return _resized(image, mask, target / small, geom)


def _scale(
    image: Image.Image, mask: Image.Image | None, geom: Geometry
) -> tuple[Image.Image, Image.Image | None]:
    if geom.ratio_scale_patch == 1.0:
        return image, mask
    return _resized(image, mask, geom.ratio_scale_patch, geom)


def _resized(
    image: Image.Image, mask: Image.Image | None, ratio: float, geom: Geometry
) -> tuple[Image.Image, Image.Image | None]:
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    resized = image.resize(size, resample=Image.Resampling[geom.scale_algo])
    return resized, mask.resize(size, resample=Image.Resampling.NEAREST) if mask is not None else None


def _pads(height: int, width: int, ratio: float) -> tuple[int, int]:
    return int(ratio * height), int(ratio * width)


def _pad(image: Image.Image, pads: tuple[int, int], mode: str) -> Image.Image:
    pad_h, pad_w = pads
    if pad_h == 0 and pad_w == 0:
        return image
    array = np.asarray(image)
    widths = ((pad_h, pad_h), (pad_w, pad_w)) + ((0, 0),) * (array.ndim - 2)
    return Image.fromarray(np.pad(array, widths, mode=_NUMPY_PAD_MODES[mode]))

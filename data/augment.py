"""Training augmentation on the device that holds the views: random crop and flips, then scaling.

The random numbers are drawn on the CPU from the caller's generator, so a run is reproducible
whatever the device. Image and mask get the same crop and the same flips (the original flipped
the image only, which turned augmentation into label noise).
"""

from __future__ import annotations

import torch

from data.records import DataError


def random_crop_flip(
    images: list[torch.Tensor],
    masks: list[torch.Tensor | None],
    crop: int,
    hflip: bool,
    vflip: bool,
    generator: torch.Generator,
    draws: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, crop, crop) uint8 crops and their (B, 1, crop, crop) uint8 masks.

    A sample without a mask (None) gets an all-zero mask; the caller knows from its tag that the
    mask carries no supervision. `draws`: (B, 4) uniform numbers in [0, 1) (top, left, hflip, vflip)
    drawn by the caller; None draws them from `generator`.
    """
    if not images or len(images) != len(masks):
        raise ValueError(f"expected as many masks as images (got {len(images)} and {len(masks)})")
    count = len(images)
    device = images[0].device
    if draws is None:
        draws = torch.rand((count, 4), generator=generator)
    elif tuple(draws.shape) != (count, 4):
        raise ValueError(f"expected (batch, 4) draws for {count} images, got {tuple(draws.shape)}")
    crops = torch.empty((count, 3, crop, crop), dtype=torch.uint8, device=device)
    crop_masks = torch.zeros((count, 1, crop, crop), dtype=torch.uint8, device=device)
    for index, (image, mask) in enumerate(zip(images, masks)):
        height, width = int(image.shape[-2]), int(image.shape[-1])
        if height < crop or width < crop:
            raise DataError(
                f"a {width}x{height} view is smaller than the {crop}-pixel crop: prepare the "
                "views with train_view and the same Geometry"
            )
        top = min(int(draws[index, 0] * (height - crop + 1)), height - crop)
        left = min(int(draws[index, 1] * (width - crop + 1)), width - crop)
        crops[index] = image[:, top:top + crop, left:left + crop]
        if mask is not None:
            if tuple(mask.shape) != (height, width):
                raise DataError(f"mask {tuple(mask.shape)} and view {(height, width)} differ in size")
            crop_masks[index, 0] = mask[top:top + crop, left:left + crop]
    for flip, column, dim in ((hflip, 2, -1), (vflip, 3, -2)):
        if flip:
            chosen = (draws[:, column] < 0.5).to(device).view(count, 1, 1, 1)
            crops = torch.where(chosen, crops.flip(dim), crops)
            crop_masks = torch.where(chosen, crop_masks.flip(dim), crop_masks)
    return crops, crop_masks


def normalise(images_uint8: torch.Tensor) -> torch.Tensor:
    """(x / 255 - 0.5) / 0.5 per channel, as the original (not ImageNet statistics)."""
    if images_uint8.dtype != torch.uint8:
        raise ValueError(f"normalise expects uint8 images, got {images_uint8.dtype}")
    return images_uint8.float().div_(127.5).sub_(1.0)

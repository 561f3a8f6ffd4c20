"""Geometry prepared once (train/eval views, restoring logits) and device-side augmentation."""

from __future__ import annotations

import pytest
import torch

from data.augment import normalise, random_crop_flip
from data.records import DataError
from data.views import EvalGeometry, Geometry, eval_view, restore_logits, train_view


def _geometry(**changes) -> Geometry:
    values = {"crop_size": 40, "up_scale_small_dim_to": 64, "ratio_scale_patch": 0.9,
              "padding_ratio": 0.1, "pad_eval": True, "padding_mode": "reflect",
              "scale_algo": "LANCZOS"}
    values.update(changes)
    return Geometry(**values)


def _mask_and_image(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A blocky mask, and an image whose every channel is that mask (0/255)."""
    mask = torch.zeros((height, width), dtype=torch.uint8)
    mask[height // 5: height // 2, width // 7: width // 2] = 1
    mask[:, (3 * width) // 4:] = 1  # a vertical edge: a horizontal shift shows
    return mask, (mask * 255).expand(3, height, width).contiguous()


def test_paper_geometry_train_crop() -> None:
    geom = Geometry(416, 432, 0.9, 0.01, True, "reflect", "LANCZOS")
    assert geom.train_crop == 374
    with pytest.raises(DataError):
        _geometry(padding_mode="wrap")
    with pytest.raises(DataError):
        _geometry(scale_algo="HAMMING")


def test_train_view_sizes_and_mask_alignment() -> None:
    mask, image = _mask_and_image(50, 80)
    view, view_mask = train_view(image, mask, _geometry())
    # Upscale 64/50 -> 64x102, pad (6, 10) -> 76x122, scale 0.9 -> 68x110.
    assert view.shape == (3, 68, 110) and view.dtype == torch.uint8
    assert view_mask.shape == (68, 110) and set(view_mask.unique().tolist()) == {0, 1}
    disagree = ((view[0] > 127).to(torch.uint8) != view_mask).float().mean()
    assert disagree < 0.03
    assert train_view(image, None, _geometry())[1] is None


@pytest.mark.parametrize("mode, source_row", [("reflect", 2), ("replicate", 0), ("constant", None)])
def test_padding_modes(mode: str, source_row: int | None) -> None:
    image = torch.arange(20 * 30 * 3).remainder(251).add(1).to(torch.uint8).view(3, 20, 30)
    geom = _geometry(up_scale_small_dim_to=None, ratio_scale_patch=1.0, padding_ratio=0.1,
                     padding_mode=mode, crop_size=10)
    view, _ = train_view(image, None, geom)
    assert view.shape == (3, 24, 36)  # pads 2 rows, 3 columns per side
    assert torch.equal(view[:, 2:22, 3:33], image)
    expected = torch.zeros_like(image[:, 0]) if source_row is None else image[:, source_row]
    assert torch.equal(view[:, 0, 3:33], expected)


def test_train_view_smaller_than_the_crop_is_an_error() -> None:
    _, image = _mask_and_image(30, 30)
    with pytest.raises(DataError) as excinfo:
        train_view(image, None, _geometry(up_scale_small_dim_to=None, crop_size=60))
    assert "54-pixel crop" in str(excinfo.value)


def _restored_mask(mask: torch.Tensor, image: torch.Tensor, geom: Geometry) -> torch.Tensor:
    view, eg = eval_view(image, geom)
    logits = (view[:1].float() / 255 - 0.5).mul(20).unsqueeze(0)  # (1, 1, h, w): mask as logits
    restored = restore_logits(logits, eg)
    assert restored.shape == (1, 1, *mask.shape)
    return (restored[0, 0] > 0).to(torch.uint8)


def test_restore_logits_inverts_the_eval_view_with_unequal_pads() -> None:
    mask, image = _mask_and_image(40, 120)
    geom = _geometry(crop_size=30, up_scale_small_dim_to=60, padding_ratio=0.1,
                     ratio_scale_patch=0.75)
    view, eg = eval_view(image, geom)
    # Upscale 1.5 -> 60x180; pads 6 rows / 18 columns -> 72x216; scale 0.75 -> 54x162.
    assert eg == EvalGeometry(original_hw=(40, 120), padded_hw=(72, 216), pad_hw=(6, 18),
                              view_hw=(54, 162))
    assert view.shape == (3, 54, 162)
    back = _restored_mask(mask, image, geom)
    assert (back != mask).float().mean() < 0.01

    # The original cropped the width with the height's pad: that misplaces the vertical edge.
    logits = (view[:1].float() / 255 - 0.5).mul(20).unsqueeze(0)
    padded = torch.nn.functional.interpolate(logits, size=eg.padded_hw, mode="bilinear",
                                             align_corners=False)
    wrong = padded[..., 6:72 - 6, 6:216 - 6]
    wrong = torch.nn.functional.interpolate(wrong, size=(40, 120), mode="bilinear",
                                            align_corners=False)
    assert ((wrong[0, 0] > 0).to(torch.uint8) != mask).float().mean() > 0.03


def test_restore_logits_without_eval_padding_and_many_channels() -> None:
    mask, image = _mask_and_image(45, 33)
    geom = _geometry(pad_eval=False, up_scale_small_dim_to=None)
    _, eg = eval_view(image, geom)
    assert eg.pad_hw == (0, 0) and eg.padded_hw == (45, 33)
    logits = torch.randn(2, 5, *eg.view_hw)
    assert restore_logits(logits, eg).shape == (2, 5, 45, 33)
    assert (_restored_mask(mask, image, geom) != mask).float().mean() < 0.02
    with pytest.raises(ValueError):
        restore_logits(torch.randn(5, *eg.view_hw), eg)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_restore_logits_on_cuda() -> None:
    _, image = _mask_and_image(40, 120)
    view, eg = eval_view(image, _geometry())
    logits = (view[:1].float() / 255 - 0.5).mul(20).unsqueeze(0)
    on_gpu = restore_logits(logits.cuda(), eg)
    assert on_gpu.is_cuda
    assert torch.allclose(on_gpu.cpu(), restore_logits(logits, eg), atol=1e-4)


def _coded_views(sizes: list[tuple[int, int]], seed: int) -> tuple[list, list]:
    """Views whose channel 0 is the mask, channel 1 the column and channel 2 the row index."""
    generator = torch.Generator().manual_seed(seed)
    images, masks = [], []
    for height, width in sizes:
        mask = (torch.rand((height // 4, width // 4), generator=generator) > 0.5).to(torch.uint8)
        mask = mask.repeat_interleave(4, 0).repeat_interleave(4, 1)
        rows = torch.arange(height).view(-1, 1).expand(height, width)
        cols = torch.arange(width).view(1, -1).expand(height, width)
        images.append(torch.stack([mask * 255, cols.to(torch.uint8), rows.to(torch.uint8)]))
        masks.append(mask)
    return images, masks


def _crop_flip(images, masks, seed: int, hflip: bool = True, vflip: bool = True):
    return random_crop_flip(images, masks, 24, hflip, vflip, torch.Generator().manual_seed(seed))


def test_crop_and_flips_keep_image_and_mask_aligned() -> None:
    images, masks = _coded_views([(40, 56), (32, 32), (48, 36)] * 6, seed=0)
    crops, crop_masks = _crop_flip(images, masks, seed=1)
    assert crops.shape == (18, 3, 24, 24) and crops.dtype == torch.uint8
    assert crop_masks.shape == (18, 1, 24, 24) and crop_masks.dtype == torch.uint8
    assert torch.equal((crops[:, 0] > 127).to(torch.uint8), crop_masks[:, 0])
    # Every crop is a real window, read forwards or backwards along each axis.
    col_steps = (crops[:, 1, :, 1:].long() - crops[:, 1, :, :-1].long()).flatten(1)
    row_steps = (crops[:, 2, 1:, :].long() - crops[:, 2, :-1, :].long()).flatten(1)
    for steps in (col_steps, row_steps):
        assert ((steps == 1).all(dim=1) | (steps == -1).all(dim=1)).all()
        flipped = (steps == -1).all(dim=1)
        assert 0 < int(flipped.sum()) < 18  # both outcomes happen


def test_no_flips_when_disabled_and_same_seed_same_batch() -> None:
    images, masks = _coded_views([(40, 56)] * 8, seed=0)
    crops, _ = _crop_flip(images, masks, seed=2, hflip=False, vflip=False)
    assert (crops[:, 1, :, 1:].long() - crops[:, 1, :, :-1].long() == 1).all()
    assert (crops[:, 2, 1:, :].long() - crops[:, 2, :-1, :].long() == 1).all()
    first = _crop_flip(images, masks, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first, _crop_flip(images, masks, seed=3)))
    assert not torch.equal(first[0], _crop_flip(images, masks, seed=4)[0])


def test_missing_masks_become_zeros_and_small_views_fail() -> None:
    images, masks = _coded_views([(32, 32), (32, 32)], seed=0)
    _, crop_masks = _crop_flip(images, [masks[0], None], seed=0)
    assert crop_masks[1].sum() == 0 and crop_masks[0].sum() > 0
    with pytest.raises(DataError):
        random_crop_flip([images[0][:, :20]], [None], 24, True, True, torch.Generator())


def test_normalise() -> None:
    values = torch.tensor([0, 51, 255], dtype=torch.uint8)
    expected = (values.float() / 255 - 0.5) / 0.5
    out = normalise(values)
    assert out.dtype == torch.float32
    assert torch.allclose(out, expected) and out[0] == -1 and out[-1] == 1
    with pytest.raises(ValueError):
        normalise(values.float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_crops_on_cuda_as_on_cpu() -> None:
    images, masks = _coded_views([(40, 56), (32, 32)], seed=0)
    cpu = _crop_flip(images, masks, seed=5)
    gpu = _crop_flip([i.cuda() for i in images], [m.cuda() for m in masks], seed=5)
    assert gpu[0].is_cuda and gpu[1].is_cuda
    assert torch.equal(cpu[0], gpu[0].cpu()) and torch.equal(cpu[1], gpu[1].cpu())

"""Superpixels, region scores, region picking under a budget, partial masks and the superpixel cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import al.regions as regions_module
from al.regions import load_or_build, partial_mask, region_means, region_sizes, superpixels, top_regions
from constants import IGNORE

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _blocks_image(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 40x48 image of 4x4 coloured blocks with mild noise, and the block index of every pixel."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (4, 4, 3))
    image = np.repeat(np.repeat(colours, 10, axis=0), 12, axis=1)
    image = np.clip(image + rng.integers(-5, 6, image.shape), 0, 255).astype(np.uint8)
    blocks = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 10, axis=0), 12, axis=1)
    return image, blocks


@pytest.mark.parametrize("method", ["slic", "watershed"])
def test_superpixels_partition_with_consecutive_labels(method: str) -> None:
    image, _ = _blocks_image()
    labels = superpixels(image, 20, method)
    assert labels.shape == (40, 48)
    assert labels.dtype == np.int32
    k = int(labels.max()) + 1
    assert k >= 2
    assert np.array_equal(np.unique(labels), np.arange(k))  # every label 0..K-1 used, nothing else


def test_slic_region_count_near_request_and_follows_colour_edges() -> None:
    image, blocks = _blocks_image()
    labels = superpixels(image, 40, "slic")
    k = int(labels.max()) + 1
    assert 20 <= k <= 80
    for region in range(k):  # no region straddles two colour blocks
        assert np.unique(blocks[labels == region]).size == 1


def test_watershed_uses_requested_markers() -> None:
    image, _ = _blocks_image()
    assert int(superpixels(image, 16, "watershed").max()) + 1 == 16
    assert int(superpixels(image, 4, "watershed").max()) + 1 == 4


@pytest.mark.parametrize("method", ["slic", "watershed"])
def test_superpixels_deterministic(method: str) -> None:
    image, _ = _blocks_image()
    first = superpixels(image, 20, method)
    second = superpixels(image.copy(), 20, method)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("image, n_regions, method", [
    (np.zeros((8, 8, 3), np.uint8), 0, "slic"),
    (np.zeros((8, 8), np.uint8), 4, "slic"),
    (np.zeros((8, 8, 4), np.uint8), 4, "watershed"),
    (np.zeros((3, 8, 8), np.uint8), 4, "slic"),
    (np.zeros((8, 8, 3), np.float32), 4, "slic"),
    (np.zeros((8, 8, 3), np.uint8), 4, "felzenszwalb"),
])
def test_superpixels_bad_inputs(image: np.ndarray, n_regions: int, method: str) -> None:
    with pytest.raises(ValueError) as error:
        superpixels(image, n_regions, method)
    assert "\n" not in str(error.value)


def test_region_means_match_loop_on_device() -> None:
    gen = torch.Generator().manual_seed(3)
    n = 9  # label 8 never drawn: an empty region
    labels = torch.randint(0, 8, (13, 17), generator=gen)
    scores = torch.rand(13, 17, generator=gen)
    means = region_means(scores.to(DEVICE), labels.to(DEVICE, torch.int32), n)
    assert means.device.type == DEVICE.type
    assert means.dtype == torch.float64
    assert means.shape == (n,)
    s, lab = scores.numpy().astype(np.float64), labels.numpy()
    expected = [s[lab == r].mean() if (lab == r).any() else 0.0 for r in range(n)]
    np.testing.assert_allclose(means.cpu().numpy(), expected, rtol=1e-12, atol=1e-12)
    assert means[8].item() == 0.0


def test_region_means_and_sizes_reject_bad_inputs() -> None:
    labels = torch.tensor([[0, 1], [2, 3]])
    with pytest.raises(ValueError):
        region_means(torch.zeros(2, 3), labels, 4)
    with pytest.raises(ValueError):
        region_means(torch.zeros(2, 2), labels, 3)  # label 3 outside 0..2
    with pytest.raises(ValueError):
        region_sizes(labels.float(), 4)
    with pytest.raises(ValueError):
        region_sizes(labels - 1, 4)


def test_region_sizes_sum_to_image() -> None:
    image, _ = _blocks_image()
    labels = torch.from_numpy(superpixels(image, 20, "slic")).to(DEVICE)
    k = int(labels.max()) + 1
    sizes = region_sizes(labels, k)
    assert sizes.dtype == torch.int64
    assert sizes.device.type == DEVICE.type
    assert int(sizes.sum()) == 40 * 48
    assert bool((sizes > 0).all())
    assert sizes.cpu().tolist() == np.bincount(labels.cpu().numpy().ravel(), minlength=k).tolist()


# image id, region, score, pixels
TABLE = [
    ("b", 2, 0.9, 50),
    ("a", 7, 0.5, 10),
    ("b", 0, 0.5, 30),
    ("a", 3, 0.5, 20),   # ties at 0.5: (a, 3), (a, 7), (b, 0)
    ("c", 1, 0.95, 40),
    ("a", 1, 0.1, 5),
]


def _table() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    ids = [row[0] for row in TABLE]
    return (ids, np.array([row[1] for row in TABLE]), np.array([row[2] for row in TABLE]),
            np.array([row[3] for row in TABLE]))


def test_top_regions_golden_order() -> None:
    picked = top_regions(*_table(), budget=10, unit="regions")
    assert picked == [("c", 1), ("b", 2), ("a", 3), ("a", 7), ("b", 0), ("a", 1)]
    assert top_regions(*_table(), budget=3, unit="regions") == [("c", 1), ("b", 2), ("a", 3)]
    assert top_regions(*_table(), budget=0, unit="regions") == []


def test_top_regions_pixel_budget_stops_at_first_misfit() -> None:
    # cumulative pixels in pick order: 40, 90, 110, 120, 150, 155
    assert top_regions(*_table(), budget=110, unit="pixels") == [("c", 1), ("b", 2), ("a", 3)]
    # (a, 7) fits 119 but (a, 3) before it does not: stop there, never skip ahead
    assert top_regions(*_table(), budget=109, unit="pixels") == [("c", 1), ("b", 2)]
    assert top_regions(*_table(), budget=1000, unit="pixels") == [
        ("c", 1), ("b", 2), ("a", 3), ("a", 7), ("b", 0), ("a", 1)]


def test_top_regions_pixel_budget_takes_at_least_one() -> None:
    assert top_regions(*_table(), budget=5, unit="pixels") == [("c", 1)]
    assert top_regions([], np.array([]), np.array([]), np.array([]), budget=5, unit="pixels") == []


@pytest.mark.parametrize("change", ["short ids", "negative budget", "unit", "nan"])
def test_top_regions_bad_inputs(change: str) -> None:
    ids, regions, scores, sizes = _table()
    budget, unit = 3, "regions"
    if change == "short ids":
        ids = ids[:-1]
    elif change == "negative budget":
        budget = -1
    elif change == "unit":
        unit = "images"
    else:
        scores = scores.copy()
        scores[2] = np.nan
    with pytest.raises(ValueError) as error:
        top_regions(ids, regions, scores, sizes, budget, unit)
    assert "\n" not in str(error.value)


def _mask_and_labels() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    mask = torch.randint(0, 2, (12, 10), generator=gen, dtype=torch.uint8)
    labels = torch.arange(12 * 10).reshape(12, 10) // 20  # six regions of two rows each
    return mask.to(DEVICE), labels.to(DEVICE)


def test_partial_mask_all_none_some() -> None:
    mask, labels = _mask_and_labels()
    full = partial_mask(mask, labels, range(6))
    assert full.dtype == torch.uint8
    assert full.device.type == DEVICE.type
    assert torch.equal(full, mask)
    assert bool((partial_mask(mask, labels, []) == IGNORE).all())
    some = partial_mask(mask, labels, {1, 4})
    revealed = (labels == 1) | (labels == 4)
    assert torch.equal(some[revealed], mask[revealed])
    assert bool((some[~revealed] == IGNORE).all())
    assert int(revealed.sum()) == 40


def test_partial_mask_rejects_bad_inputs() -> None:
    mask, labels = _mask_and_labels()
    with pytest.raises(ValueError):
        partial_mask(mask[:-1], labels, [0])
    with pytest.raises(ValueError):
        partial_mask(mask * 255, labels, [0])


def _images() -> tuple[list[str], list[torch.Tensor]]:
    image, _ = _blocks_image()
    other, _ = _blocks_image(seed=1)
    return ["x", "y"], [torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(other[:30]).permute(2, 0, 1)]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the superpixel computations that load_or_build makes."""
    calls: list[int] = []
    real = regions_module.superpixels

    def counting(image: np.ndarray, n_regions: int, method: str) -> np.ndarray:
        calls.append(1)
        return real(image, n_regions, method)

    monkeypatch.setattr(regions_module, "superpixels", counting)
    return calls


def test_load_or_build_writes_then_reuses(tmp_path: Path, counted: list[int]) -> None:
    ids, images = _images()
    built = load_or_build(tmp_path, ids, images, 20, "slic", progress=False)
    assert len(counted) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["superpixels-slic-20.pt"]
    assert list(built) == ids
    assert built["x"].dtype == torch.int32 and tuple(built["x"].shape) == (40, 48)
    assert tuple(built["y"].shape) == (30, 48)
    assert np.array_equal(built["x"].numpy(), superpixels(images[0].permute(1, 2, 0).numpy(), 20, "slic"))
    counted.clear()
    reused = load_or_build(tmp_path, ids, images, 20, "slic", progress=False)
    assert counted == []
    assert all(torch.equal(reused[i], built[i]) for i in ids)
    load_or_build(tmp_path, ids, images, 16, "watershed", progress=False)  # another setting: its own file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["superpixels-slic-20.pt", "superpixels-watershed-16.pt"]


def test_load_or_build_rebuilds_on_other_ids_or_sizes(tmp_path: Path, counted: list[int]) -> None:
    ids, images = _images()
    load_or_build(tmp_path, ids, images, 20, "slic", progress=False)
    counted.clear()
    renamed = load_or_build(tmp_path, ["x", "z"], images, 20, "slic", progress=False)
    assert len(counted) == 2
    assert list(renamed) == ["x", "z"]
    counted.clear()
    resized = [images[0], images[1][:, :20]]
    rebuilt = load_or_build(tmp_path, ["x", "z"], resized, 20, "slic", progress=False)
    assert len(counted) == 2
    assert tuple(rebuilt["z"].shape) == (20, 48)
    counted.clear()
    load_or_build(tmp_path, ["x", "z"], resized, 20, "slic", progress=False)
    assert counted == []  # the rebuilt file now matches


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "text"])
def test_load_or_build_rebuilds_corrupt_file(tmp_path: Path, counted: list[int], damage: str,
                                             capsys: pytest.CaptureFixture) -> None:
    ids, images = _images()
    built = load_or_build(tmp_path, ids, images, 20, "slic", progress=False)
    path = tmp_path / "superpixels-slic-20.pt"
    data = path.read_bytes()
    path.write_bytes({"garbage": b"\x00not a torch file" * 7, "truncated": data[: len(data) // 2],
                      "empty": b"", "text": b"hello\n"}[damage])   # text: torch.load raises KeyError
    counted.clear()
    capsys.readouterr()
    again = load_or_build(tmp_path, ids, images, 20, "slic", progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "rebuilding it" in err[0], err
    assert len(counted) == 2
    assert all(torch.equal(again[i], built[i]) for i in ids)
    counted.clear()
    load_or_build(tmp_path, ids, images, 20, "slic", progress=False)
    assert counted == []  # the corrupt file was replaced by a good one

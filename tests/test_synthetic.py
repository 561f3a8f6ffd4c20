"""The synthetic set: deterministic, atomic, skipped when present, and a sensible task."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from constants import SYNTHETIC
from data.readers import read_listing
from data.records import DataError
from data.synthetic import SETTINGS_FILE, SHAPES, generate_synthetic, render_sample
from parseit import parse_config

SMALL = {"n_per_class": 4, "image_size": 48}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_give_identical_bytes_other_seed_other_images(tmp_path: Path) -> None:
    first = _files(generate_synthetic(tmp_path / "a", seed=5, **SMALL))
    assert first == _files(generate_synthetic(tmp_path / "b", seed=5, **SMALL))
    other = _files(generate_synthetic(tmp_path / "c", seed=6, **SMALL))
    assert other["labels.csv"] == first["labels.csv"]
    images = [name for name in first if name.startswith("images/")]
    assert len(images) == 12
    assert all(other[name] != first[name] for name in images)


def test_layout_classes_and_masks(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "syn", num_classes=4, **SMALL)
    listing = read_listing(SYNTHETIC, root)
    assert listing.test is None
    assert listing.classes == ["cross", "disc", "square", "triangle"]
    assert Counter(r.label for r in listing.train) == {c: 4 for c in listing.classes}
    for record in listing.train:
        image = np.asarray(Image.open(root / record.image))
        mask = np.asarray(Image.open(root / record.mask))
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8
        assert mask.shape == (48, 48) and set(np.unique(mask)) == {0, 255}
        # The object lies inside the image (a margin all round).
        assert not mask[[0, -1]].any() and not mask[:, [0, -1]].any()


def test_objects_vary_within_a_class(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "syn", n_per_class=12, image_size=64, num_classes=2)
    listing = read_listing(SYNTHETIC, root)
    for name in listing.classes:
        areas, centres, colours = [], [], []
        for record in (r for r in listing.train if r.label == name):
            mask = np.asarray(Image.open(root / record.mask)) > 0
            image = np.asarray(Image.open(root / record.image)).astype(float)
            areas.append(mask.sum())
            centres.append(np.argwhere(mask).mean(axis=0))
            colours.append(image[mask].mean(axis=0))
        assert np.std(areas) > 0.2 * np.mean(areas)  # size varies
        assert np.ptp(np.asarray(centres), axis=0).min() > 8  # position varies
        assert np.ptp(np.asarray(colours), axis=0).max() > 100  # colour varies


def test_complete_set_is_kept_other_arguments_replace_it(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "syn", seed=1, **SMALL)
    image = root / "images" / "disc_0000.png"
    before = image.stat().st_mtime_ns
    generate_synthetic(root, seed=1, **SMALL)
    assert image.stat().st_mtime_ns == before

    generate_synthetic(root, seed=1, n_per_class=2, image_size=48)
    assert yaml.safe_load((root / SETTINGS_FILE).read_text())["n_per_class"] == 2
    assert len(list((root / "images").glob("*.png"))) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["syn"]  # no staging folder left behind

    # An incomplete set (a file lost) is regenerated.
    image.unlink()
    generate_synthetic(root, seed=1, n_per_class=2, image_size=48)
    assert image.is_file()


def test_refuses_a_folder_that_is_not_a_synthetic_set(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError) as excinfo:
        generate_synthetic(tmp_path / "mine", **SMALL)
    assert "mine" in str(excinfo.value)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(DataError):
        generate_synthetic(tmp_path / "x", num_classes=9)


def test_default_set_fits_the_shipped_configuration(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "syn")
    listing = read_listing(SYNTHETIC, root)
    assert len(listing.train) == 120
    # The shipped configuration crops its training views from these images.
    side = Image.open(root / listing.train[0].image).size
    assert min(side) >= parse_config(["--yaml", "synthetic.yaml"]).crop_size


def test_objects_stand_out_by_saturation() -> None:
    # Nearly grey backgrounds and saturated objects keep segmentation learnable from a few masks.
    for class_index in range(len(SHAPES)):
        for index in range(10):
            image, mask = render_sample(7, class_index, index, 64)
            saturation = image.max(axis=2).astype(int) - image.min(axis=2)
            assert np.median(saturation[mask]) > np.median(saturation[~mask]) + 30


def _stamps(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("lost", ["images/square_0002.png", "masks/disc_0001.png", "labels.csv"])
def test_a_lost_file_comes_back_identical_and_nothing_else_is_touched(tmp_path: Path, lost: str) -> None:
    root = generate_synthetic(tmp_path / "syn", seed=3, **SMALL)
    (root / "notes.txt").write_text("mine")
    (root / "images" / "extra.png").write_bytes(b"a user's file")
    before = _stamps(root)
    (root / lost).unlink()

    generate_synthetic(root, seed=3, **SMALL)

    after = _stamps(root)
    assert after[lost][1] == before[lost][1]  # byte for byte the same file
    del before[lost], after[lost]
    assert after == before  # every other file, the user's included, untouched (bytes and mtime)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn"]  # no staging folder left


def test_other_arguments_rewrite_the_set_but_keep_foreign_files(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "syn", seed=1, **SMALL)
    (root / "notes.txt").write_text("mine")
    (root / "masks" / "mine.png").write_bytes(b"a user's file")
    generate_synthetic(root, seed=2, n_per_class=2, image_size=48)
    assert (root / "notes.txt").read_text() == "mine"
    assert (root / "masks" / "mine.png").read_bytes() == b"a user's file"
    # Exactly the new set besides the user's files, byte for byte what a fresh folder gets.
    fresh = _files(generate_synthetic(tmp_path / "fresh", seed=2, n_per_class=2, image_size=48))
    assert {k: v for k, v in _files(root).items() if k not in ("notes.txt", "masks/mine.png")} == fresh

    # An unreadable synthetic.yaml: the set is written again, the user's files stay.
    (root / SETTINGS_FILE).write_text("{not: [yaml")
    (root / "images" / "disc_0000.png").write_bytes(b"damaged")
    generate_synthetic(root, seed=2, n_per_class=2, image_size=48)
    assert (root / "notes.txt").read_text() == "mine"
    assert {k: v for k, v in _files(root).items() if k not in ("notes.txt", "masks/mine.png")} == fresh

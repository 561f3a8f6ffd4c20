"""The segmentation task's datasets: Cityscapes and Pascal VOC 2012 read from fixtures made in exactly their
official layouts, their label maps decoded to train ids, folds from the official splits, and the
synthetic scene set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import constants as C
import create_folds
from data.folds import load_fold
from data.readers import read_listing
from data.records import DataError
from data.scenes import SCENE_CLASSES, generate_scenes, render_scene
from data.segmentation import CITYSCAPES_CLASSES, VOC_CLASSES, decode_label

# Label ids of cityscapesScripts' labels.py and the train ids they map to (255: ignored).
CITYSCAPES_IDS = np.array([[7, 8, 26, 24], [0, 23, 33, 6]], dtype=np.uint8)
CITYSCAPES_TRAIN = np.array([[0, 1, 13, 11], [255, 10, 18, 255]], dtype=np.uint8)


def _png(path: Path, pixels: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path)


def make_cityscapes(root: Path) -> Path:
    """leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png and the gtFine labelIds beside them."""
    rng = np.random.default_rng(0)
    for split, cities in (("train", {"aachen": 3, "bochum": 2}), ("val", {"frankfurt": 2})):
        for city, n in cities.items():
            for k in range(n):
                stem = f"{city}_{k:06d}_000019"
                _png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
                     rng.integers(0, 256, (2, 4, 3), dtype=np.uint8))
                _png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", CITYSCAPES_IDS)
                _png(root / "gtFine" / split / city / f"{stem}_gtFine_color.png", np.zeros((2, 4, 3), np.uint8))
    return root


def make_voc(root: Path) -> Path:
    """VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation} with palette label PNGs."""
    base = root / "VOCdevkit" / "VOC2012"
    palette = [v for k in range(256) for v in ((k * 37) % 256, (k * 91) % 256, (k * 53) % 256)]
    splits = {"train": ["2007_000032", "2007_000039", "2008_000002"], "val": ["2007_000033", "2009_000001"]}
    for split, ids in splits.items():
        (base / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        for i in ids:
            (base / "JPEGImages").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 6, 3), 120, np.uint8)).save(base / "JPEGImages" / f"{i}.jpg")
            label = Image.fromarray(np.array([[0, 1, 15, 255, 20, 0]] * 4, dtype=np.uint8), "P")
            label.putpalette(palette)
            (base / "SegmentationClass").mkdir(parents=True, exist_ok=True)
            label.save(base / "SegmentationClass" / f"{i}.png")
    return root


def test_cityscapes_official_splits_and_train_ids(tmp_path: Path) -> None:
    root = make_cityscapes(tmp_path / "cityscapes")
    listing = read_listing(C.CITYSCAPES, root)
    assert [r.id for r in listing.train] == ["aachen_000000_000019", "aachen_000001_000019", "aachen_000002_000019",
                                             "bochum_000000_000019", "bochum_000001_000019"]
    assert [r.id for r in listing.test] == ["frankfurt_000000_000019", "frankfurt_000001_000019"]
    first = listing.train[0]
    assert first.mask == "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    assert (decode_label(C.CITYSCAPES, root / first.mask) == CITYSCAPES_TRAIN).all()
    assert len(CITYSCAPES_CLASSES) == 19


def test_voc_lists_palette_indices_and_border(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "voc")
    listing = read_listing(C.VOC, root)
    assert [r.id for r in listing.train] == ["2007_000032", "2007_000039", "2008_000002"]
    assert [r.id for r in listing.test] == ["2007_000033", "2009_000001"]
    label = decode_label(C.VOC, root / listing.train[0].mask)
    assert label[0].tolist() == [0, 1, 15, 255, 20, 0]      # the palette index is the class; 255 stays ignored
    assert len(VOC_CLASSES) == 21
    # The root may also be the VOC2012 folder itself.
    assert [r.id for r in read_listing(C.VOC, root / "VOCdevkit" / "VOC2012").train] == [r.id for r in listing.train]


def test_a_colour_rendering_of_a_voc_label_is_refused(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "voc")
    path = root / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2007_000032.png"
    Image.open(path).convert("RGB").save(path)
    with pytest.raises(DataError, match="palette PNGs whose index is the class"):
        decode_label(C.VOC, path)


@pytest.mark.parametrize(("dataset", "make", "missing", "message"), [
    (C.CITYSCAPES, make_cityscapes, "leftImg8bit/val", "leftImg8bit/val is missing"),
    (C.CITYSCAPES, make_cityscapes, "gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png", "is missing"),
    (C.VOC, make_voc, "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt", "val.txt is missing"),
    (C.VOC, make_voc, "VOCdevkit/VOC2012/JPEGImages/2008_000002.jpg", "is missing"),
])
def test_an_incomplete_download_is_named(tmp_path: Path, dataset: str, make, missing: str, message: str) -> None:
    root = make(tmp_path / dataset)
    target = root / missing
    if target.is_dir():
        for p in sorted(target.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(DataError, match=message):
        read_listing(dataset, root)


@pytest.mark.parametrize(("dataset", "make", "n_train", "n_test"), [(C.CITYSCAPES, make_cityscapes, 5, 2),
                                                                     (C.VOC, make_voc, 3, 2)])
def test_folds_keep_the_official_test_set(tmp_path: Path, dataset: str, make, n_train: int, n_test: int) -> None:
    root = make(tmp_path / dataset)
    assert create_folds.main(["--dataset", dataset, "--data_root", str(root), "--out", str(tmp_path / "folds"),
                              "--nbr_folds", "2", "--valid_ratio", "0.4"]) == 0
    fold = load_fold(tmp_path / "folds", dataset, 0, 0)
    assert len(fold.train) + len(fold.valid) == n_train and len(fold.valid) == 2
    assert len(fold.test) == n_test


def test_scenes_are_the_same_for_the_same_seed_and_hold_every_class(tmp_path: Path) -> None:
    image, label = render_scene(0, 3, 48)
    again, label_again = render_scene(0, 3, 48)
    assert (image == again).all() and (label == label_again).all()
    assert image.shape == (48, 48, 3) and label.dtype == np.uint8
    assert not (render_scene(1, 3, 48)[0] == image).all()
    seen = set()
    for k in range(20):
        seen |= set(np.unique(render_scene(0, k, 48)[1]).tolist())
    assert seen == set(range(len(SCENE_CLASSES)))
    root = generate_scenes(tmp_path / "scenes", n_images=6, image_size=32)
    listing = read_listing(C.SCENES, root)
    assert [r.id for r in listing.train] == [f"scene_{k:04d}" for k in range(6)] and listing.test is None
    stamp = (root / "images" / "scene_0000.png").stat().st_mtime_ns
    generate_scenes(root, n_images=6, image_size=32)   # already there: nothing is written again
    assert (root / "images" / "scene_0000.png").stat().st_mtime_ns == stamp
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("a user's file")
    with pytest.raises(DataError, match="holds no scenes.yaml"):
        generate_scenes(other)
    assert (other / "notes.txt").read_text() == "a user's file"

"""Datasets of the segmentation task in their official layouts, and their label maps.

- Cityscapes: `leftImg8bit/<split>/<city>/<name>_leftImg8bit.png` and
  `gtFine/<split>/<city>/<name>_gtFine_labelIds.png`; the 34 label ids are mapped to the 19 train
  ids of the benchmark (cityscapesScripts' labels.py), every other id to 255 (ignored). The official
  `train` split is the pool (folds carve validation from it) and `val` is the test set (the `test`
  split has no public labels).
- Pascal VOC 2012: `JPEGImages/<id>.jpg`, `SegmentationClass/<id>.png` (palette PNGs: the palette
  index is the class, 21 classes, 255 on object borders = ignored) and the lists
  `ImageSets/Segmentation/train.txt` (the pool) and `val.txt` (the test set). The root may be the
  `VOC2012` folder or a folder holding `VOCdevkit/VOC2012` or `VOC2012`.
- scenes: the synthetic set of data/scenes.py (scenes.csv; labels are class indices).

Records carry one image-level label, "scene", so that folds are drawn over the whole set.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from constants import CITYSCAPES, IGNORE, SCENES, VOC
from data.records import DataError, Listing, SampleRecord
from data.scenes import LISTING, SCENE_CLASSES

SCENE = "scene"
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                      "bicycle")
# label id -> train id (cityscapesScripts labels.py); ids not listed are ignored.
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                        26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
CLASSES = {CITYSCAPES: CITYSCAPES_CLASSES, VOC: VOC_CLASSES, SCENES: SCENE_CLASSES}

_CITYSCAPES_LUT = np.full(256, IGNORE, dtype=np.uint8)
for _label_id, _train_id in CITYSCAPES_TRAIN_IDS.items():
    _CITYSCAPES_LUT[_label_id] = _train_id


def read_cityscapes(root: Path) -> Listing:
    def split(name: str) -> list[SampleRecord]:
        folder = root / "leftImg8bit" / name
        if not folder.is_dir():
            raise DataError(f"{folder} is missing: point the data root at the folder holding leftImg8bit/ and gtFine/ "
                            "(leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip unpacked)")
        records = []
        for image in sorted(folder.glob("*/*_leftImg8bit.png")):
            stem = image.name.removesuffix("_leftImg8bit.png")
            label = Path("gtFine") / name / image.parent.name / f"{stem}_gtFine_labelIds.png"
            records.append(SampleRecord(stem, str(image.relative_to(root)), str(label), SCENE))
        if not records:
            raise DataError(f"{folder} holds no <city>/*_leftImg8bit.png: complete the download")
        return records

    return Listing(train=split("train"), test=split("val"), classes=[SCENE])


def voc_root(root: Path) -> Path:
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "ImageSets" / "Segmentation").is_dir():
            return candidate
    raise DataError(f"{root} holds no ImageSets/Segmentation (nor VOC2012/ or VOCdevkit/VOC2012/ with it): point the "
                    "data root at the unpacked VOCtrainval_11-May-2012.tar")


def read_voc(root: Path) -> Listing:
    base = voc_root(root)
    prefix = base.relative_to(root)

    def split(name: str) -> list[SampleRecord]:
        path = base / "ImageSets" / "Segmentation" / f"{name}.txt"
        if not path.is_file():
            raise DataError(f"{path} is missing: complete the download")
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        return [SampleRecord(i, str(prefix / "JPEGImages" / f"{i}.jpg"), str(prefix / "SegmentationClass" / f"{i}.png"),
                             SCENE) for i in ids]

    return Listing(train=split("train"), test=split("val"), classes=[SCENE])


def read_scenes(root: Path) -> Listing:
    path = root / LISTING
    if not path.is_file():
        raise DataError(f"{path} is missing: generate the set with python create_folds.py --dataset scenes "
                        f"--data_root {root}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return Listing(train=[SampleRecord(r["id"], r["image"], r["label"], SCENE) for r in rows], test=None,
                   classes=[SCENE])


def decode_label(dataset: str, path: Path) -> np.ndarray:
    """(H, W) uint8 class indices, IGNORE where the dataset has no class."""
    with Image.open(path) as image:
        if dataset == VOC and image.mode != "P":
            raise DataError(f"{path} is a {image.mode} image: VOC labels are palette PNGs whose index is the class "
                            "(SegmentationClass/, not a colour rendering of it)")
        values = np.asarray(image)
    if values.ndim != 2:
        raise DataError(f"{path} has {values.shape[-1]} channels: a label map has one (class indices)")
    if dataset == CITYSCAPES:
        return _CITYSCAPES_LUT[np.clip(values, 0, 255).astype(np.uint8)]
    values = values.astype(np.int64)
    n = len(CLASSES[dataset])
    return np.where((values < n) | (values == IGNORE), values, IGNORE).astype(np.uint8)


READERS = {CITYSCAPES: read_cityscapes, VOC: read_voc, SCENES: read_scenes}

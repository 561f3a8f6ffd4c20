"""Predicting new images with a round model (predict.py): the images read and checked, the task's predictor
applied, and its answers written as files a person or a tool reads.

    masks/<name>.png            the mask at the image's original resolution (0/255; label maps: class indices)
    overlays/<name>.png         the mask over the image (label maps: every class in its colour)
    probabilities.csv           one row per image: file, predicted class, then one column per class (the class
                                probabilities; the segmentation task: the mean of its pixels' probabilities)
    label_studio_tasks.json     with --label_studio: one task per image with the mask as a pre-annotation,
    label_studio_config.xml     in the format the person oracle's requests use (al/request.py)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from al.request import (
    LABEL_STUDIO_CONFIG_FILE,
    LABEL_STUDIO_TASKS_FILE,
    PickedImage,
    label_studio_config,
    label_studio_task,
    overlay,
    png,
)
from atomic_io import atomic_write_bytes, atomic_write_text
from data.records import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASKS_DIR, OVERLAYS_DIR, PROBABILITIES_FILE = "masks", "overlays", "probabilities.csv"
# Bands of Pillow's modes, as the network sees them (a palette image is a colour image).
_BANDS = {"1": 1, "L": 1, "I": 1, "I;16": 1, "F": 1, "P": 3, "RGB": 3, "YCbCr": 3, "LA": 2, "RGBA": 4, "CMYK": 4}


@dataclass
class Prediction:
    """What the model says of one image, at its original resolution."""

    mask: np.ndarray | None             # (H, W) uint8: 0/1, or class indices for a label map; None: no mask
    probabilities: np.ndarray           # (K,) class probabilities of the image


class Predictor(Protocol):
    """A round model as a function of images (uint8 (H, W, 3), any size)."""

    channels: int       # 1: trained on greyscale images, 3: on colour images
    with_masks: bool    # it segments (else it only classifies)
    label_map: bool     # its masks are class indices (else 0/1 masks)

    def __call__(self, images: Sequence[np.ndarray]) -> list[Prediction]: ...


def image_files(paths: Sequence[Path]) -> list[Path]:
    """The images named, folders expanded to their image files (sorted); DataError for a path that is neither."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise DataError(f"{path} holds no image ({', '.join(IMAGE_SUFFIXES)}): pass a folder of images")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path} does not exist: pass image files or a folder of images")
    names = [p.stem for p in files]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"two images are named {twice[0]!r} (outputs are named after the image): rename one")
    return files


def check_images(files: Sequence[Path], channels: int) -> None:
    """Every image readable and of the model's number of channels, before anything is predicted or written."""
    for path in files:
        try:
            with Image.open(path) as image:
                bands = _BANDS.get(image.mode, len(image.getbands()))
                image.verify()
        except (OSError, SyntaxError) as error:
            raise DataError(f"{path} cannot be read as an image ({type(error).__name__}): pass image files") from None
        if bands != channels:
            kind = {1: "greyscale", 3: "colour (RGB)"}[channels]
            raise DataError(f"{path} has {bands} channel{'s' * (bands > 1)} ({image.mode}) but the model was "
                            f"trained on {kind} images: convert it to {'L' if channels == 1 else 'RGB'} first")


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8, greyscale repeated over the three channels as the datasets' readers do."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def resized(images: Sequence[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, H, W) uint8 images at the (height, width) a model was trained at (bilinear, as the readers)."""
    height, width = size
    return torch.from_numpy(np.stack([np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
                                      for image in images]).transpose(0, 3, 1, 2).copy())


def write_predictions(out: Path, files: Sequence[Path], images: Sequence[np.ndarray],
                      predictions: Sequence[Prediction], label_map: bool, classes: Sequence[str]) -> list[list[str]]:
    """Masks and overlays of one chunk of images; the rows of probabilities.csv they add."""
    rows = []
    for path, image, prediction in zip(files, images, predictions, strict=True):
        if prediction.mask is not None:
            picture = prediction.mask if label_map else prediction.mask * np.uint8(255)
            atomic_write_bytes(out / MASKS_DIR / f"{path.stem}.png", png(picture))
            atomic_write_bytes(out / OVERLAYS_DIR / f"{path.stem}.png",
                               png(overlay(image, prediction.mask, classes if label_map else None)))
        probs = prediction.probabilities
        rows.append([path.name, classes[int(np.argmax(probs))], *(f"{p:.6f}" for p in probs)])
    return rows


def write_probabilities(out: Path, rows: Sequence[Sequence[str]], classes: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "predicted_class", *classes])
    writer.writerows(rows)
    atomic_write_text(out / PROBABILITIES_FILE, buffer.getvalue())


def label_studio_tasks(files: Sequence[Path], masks: Sequence[np.ndarray], first_rank: int, document_root: Path,
                       model_version: str, classes: Sequence[str] | None) -> list[dict]:
    """Label Studio tasks with the masks as pre-annotations; the images are local files below document_root."""
    return [label_studio_task(PickedImage(path.stem, np.zeros((*mask.shape, 3), np.uint8), mask, None), path.resolve(),
                              rank, None, model_version, document_root, classes)
            for rank, (path, mask) in enumerate(zip(files, masks, strict=True), start=first_rank)]


def write_label_studio(out: Path, tasks: Sequence[dict], classes: Sequence[str] | None) -> None:
    atomic_write_text(out / LABEL_STUDIO_TASKS_FILE, json.dumps(list(tasks), indent=1) + "\n")
    atomic_write_text(out / LABEL_STUDIO_CONFIG_FILE, label_studio_config(classes))

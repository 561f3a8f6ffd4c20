"""A synthetic multi-class scene set for the segmentation task: the embedded default that needs no download.

Each image holds two to four objects of three classes (disc, square, triangle) on a textured
background (class 0). Objects overlap (later ones in front), their sizes vary, and their colours
only lean towards their class (60 % near the class's anchor colour, 40 % any saturated colour), so a
network has to learn shape, not colour; pixel noise and background stripes keep the classes from
being separable pixel by pixel. Label PNGs hold class indices (0..3).

Pixels come from a numpy Generator seeded with (seed, index): the same arguments give the same set.
The set is written into a temporary sibling folder and renamed into place, so a reader never sees
half a set; scenes.yaml records the arguments, and a set made with others is written again.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from data.records import DataError

SCENE_CLASSES = ("background", "disc", "square", "triangle")
LISTING = "scenes.csv"
SETTINGS_FILE = "scenes.yaml"
_ANCHORS = np.array([(0, 0, 0), (215, 60, 50), (50, 190, 70), (60, 90, 220)], dtype=np.int64)


def generate_scenes(root: Path, seed: int = 0, n_images: int = 120, image_size: int = 64) -> Path:
    """Write the set (scenes.csv, images/*.png, labels/*.png) into `root` unless it is already there."""
    root = Path(root)
    settings = {"seed": seed, "n_images": n_images, "image_size": image_size}
    if (root / SETTINGS_FILE).is_file() and yaml.safe_load((root / SETTINGS_FILE).read_text()) == settings:
        return root
    if root.exists() and any(root.iterdir()) and not (root / SETTINGS_FILE).is_file():
        raise DataError(f"{root} is not empty and holds no {SETTINGS_FILE}: pick an empty or new folder for the scenes")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-"))
    try:
        (staging / "images").mkdir()
        (staging / "labels").mkdir()
        rows = []
        for index in range(n_images):
            image, label = render_scene(seed, index, image_size)
            sample_id = f"scene_{index:04d}"
            Image.fromarray(image).save(staging / "images" / f"{sample_id}.png")
            Image.fromarray(label).save(staging / "labels" / f"{sample_id}.png")
            rows.append([sample_id, f"images/{sample_id}.png", f"labels/{sample_id}.png"])
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([["id", "image", "label"], *rows])
        (staging / LISTING).write_text(text.getvalue())
        (staging / SETTINGS_FILE).write_text(yaml.safe_dump(settings))
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def render_scene(seed: int, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 image and its (H, W) uint8 class-index label."""
    rng = np.random.default_rng([seed, index])
    yy, xx = np.mgrid[0:size, 0:size]
    grey = int(rng.integers(80, 170))
    period, angle = int(rng.integers(4, 12)), rng.uniform(0, np.pi)
    stripes = 18 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    image = (grey + stripes)[..., None] + rng.integers(-25, 26, 3)[None, None, :]   # tinted grey stripes
    label = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        k = int(rng.integers(1, len(SCENE_CLASSES)))
        r = int(rng.integers(size // 9, size // 4))
        cy, cx = (int(v) for v in rng.integers(r, size - r, 2))
        inside = _shape(k, yy - cy, xx - cx, r)
        colour = _ANCHORS[k] + rng.integers(-70, 71, 3) if rng.random() < 0.6 else rng.integers(30, 226, 3)
        image[inside] = colour
        label[inside] = k
    image = image + rng.normal(0.0, 12.0, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label


def _shape(k: int, dy: np.ndarray, dx: np.ndarray, r: int) -> np.ndarray:
    if k == 1:
        return dy * dy + dx * dx <= r * r
    if k == 2:
        return (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
    return (dy <= r * 0.7) & (dy >= -r) & (np.abs(dx) * 2 <= (dy + r) * 1.1)   # apex up

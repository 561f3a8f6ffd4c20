"""A small synthetic joint classification + segmentation set, for tests and quick runs.

The class is the object's SHAPE (disc, square, triangle, cross, ring). Everything else varies
within a class: object size, position and rotation, object texture (plain, stripes, dots),
background lightness and texture, pixel noise. Half the objects take a colour near their class's
anchor colour and half a random one, so colour histograms carry some of the class but a network
has to learn shape to be sure. The mask is the object.

Backgrounds are nearly grey and objects strongly coloured: a segmentation head can then learn
from a handful of pixel-labelled images within a CPU budget of a few hundred steps, and gains
from every further image, which is what an active-learning study on this set needs to show.

Pixels come from a numpy Generator seeded per image with (seed, class, index) and pure integer
maths (shapes are exact integer half-plane and distance tests in a frame rotated by an integer
vector), so pixel values are the same on every machine; file bytes are identical wherever the
same Pillow/zlib build writes the PNGs.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from atomic_io import atomic_write_bytes, atomic_write_text
from data.records import DataError

SHAPES = ("disc", "square", "triangle", "cross", "ring")
# Anchor colours (RGB), one per shape, that half of each class's objects are drawn near.
_ANCHORS = ((200, 50, 50), (40, 190, 60), (60, 80, 210), (230, 200, 30), (170, 50, 200))
_ANCHOR_JITTER = 50
_MIN_CONTRAST = 150  # L1 distance between object and background colours
_MIN_SATURATION = 100  # max - min channel of an object colour
_BACKGROUND_TINT = 35  # per-channel spread of a background colour around its grey level
# Object radius range, in percent of the image side.
_MIN_RADIUS_PERCENT, _MAX_RADIUS_PERCENT = 20, 36
_NOISE = 10
MIN_IMAGE_SIZE = 32
# Bump when the drawing changes, so existing sets are regenerated.
GENERATOR_VERSION = 2
SETTINGS_FILE = "synthetic.yaml"


def generate_synthetic(
    root: Path,
    seed: int = 0,
    n_per_class: int = 40,
    image_size: int = 80,
    num_classes: int = 3,
) -> Path:
    """Write the set (labels.csv, images/*.png, masks/*.png with 0/255) into `root` and return it.

    - `root` absent or empty: the set is built in a temporary sibling folder and renamed into
      place, so a reader never sees half a set.
    - `root` holds a set made with the same arguments: only the files it lacks are written. The
      pixels come from the seed, so a lost image, mask or labels.csv comes back byte for byte;
      nothing else is touched (a complete set is left as it is).
    - `root` holds a set made with other arguments (or its synthetic.yaml cannot be read): every
      file of the new set is written over the old one, and the images and masks of the old set
      that the new one lacks are removed.
    A file the generator did not write is never touched or removed, and a non-empty folder
    without synthetic.yaml is refused. Symbolic links are the user's: a `root` that links to a
    folder is written through, and a link that would have to be replaced (a dangling one, or
    one in place of a file the set changes) is refused before anything is written. In place,
    each file is written under a temporary name and renamed, and synthetic.yaml is written
    last: a set whose synthetic.yaml matches is complete.
    """
    settings = _settings(seed, n_per_class, image_size, num_classes)
    root = _through_link(Path(root))
    if _is_complete(root, settings):
        return root
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file: pick an empty or new folder for the synthetic set")
    if (root / SETTINGS_FILE).is_file():
        _update(root, settings)
        return root
    if root.exists() and any(root.iterdir()):
        raise DataError(
            f"{root} is not empty and holds no {SETTINGS_FILE}: pick an empty or new folder "
            "for the synthetic set"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-"))
    staging.chmod(0o755)  # a shared data set: readable by everyone, as the files in it
    try:
        _write_set(staging, settings)
        _install(staging, root, settings)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def render_sample(
    seed: int, class_index: int, index: int, image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 image and its (H, W) bool object mask."""
    rng = np.random.default_rng([seed, class_index, index])
    size = image_size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.int64)

    background, palette = _background(rng, xx, yy, size)
    radius = int(rng.integers(size * _MIN_RADIUS_PERCENT // 100, size * _MAX_RADIUS_PERCENT // 100 + 1))
    a = int(rng.integers(-radius, radius + 1))
    b = math.isqrt(radius * radius - a * a) * (1 if rng.integers(0, 2) else -1)
    margin = radius + radius // 8 + 1
    cx, cy = (int(v) for v in rng.integers(margin, size - margin, size=2))
    mask = _shape(SHAPES[class_index], xx - cx, yy - cy, a, b)

    base = _object_colour(rng, class_index, palette)
    s = (xx - cx) * a + (yy - cy) * b
    texture = int(rng.integers(0, 3))
    if texture == 1:  # stripes across the object's own axis
        period = max(1, (a * a + b * b) // 3)
        second = (((s + 8 * period) // period) % 2).astype(bool)
    elif texture == 2:  # dots on an image-aligned grid
        step = max(4, radius // 2)
        second = ((xx % step - step // 2) ** 2 + (yy % step - step // 2) ** 2) * 16 <= step * step
    else:
        second = np.zeros_like(mask)
    shade = np.where(base.sum() > 3 * 128, -70, 70)
    fill = np.where(second[..., None], np.clip(base + shade, 0, 255), base)

    image = np.where(mask[..., None], fill, background)
    image = image + rng.integers(-_NOISE, _NOISE + 1, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def _settings(seed: int, n_per_class: int, image_size: int, num_classes: int) -> dict[str, int]:
    if seed < 0 or n_per_class < 1:
        raise DataError(f"seed must be >= 0 and n_per_class >= 1 (got {seed}, {n_per_class})")
    if image_size < MIN_IMAGE_SIZE:
        raise DataError(f"image_size must be >= {MIN_IMAGE_SIZE} (got {image_size})")
    if not 2 <= num_classes <= len(SHAPES):
        raise DataError(f"num_classes must lie in 2..{len(SHAPES)} (got {num_classes})")
    return {
        "version": GENERATOR_VERSION,
        "seed": seed,
        "n_per_class": n_per_class,
        "image_size": image_size,
        "num_classes": num_classes,
    }


def _sample_ids(settings: dict[str, int]) -> list[tuple[int, int, str]]:
    return [
        (class_index, index, f"{SHAPES[class_index]}_{index:04d}")
        for class_index in range(settings["num_classes"])
        for index in range(settings["n_per_class"])
    ]


def _stored_settings(root: Path) -> dict | None:
    """The settings in root's synthetic.yaml, or None when it is absent or unreadable."""
    try:
        stored = yaml.safe_load((root / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return stored if isinstance(stored, dict) else None


def _is_complete(root: Path, settings: dict[str, int]) -> bool:
    return _stored_settings(root) == settings and (root / "labels.csv").is_file() and all(
        (root / "images" / f"{sample_id}.png").is_file()
        and (root / "masks" / f"{sample_id}.png").is_file()
        for _, _, sample_id in _sample_ids(settings)
    )


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _sample_pngs(settings: dict[str, int], class_index: int, index: int) -> tuple[bytes, bytes]:
    """The image and mask files of one sample, the same bytes every time."""
    image, mask = render_sample(settings["seed"], class_index, index, settings["image_size"])
    return _png(image), _png(mask.astype(np.uint8) * 255)


def _labels_csv(settings: dict[str, int]) -> str:
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["id", "image", "mask", "label"])
    for class_index, _, sample_id in _sample_ids(settings):
        writer.writerow(
            [sample_id, f"images/{sample_id}.png", f"masks/{sample_id}.png", SHAPES[class_index]]
        )
    return table.getvalue()


def _settings_yaml(settings: dict[str, int]) -> str:
    return yaml.safe_dump(settings, sort_keys=False)


def _write_set(folder: Path, settings: dict[str, int]) -> None:
    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    for class_index, index, sample_id in _sample_ids(settings):
        image, mask = _sample_pngs(settings, class_index, index)
        (folder / "images" / f"{sample_id}.png").write_bytes(image)
        (folder / "masks" / f"{sample_id}.png").write_bytes(mask)
    (folder / "labels.csv").write_text(_labels_csv(settings), encoding="utf-8")
    # Written last: its presence marks a complete set.
    (folder / SETTINGS_FILE).write_text(_settings_yaml(settings), encoding="utf-8")


def _through_link(root: Path) -> Path:
    """The folder a `root` that is a symbolic link points to; a dangling link is refused (it is not ours to
    replace)."""
    if not root.is_symlink():
        return root
    if not root.exists():
        raise DataError(f"{root} is a symbolic link to {os.readlink(root)}, which does not exist: create that "
                        "folder or point the link at one (the synthetic generator never replaces a link)")
    return root.resolve()


def _check_links(root: Path, settings: dict[str, int], same: bool) -> None:
    """Refuse, before anything is written, a symbolic link in the set where the generator would write: a
    dangling one, or (when the set changes) one in place of any of its files."""
    files = [root / folder / f"{sample_id}.png" for folder in ("images", "masks")
             for _, _, sample_id in _sample_ids(settings)]
    for path in [root / "images", root / "masks", root / "labels.csv", root / SETTINGS_FILE, *files]:
        if path.is_symlink() and (not path.exists() or (not same and path.is_file())):
            raise DataError(f"{path} is a symbolic link the synthetic generator would have to replace: remove it "
                            "(or restore what it points to), or pick another --data_root")


def _update(root: Path, settings: dict[str, int]) -> None:
    """Bring the synthetic set in `root` to `settings` in place, touching only its own files."""
    stored = _stored_settings(root)
    same = stored == settings
    _check_links(root, settings, same)
    if not same:
        # Until every file is rewritten the folder holds no complete set.
        (root / SETTINGS_FILE).unlink(missing_ok=True)
    for folder in ("images", "masks"):
        (root / folder).mkdir(exist_ok=True)
    for class_index, index, sample_id in _sample_ids(settings):
        image_path = root / "images" / f"{sample_id}.png"
        mask_path = root / "masks" / f"{sample_id}.png"
        if same and image_path.is_file() and mask_path.is_file():
            continue
        image, mask = _sample_pngs(settings, class_index, index)
        for path, data in ((image_path, image), (mask_path, mask)):
            if not same or not path.is_file():
                atomic_write_bytes(path, data)
    if not same or not (root / "labels.csv").is_file():
        atomic_write_text(root / "labels.csv", _labels_csv(settings))
    if stored is not None and not same:
        _remove_old_samples(root, stored, {sample_id for _, _, sample_id in _sample_ids(settings)})
    if not same:
        atomic_write_text(root / SETTINGS_FILE, _settings_yaml(settings))


def _remove_old_samples(root: Path, stored: dict, keep: set[str]) -> None:
    """Delete the images and masks that the set made with `stored` wrote and `keep` lacks."""
    n_per_class, num_classes = stored.get("n_per_class"), stored.get("num_classes")
    if not isinstance(n_per_class, int) or not isinstance(num_classes, int):
        return
    for folder in ("images", "masks"):
        for path in (root / folder).glob("*.png"):
            shape, _, number = path.stem.rpartition("_")
            if (path.stem not in keep and not path.is_symlink() and shape in SHAPES[:num_classes]
                    and len(number) == 4 and number.isdigit() and int(number) < n_per_class):
                path.unlink(missing_ok=True)


def _install(staging: Path, root: Path, settings: dict[str, int]) -> None:
    """Rename the finished set into place (over an empty folder, never over a full one)."""
    try:
        os.replace(staging, root)
    except OSError:
        # Another process installed a set first; keep it when it is the one asked for.
        if not _is_complete(root, settings):
            raise


def _background(
    rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) background and the (k, 3) colours it is made of."""
    first = _muted_colour(rng)
    second = _muted_colour(rng)
    kind = int(rng.integers(0, 3))
    if kind == 1:  # stripes in a random integer direction
        u, v = (int(c) for c in rng.integers(-4, 5, size=2))
        period = int(rng.integers(4, 13)) * max(1, abs(u) + abs(v))
        band = (((u * xx + v * yy + 16 * size * period) // period) % 2).astype(bool)
        return np.where(band[..., None], second, first), np.stack([first, second])
    if kind == 2:  # vertical gradient
        gradient = first + (second - first) * yy[..., None] // (size - 1)
        return gradient, np.stack([first, (first + second) // 2, second])
    return np.broadcast_to(first, (size, size, 3)).copy(), first[None]


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A grey of random lightness, tinted by at most _BACKGROUND_TINT per channel."""
    grey = int(rng.integers(0, 256))
    return np.clip(grey + rng.integers(-_BACKGROUND_TINT, _BACKGROUND_TINT + 1, size=3), 0, 255)


def _shape(name: str, dx: np.ndarray, dy: np.ndarray, a: int, b: int) -> np.ndarray:
    """Inside test in the frame rotated by (a, b); coordinates are scaled by n2 = a² + b²."""
    n2 = a * a + b * b
    d2 = dx * dx + dy * dy
    s = dx * a + dy * b
    t = dy * a - dx * b
    if name == "disc":  # radius 0.75
        return 16 * d2 <= 9 * n2
    if name == "ring":  # radii 0.45 .. 0.85
        return (400 * d2 <= 289 * n2) & (400 * d2 > 81 * n2)
    if name == "square":  # half side 0.65
        return (20 * np.abs(s) <= 13 * n2) & (20 * np.abs(t) <= 13 * n2)
    if name == "cross":  # two bars 1.8 x 0.6
        long_s, long_t = 10 * np.abs(s) <= 9 * n2, 10 * np.abs(t) <= 9 * n2
        thin_s, thin_t = 10 * np.abs(s) <= 3 * n2, 10 * np.abs(t) <= 3 * n2
        return (long_s & thin_t) | (thin_s & long_t)
    # triangle: circumradius 1, edges with outward normals at 90, 210 and 330 degrees
    # (sqrt(3)/2 taken as 866/1000 to stay in integers)
    return (2 * t <= n2) & (-866 * s - 500 * t <= 500 * n2) & (866 * s - 500 * t <= 500 * n2)


def _object_colour(
    rng: np.random.Generator, class_index: int, palette: np.ndarray
) -> np.ndarray:
    """A saturated colour far enough from every background colour to keep the object visible."""
    colour = rng.integers(0, 256, size=3)
    for _ in range(100):
        if rng.integers(0, 2):
            jitter = rng.integers(-_ANCHOR_JITTER, _ANCHOR_JITTER + 1, size=3)
            colour = np.clip(np.asarray(_ANCHORS[class_index]) + jitter, 0, 255)
        else:
            colour = rng.integers(0, 256, size=3)
        if (np.abs(palette - colour).sum(axis=1).min() >= _MIN_CONTRAST
                and int(colour.max() - colour.min()) >= _MIN_SATURATION):
            break
    return colour

"""Decode every image and mask once and keep them in memory (the original re-read them every epoch).

Decoding runs in a thread pool (Pillow releases the GIL while decoding). An optional on-disk
cache keeps the decoded arrays across runs; its key covers the dataset, the relative paths and
each file's size and modification time, so an edited file is decoded again.

Every problem with a file (missing, empty, not an image, truncated, too large for Pillow, a
path leaving the data root) is a one-line DataError naming the file and the sample.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from atomic_io import atomic_write
from data.readers import binarise_mask, check_inside_root
from data.records import DataError, SampleRecord

# Below this many images a progress bar is noise.
PROGRESS_MIN_IMAGES = 200
MAX_DECODE_THREADS = 8
# Bump when decoding changes, so cached arrays are not reused (2: masks stored as 0/1).
CACHE_VERSION = 2


@dataclass
class DecodedSample:
    id: str
    label: int
    image: torch.Tensor  # uint8 (3, H, W)
    mask: torch.Tensor | None  # uint8 (H, W), values 0/1


def decode_records(
    records: list[SampleRecord],
    root: Path,
    dataset: str,
    encoding: dict[str, int],
    cache_dir: Path | None = None,
    progress: bool = True,
) -> list[DecodedSample]:
    """Decoded samples in the order of `records`; paths are relative to `root`."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist: pass the folder the folds refer to")
    for record in records:
        if record.label not in encoding:
            raise DataError(
                f"sample '{record.id}' has label '{record.label}', absent from the encoding "
                f"{sorted(encoding)}: use the fold's encoding.yaml"
            )
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / dataset
        cache.mkdir(parents=True, exist_ok=True)
    decode = partial(_decode, root=root, dataset=dataset, encoding=encoding, cache=cache)
    workers = max(1, min(MAX_DECODE_THREADS, os.cpu_count() or 1, len(records)))
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        return list(tqdm(
            pool.map(decode, records),
            total=len(records),
            desc=f"decoding {dataset}",
            unit="img",
            disable=True if not progress or len(records) < PROGRESS_MIN_IMAGES else None,  # None: off unless a TTY
        ))
    finally:
        pool.shutdown(cancel_futures=True)


def _decode(
    record: SampleRecord, root: Path, dataset: str, encoding: dict[str, int], cache: Path | None
) -> DecodedSample:
    for rel in (record.image, record.mask):
        if rel is not None:
            check_inside_root(rel, record.id, f"data root {root}")
    image_path = root / record.image
    mask_path = root / record.mask if record.mask is not None else None
    cache_file = cache / f"{_cache_key(record, image_path, mask_path, dataset)}.npz" if cache else None
    arrays = _load_cached(cache_file) if cache_file else None
    if arrays is None:
        arrays = _decode_files(record.id, image_path, mask_path, dataset)
        if cache_file:
            _save_cached(cache_file, arrays)
    image = torch.from_numpy(np.ascontiguousarray(arrays["image"].transpose(2, 0, 1)))
    mask = torch.from_numpy(arrays["mask"]) if "mask" in arrays else None
    return DecodedSample(id=record.id, label=encoding[record.label], image=image, mask=mask)


def _decode_files(
    sample_id: str, image_path: Path, mask_path: Path | None, dataset: str
) -> dict[str, np.ndarray]:
    arrays = {"image": _read(image_path, sample_id, lambda image: np.asarray(image.convert("RGB")))}
    if mask_path is not None:
        arrays["mask"] = _read(
            mask_path, sample_id, lambda mask: binarise_mask(dataset, mask, mask_path).astype(np.uint8)
        )
        height, width = arrays["image"].shape[:2]
        if arrays["mask"].shape != (height, width):
            mask_h, mask_w = arrays["mask"].shape
            raise DataError(
                f"mask {mask_path} is {mask_w}x{mask_h} but its image {image_path} is "
                f"{width}x{height}: fix or re-download the mask"
            )
    return arrays


def _read(path: Path, sample_id: str, convert: Callable[[Image.Image], np.ndarray]) -> np.ndarray:
    """`convert` applied to the opened file, or a DataError naming the file."""
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise DataError(f"{path} is empty, 0 bytes (sample '{sample_id}'): restore or re-download it")
        with Image.open(path) as image:
            return convert(image)
    except FileNotFoundError as error:
        raise DataError(f"{path} is missing (sample '{sample_id}'): restore the file") from error
    except PermissionError as error:
        raise DataError(
            f"{path} cannot be opened, permission denied (sample '{sample_id}'): make it readable"
        ) from error
    except Image.DecompressionBombError as error:
        raise DataError(
            f"{path} declares more pixels than Pillow decodes safely (sample '{sample_id}'): "
            "re-download it if it is damaged, or shrink it"
        ) from error
    except (OSError, SyntaxError, EOFError) as error:
        raise DataError(
            f"{path} cannot be read as an image (sample '{sample_id}'): re-download it"
        ) from error


def _cache_key(
    record: SampleRecord, image_path: Path, mask_path: Path | None, dataset: str
) -> str:
    parts = [str(CACHE_VERSION), dataset]
    for rel, path in ((record.image, image_path), (record.mask, mask_path)):
        if path is None:
            parts.append("-")
            continue
        try:
            stat = path.stat()
        except FileNotFoundError as error:
            raise DataError(f"{path} is missing (sample '{record.id}'): restore the file") from error
        parts.extend([rel, str(stat.st_size), str(stat.st_mtime_ns)])
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def _load_cached(path: Path) -> dict[str, np.ndarray] | None:
    """Cached arrays, or None when absent or unreadable (then the files are decoded again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile):
        return None


def _save_cached(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            np.savez(out, **arrays)

    atomic_write(path, write)

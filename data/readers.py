"""One reader per on-disk layout, each turning an official distribution into a `Listing`.

Readers only parse metadata and check that every listed file exists; decoding happens once,
later (`data/decoded.py`). How a mask file becomes a binary mask is also dataset knowledge, so
it lives here (`binarise_mask`).

Every path a listing or a fold file names is relative to the data root and must stay inside it:
`check_inside_root` refuses an absolute path (`/x`, `C:/x`, a network path) and one whose
`..` climbs above the root. The check is on the text of the path; a symbolic link inside the root
(e.g. images/ linked to another disk) is followed like any folder.

The classification-only sets (digits, cifar10, mnist, emnist) are arrays in a few official
files: `data/arrays.py` reads them and lists their samples as references "<subset>/<index>"
into those arrays rather than as files.
"""

from __future__ import annotations

import csv
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from constants import CLASSIFICATION_DATASETS, CUB, DATASETS, GENERIC, GLAS, OXFORD_FLOWERS, PH2, SYNTHETIC
from data.arrays import array_listing
from data.records import DataError, Listing, SampleRecord
from data.segmentation import READERS as SEGMENTATION_READERS

GLAS_CLASSES = ["benign", "malignant"]
PH2_CLASSES = ["common_nevus", "atypical_nevus", "melanoma"]
GENERIC_COLUMNS = ["id", "image", "mask", "label"]
GENERIC_SPLITS = ("train", "test")
# Oxford Flowers segmentations paint the background (0, 0, 254) and are stored as JPEG. Inside
# flat background JPEG noise stays within ~15 levels (Euclidean RGB distance), while bluish
# petals such as (90, 60, 180) or (60, 80, 200) sit 75+ away. A pixel is background when it lies
# within this distance of that blue.
# Chroma subsampling mixes colours over 2 px at the outline, so the mask comes out about one
# pixel wider than the painted flower.
OXFORD_BLUE = (0, 0, 254)
OXFORD_BLUE_TOLERANCE = 60
_PH2_NAME = re.compile(r"IMD\d+")
_PH2_DIAGNOSES = dict(zip(("0", "1", "2"), PH2_CLASSES))


def mask_threshold(dataset: str) -> float:
    """Grey level above which a mask pixel is foreground.

    GlaS masks hold gland instance ids (any id > 0 is a gland); CUB masks are soft averages of
    several annotators (majority = above 127.5); other sets store 0/255 (see `binarise_mask` for
    masks stored as 0/1 or with other grey levels).
    """
    _check_dataset(dataset)
    return {GLAS: 0.0, CUB: 127.5}.get(dataset, 127.0)


def binarise_mask(dataset: str, mask: Image.Image, source: Path | str | None = None) -> np.ndarray:
    """Boolean (H, W) foreground of a decoded mask file of `dataset`.

    Oxford Flowers has no mask file: the record points at the segmentation image, whose
    background is painted blue, so foreground = every pixel that is not that blue.
    GlaS palette/grey masks are compared on their raw values (instance ids), not on the
    palette's colours. CUB masks are soft: foreground above 127.5.

    Every other set (PH2, generic, synthetic) is read by the mask's 8-bit grey values:
      - only 0 and 255 (or only one of them): foreground = 255, the expected storage;
      - only 0 and 1 (with at least one 1): foreground = 1, a mask saved as 0/1;
      - any other grey level: foreground above mask_threshold (127), e.g. a JPEG-saved mask.
    The last two print a one-line warning on stderr naming the file (`source`, else the file
    Pillow opened), once per dataset and rule in a process: further masks read by the same rule
    are not named.
    """
    if dataset == OXFORD_FLOWERS:
        rgb = np.asarray(mask.convert("RGB"), dtype=np.int32)
        squared = ((rgb - np.asarray(OXFORD_BLUE, dtype=np.int32)) ** 2).sum(axis=2)
        return squared > OXFORD_BLUE_TOLERANCE ** 2
    if dataset == GLAS and mask.mode in ("P", "L", "I", "I;16"):
        return np.asarray(mask) > 0
    grey = np.asarray(mask.convert("L"))
    threshold = mask_threshold(dataset)
    if dataset in (GLAS, CUB):
        return grey > threshold
    present = np.flatnonzero(np.bincount(grey.ravel(), minlength=256))
    if set(present.tolist()) <= {0, 255}:
        return grey > threshold
    name = source if source is not None else getattr(mask, "filename", "") or "<in memory>"
    if set(present.tolist()) <= {0, 1}:
        _warn_once(dataset, "0/1", f"mask {name} holds only the values 0 and 1: read as 1 = foreground "
                   f"(further such {dataset} masks are read the same way without a warning)")
        return grey > 0
    _warn_once(dataset, "grey", f"mask {name} holds grey levels other than 0 and 255: pixels above "
               f"{threshold:g} are foreground (further such {dataset} masks are thresholded the same "
               "way without a warning)")
    return grey > threshold


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_once(dataset: str, rule: str, message: str) -> None:
    """One line on stderr the first time `dataset` needs `rule` in this process."""
    with _warned_lock:
        if (dataset, rule) in _warned:
            return
        _warned.add((dataset, rule))
    print(f"warning: {message}", file=sys.stderr, flush=True)


def check_inside_root(rel: str, sample_id: str, where: Path | str) -> None:
    """Refuse a listed path that is absolute or whose `..` climbs out of the data root.

    `where` names the listing (a file and line, or the root) for the one-line DataError.
    """
    text = rel.replace("\\", "/")
    depth = 0
    escapes = text.startswith("/") or re.match(r"[A-Za-z]:", text) is not None
    for part in text.split("/"):
        if part == "..":
            depth -= 1
            escapes = escapes or depth < 0
        elif part not in ("", "."):
            depth += 1
    if escapes:
        raise DataError(
            f"{where}: path {rel!r} of sample {sample_id!r} leaves the data root: list files by "
            "paths relative to the root and inside it (no leading '/', drive or '..' above it)"
        )


def read_listing(dataset: str, root: Path | None) -> Listing:
    """Parse the dataset at `root` in its official layout and check that every listed file exists.

    For the array datasets the official files are read whole (which validates them) and `root`
    may be None for digits, which scikit-learn ships.
    """
    _check_dataset(dataset)
    if dataset in CLASSIFICATION_DATASETS:
        listing = array_listing(dataset, None if root is None else Path(root))
        _check_listing(listing, Path(root or "."), files=False)
        return listing
    if root is None:
        raise DataError(f"{dataset} needs a data root: pass the folder that holds it")
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"dataset root {root} does not exist: pass the folder that holds {dataset} "
            "(cmds/download_*.sh fetch the public sets; create_folds.py generates synthetic)"
        )
    listing = _READERS[dataset](root)
    _check_listing(listing, root)
    return listing


def read_original_fold_csv(path: Path) -> list[SampleRecord]:
    """Records of one of the paper's fold CSVs (no header, quotechar '|', id,img,mask,label,tag)."""
    path = Path(path)
    records = []
    for line_no, row in enumerate(_csv_rows(path, quotechar="|"), start=1):
        if not row:
            continue
        if len(row) != 5 or not row[4].strip().lstrip("-").isdigit():
            raise DataError(
                f"{path} line {line_no}: expected 5 columns id,img,mask,label,tag (int) without a "
                "header; pass one of the original fold CSVs"
            )
        sample_id, image, mask, label, _tag = row
        for rel in (image, mask):
            if rel:
                check_inside_root(rel, sample_id, f"{path} line {line_no}")
        records.append(SampleRecord(id=sample_id, image=image, mask=mask or None, label=label))
    return records


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset '{dataset}': choose one of {', '.join(DATASETS)}")


def _check_listing(listing: Listing, root: Path, files: bool = True) -> None:
    if len(set(listing.classes)) != len(listing.classes):
        raise DataError(f"{root}: class names repeat in {listing.classes}; make them unique")
    known = set(listing.classes)
    seen: set[str] = set()
    for record in listing.train + (listing.test or []):
        if record.id in seen:
            raise DataError(f"{root}: sample id '{record.id}' is listed twice; make ids unique")
        seen.add(record.id)
        if record.label not in known:
            raise DataError(f"{root}: sample '{record.id}' has unknown class '{record.label}'")
        if not files:
            continue
        for rel in (record.image, record.mask):
            if rel is not None:
                check_inside_root(rel, record.id, f"data root {root}")
            if rel is not None and not (root / rel).is_file():
                raise DataError(
                    f"{root / rel} is missing (sample '{record.id}'): complete the download or "
                    "fix the listing"
                )


def _csv_rows(path: Path, quotechar: str = '"') -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"{path} is missing: point the dataset root at the folder that holds it")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.reader(handle, quotechar=quotechar))


def _id_table(path: Path) -> dict[str, str]:
    """'<id> <value>' lines of the CUB metadata files, in file order."""
    if not path.is_file():
        raise DataError(f"{path} is missing: extract CUB_200_2011.tgz into the dataset root")
    table = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{path} line {line_no}: expected '<id> <value>'; restore the file")
        table[parts[0]] = parts[1].strip()
    return table


def _read_glas(root: Path) -> Listing:
    """Grade.csv: header row, then name, patient id, grade (stray spaces removed), ..."""
    table = root / "Grade.csv"
    train, test = [], []
    for line_no, row in enumerate(_csv_rows(table)[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 3:
            raise DataError(f"{table} line {line_no}: expected name, patient ID, grade")
        name, grade = row[0].strip(), row[2].replace(" ", "")
        if grade not in GLAS_CLASSES:
            raise DataError(
                f"{table} line {line_no}: grade '{grade}' is not one of {GLAS_CLASSES}"
            )
        record = SampleRecord(id=name, image=f"{name}.bmp", mask=f"{name}_anno.bmp", label=grade)
        (test if name.startswith("test") else train).append(record)
    if not train or not test:
        raise DataError(f"{table}: needs train_* and test* rows; restore the official Grade.csv")
    return Listing(train=train, test=test, classes=list(GLAS_CLASSES))


def _read_cub(root: Path) -> Listing:
    """CUB_200_2011/*.txt with the official train/test split; masks from segmentations/."""
    base = root / "CUB_200_2011"
    classes_by_id = _id_table(base / "classes.txt")
    images = _id_table(base / "images.txt")
    labels = _id_table(base / "image_class_labels.txt")
    is_train = _id_table(base / "train_test_split.txt")
    train, test = [], []
    for image_id, rel in images.items():
        if image_id not in labels or image_id not in is_train:
            raise DataError(
                f"{base}: image id {image_id} lacks a class or a split line; restore the metadata"
            )
        class_id = labels[image_id]
        if class_id not in classes_by_id:
            raise DataError(f"{base / 'image_class_labels.txt'}: unknown class id {class_id}")
        record = SampleRecord(
            id=image_id,
            image=f"CUB_200_2011/images/{rel}",
            mask=str(PurePosixPath("segmentations") / PurePosixPath(rel).with_suffix(".png")),
            label=classes_by_id[class_id],
        )
        (train if is_train[image_id] == "1" else test).append(record)
    return Listing(train=train, test=test, classes=list(classes_by_id.values()))


def _read_ph2(root: Path) -> Listing:
    """The generic layout when labels.csv exists, else the official PH2 distribution."""
    if (root / "labels.csv").is_file():
        listing = _read_generic(root)
        unknown = sorted(set(listing.classes) - set(PH2_CLASSES))
        if unknown:
            raise DataError(
                f"{root / 'labels.csv'}: labels {unknown} are not PH2 classes {PH2_CLASSES}"
            )
        return Listing(train=listing.train, test=listing.test, classes=list(PH2_CLASSES))
    return _read_ph2_official(root)


def _read_ph2_official(root: Path) -> Listing:
    """PH2_dataset.txt rows '|| IMDxxx || histology || clinical 0/1/2 || ...'."""
    table = root / "PH2_dataset.txt"
    if not table.is_file():
        raise DataError(
            f"{table} is missing: pass the PH2Dataset folder (it holds PH2_dataset.txt and "
            "'PH2 Dataset images/') or a folder with labels.csv"
        )
    records = []
    for line_no, line in enumerate(table.read_text(encoding="utf-8", errors="replace").splitlines(),
                                   start=1):
        fields = [field.strip() for field in line.split("||")]
        if len(fields) < 4 or not _PH2_NAME.fullmatch(fields[1]):
            continue
        name, diagnosis = fields[1], fields[3]
        if diagnosis not in _PH2_DIAGNOSES:
            raise DataError(
                f"{table} line {line_no}: clinical diagnosis '{diagnosis}' of {name} is not 0, 1 or 2"
            )
        folder = f"PH2 Dataset images/{name}"
        records.append(SampleRecord(
            id=name,
            image=f"{folder}/{name}_Dermoscopic_Image/{name}.bmp",
            mask=f"{folder}/{name}_lesion/{name}_lesion.bmp",
            label=_PH2_DIAGNOSES[diagnosis],
        ))
    if not records:
        raise DataError(f"{table}: no '|| IMDxxx || ...' rows found; restore the official table")
    return Listing(train=records, test=None, classes=list(PH2_CLASSES))


def _read_oxford_flowers(root: Path) -> Listing:
    """imagelabels.mat + setid.mat; train pool = trnid + valid, test = tstid (1-based indices)."""
    try:
        from scipy.io import loadmat  # only this layout needs scipy
    except ImportError as error:
        raise DataError("reading Oxford Flowers .mat files needs scipy: pip install scipy") from error
    mats = {}
    for name in ("imagelabels.mat", "setid.mat"):
        if not (root / name).is_file():
            raise DataError(f"{root / name} is missing: download it next to jpg/ and segmim/")
        mats[name] = loadmat(root / name)
    try:
        labels = np.asarray(mats["imagelabels.mat"]["labels"], dtype=np.int64).ravel()
        sets = {key: np.asarray(mats["setid.mat"][key], dtype=np.int64).ravel()
                for key in ("trnid", "valid", "tstid")}
    except KeyError as error:
        raise DataError(f"{root}: .mat file lacks variable {error}; restore the official files") from error
    if labels.size == 0 or labels.min() < 1:
        raise DataError(f"{root / 'imagelabels.mat'}: labels must be 1-based class numbers")
    classes = [f"class_{number:03d}" for number in range(1, int(labels.max()) + 1)]
    pool = np.concatenate([sets["trnid"], sets["valid"]])
    test = sets["tstid"]
    if not pool.size or not test.size or np.intersect1d(pool, test).size \
            or min(pool.min(), test.min()) < 1 or max(pool.max(), test.max()) > labels.size:
        raise DataError(
            f"{root / 'setid.mat'}: splits are empty, overlap or fall outside 1..{labels.size}"
        )

    def record(index: int) -> SampleRecord:
        return SampleRecord(
            id=f"image_{index:05d}",
            image=f"jpg/image_{index:05d}.jpg",
            mask=f"segmim/segmim_{index:05d}.jpg",
            label=classes[labels[index - 1] - 1],
        )

    return Listing(
        train=[record(int(i)) for i in np.sort(pool)],
        test=[record(int(i)) for i in np.sort(test)],
        classes=classes,
    )


def _read_generic(root: Path) -> Listing:
    """labels.csv: header id,image,mask,label[,split]; empty mask = none; split train|test."""
    table = root / "labels.csv"
    rows = _csv_rows(table)
    if not rows or [cell.strip() for cell in rows[0]] not in (GENERIC_COLUMNS,
                                                              GENERIC_COLUMNS + ["split"]):
        raise DataError(f"{table}: the header must be 'id,image,mask,label' (optionally ',split')")
    width = len(rows[0])
    train, test = [], []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if len(cells) != width or not (cells[0] and cells[1] and cells[3]):
            raise DataError(f"{table} line {line_no}: expected {width} columns with id, image, label")
        split = cells[4] if width == 5 and cells[4] else "train"
        if split not in GENERIC_SPLITS:
            raise DataError(f"{table} line {line_no}: split '{split}' is not train or test")
        for rel in (cells[1], cells[2]):
            if rel:
                check_inside_root(rel, cells[0], f"{table} line {line_no}")
        record = SampleRecord(id=cells[0], image=cells[1], mask=cells[2] or None, label=cells[3])
        (test if split == "test" else train).append(record)
    if not train:
        raise DataError(f"{table}: no train rows; list the samples below the header")
    classes = sorted({record.label for record in train + test})
    return Listing(train=train, test=test or None, classes=classes)


_READERS: dict[str, Callable[[Path], Listing]] = {
    **SEGMENTATION_READERS,
    GLAS: _read_glas,
    CUB: _read_cub,
    PH2: _read_ph2,
    OXFORD_FLOWERS: _read_oxford_flowers,
    GENERIC: _read_generic,
    SYNTHETIC: _read_generic,
}

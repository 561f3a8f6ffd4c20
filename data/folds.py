"""Train/valid/test folds: made once from a seed, written as CSVs, read back by every run.

Scheme (method-spec 1.2): the official test set, when there is one, is copied unchanged into
every fold; otherwise a per-class test set is carved once per split. The rest of each class is
shuffled and cut into chunks of ceil(valid_ratio * n_c); fold f validates on chunk f (the last
chunk may be smaller; with fewer chunks than folds, fold f takes chunk f mod #chunks).
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import yaml

from atomic_io import atomic_write_text
from constants import SUBSETS
from data.readers import check_inside_root, read_original_fold_csv
from data.records import DataError, Fold, Listing, SampleRecord

FOLD_COLUMNS = ["id", "image", "mask", "label"]
# Ratios such as 0.2 * 35 come out as 7.000000000000001 in floating point; without this slack
# the rounding up would add a sample.
_CEIL_SLACK = 1e-9
_ORIGINAL_TRAIN_CSV = re.compile(r"train_s_(\d+)_f_(\d+)\.csv")


def make_folds(
    listing: Listing,
    seed: int,
    nbr_splits: int = 1,
    nbr_folds: int = 5,
    valid_ratio: float = 0.2,
    test_ratio: float = 0.2,
) -> dict[tuple[int, int], Fold]:
    """Folds keyed by (split, fold); the same arguments always give the same folds.

    Each split draws from its own generator seeded with (seed, split), so adding splits never
    changes the earlier ones, and class members are sorted by id first so the result does not
    depend on the order of the listing.
    """
    _check_arguments(seed, nbr_splits, nbr_folds, valid_ratio, test_ratio)
    members = _members_by_class(listing)
    official_test = listing.test is not None
    folds = {}
    for split in range(nbr_splits):
        rng = np.random.default_rng([seed, split])
        test_ids: set[str] = set()
        pools = {}
        for name, records in members.items():
            shuffled = [records[i] for i in rng.permutation(len(records))]
            n_test = 0 if official_test else _ceil(test_ratio * len(records))
            test_ids.update(record.id for record in shuffled[:n_test])
            pools[name] = shuffled[n_test:]
            _check_pool_size(name, len(records), len(pools[name]), valid_ratio, official_test)
        test = list(listing.test) if official_test else _keep(listing.train, test_ids)
        for fold in range(nbr_folds):
            valid_ids = _valid_ids(pools, fold, valid_ratio)
            folds[(split, fold)] = Fold(
                train=[r for r in listing.train if r.id not in valid_ids and r.id not in test_ids],
                valid=_keep(listing.train, valid_ids),
                test=test,
                classes=list(listing.classes),
            )
    return folds


def write_folds(
    folds_root: Path, dataset: str, folds: dict[tuple[int, int], Fold], seed: int, force: bool = False
) -> list[Path]:
    """Write each fold to folds_root/<dataset>/split_<s>/fold_<f>/ and return those folders.

    Folds that differ from those already there are refused unless `force` (runs were made with those and
    record no copy of them), before anything is written; writing the same folds again changes nothing.
    """
    files = {fold_dir(folds_root, dataset, split, fold_index): _fold_files(fold, seed)
             for (split, fold_index), fold in sorted(folds.items())}
    changed = [folder for folder, texts in files.items() if _differs(folder, texts)]
    if changed and not force:
        raise DataError(f"{changed[0]} already holds other folds ({len(changed)} fold(s) would change) and the runs "
                        "made with them depend on them: pass --force to replace them, or --out another folder")
    for folder, texts in files.items():
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            atomic_write_text(folder / name, text)
    return list(files)


def _fold_files(fold: Fold, seed: int) -> dict[str, str]:
    """{file name: content} of one fold folder."""
    return {**{f"{subset}.csv": _records_csv(getattr(fold, subset)) for subset in SUBSETS},
            "encoding.yaml": yaml.safe_dump(fold.encoding, sort_keys=False), "seed.txt": f"{seed}\n"}


def _differs(folder: Path, texts: dict[str, str]) -> bool:
    """Whether the folder holds a fold file whose content differs from `texts` (a missing file does not)."""
    for name, text in texts.items():
        try:
            if (folder / name).read_text(encoding="utf-8") != text:
                return True
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            return True
    return False


def load_fold(folds_root: Path, dataset: str, split: int, fold: int) -> Fold:
    """Read back one fold written by `write_folds`, checking labels against its encoding and that
    every path stays inside the data root (`data.readers.check_inside_root`)."""
    folder = fold_dir(folds_root, dataset, split, fold)
    if not folder.is_dir():
        raise DataError(
            f"no fold at {folder}: run: python create_folds.py --dataset {dataset} "
            f"--data_root <dataset folder> --out {folds_root}"
        )
    classes = _classes_from_encoding(folder / "encoding.yaml")
    subsets = {subset: _read_records_csv(folder / f"{subset}.csv", dataset) for subset in SUBSETS}
    return _fold(subsets, classes, folder)


def import_original_folds(
    src_dir: Path, folds_root: Path, dataset: str, seed: int = 0, force: bool = False
) -> list[Path]:
    """Convert the paper's {train,valid,test}_s_<s>_f_<f>.csv (+ encoding.yaml) found under
    `src_dir` into this project's fold format, so its exact splits can be reused.

    `seed` is recorded in seed.txt; the paper's folds were made with seed 0.
    """
    src_dir = Path(src_dir)
    found = sorted(src_dir.rglob("train_s_*_f_*.csv")) if src_dir.is_dir() else []
    folds = {}
    for train_csv in found:
        match = _ORIGINAL_TRAIN_CSV.fullmatch(train_csv.name)
        if match is None:
            continue
        split, fold = int(match.group(1)), int(match.group(2))
        folder = train_csv.parent
        subsets = {}
        for subset in SUBSETS:
            path = folder / f"{subset}_s_{split}_f_{fold}.csv"
            if not path.is_file():
                raise DataError(f"{path} is missing: copy the whole original fold folder")
            subsets[subset] = read_original_fold_csv(path)
        folds[(split, fold)] = _fold(subsets, _classes_from_encoding(folder / "encoding.yaml"), folder)
    if not folds:
        raise DataError(
            f"no train_s_<s>_f_<f>.csv under {src_dir}: pass the original folds/<dataset> folder"
        )
    return write_folds(folds_root, dataset, folds, seed, force)


def fold_dir(folds_root: Path, dataset: str, split: int, fold: int) -> Path:
    return Path(folds_root) / dataset / f"split_{split}" / f"fold_{fold}"


def _ceil(value: float) -> int:
    return math.ceil(value - _CEIL_SLACK)


def _check_arguments(
    seed: int, nbr_splits: int, nbr_folds: int, valid_ratio: float, test_ratio: float
) -> None:
    if seed < 0:
        raise DataError(f"seed must be >= 0 (got {seed})")
    if nbr_splits < 1 or nbr_folds < 1:
        raise DataError(f"nbr_splits and nbr_folds must be >= 1 (got {nbr_splits}, {nbr_folds})")
    for name, ratio in (("valid_ratio", valid_ratio), ("test_ratio", test_ratio)):
        if not 0.0 < ratio < 1.0:
            raise DataError(f"{name} must lie strictly between 0 and 1 (got {ratio})")


def _members_by_class(listing: Listing) -> dict[str, list[SampleRecord]]:
    members: dict[str, list[SampleRecord]] = {name: [] for name in listing.classes}
    for record in listing.train:
        if record.label not in members:
            raise DataError(f"sample '{record.id}' has class '{record.label}' missing from the classes")
        members[record.label].append(record)
    for name, records in members.items():
        if not records:
            raise DataError(
                f"class '{name}' has no training sample: add samples or remove the class"
            )
        records.sort(key=lambda record: record.id)
    return members


def _check_pool_size(
    name: str, n_class: int, n_pool: int, valid_ratio: float, official_test: bool
) -> None:
    """A class needs at least one train and one valid sample in every fold (and a test one)."""
    if n_pool >= 2 and _ceil(valid_ratio * n_pool) < n_pool:
        return
    parts = "train and valid" if official_test else "train, valid and test"
    raise DataError(
        f"class '{name}' has {n_class} training sample(s): too few for {parts} parts; "
        "add samples or lower the ratios"
    )


def _valid_ids(pools: dict[str, list[SampleRecord]], fold: int, valid_ratio: float) -> set[str]:
    ids = set()
    for pool in pools.values():
        size = _ceil(valid_ratio * len(pool))
        chunk = fold % math.ceil(len(pool) / size)
        ids.update(record.id for record in pool[chunk * size:(chunk + 1) * size])
    return ids


def _keep(records: list[SampleRecord], ids: set[str]) -> list[SampleRecord]:
    return [record for record in records if record.id in ids]


def _records_csv(records: list[SampleRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FOLD_COLUMNS)
    for record in records:
        writer.writerow([record.id, record.image, record.mask or "", record.label])
    return buffer.getvalue()


def _read_records_csv(path: Path, dataset: str) -> list[SampleRecord]:
    if not path.is_file():
        raise DataError(
            f"{path} is missing: run: python create_folds.py --dataset {dataset} "
            "--data_root <dataset folder>"
        )
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or rows[0] != FOLD_COLUMNS:
        raise DataError(f"{path}: the header must be 'id,image,mask,label'; regenerate the folds")
    records = []
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(FOLD_COLUMNS):
            raise DataError(f"{path} line {line_no}: expected 4 columns; regenerate the folds")
        for rel in (row[1], row[2]):
            if rel:
                check_inside_root(rel, row[0], f"{path} line {line_no}")
        records.append(SampleRecord(id=row[0], image=row[1], mask=row[2] or None, label=row[3]))
    return records


def _classes_from_encoding(path: Path) -> list[str]:
    """Class names ordered by their index; indices must be exactly 0..C-1."""
    if not path.is_file():
        raise DataError(f"{path} is missing: the fold folder must hold its encoding.yaml")
    try:
        encoding = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DataError(f"{path} is not valid YAML ({error.__class__.__name__}); restore it") from error
    if not isinstance(encoding, dict) \
            or not all(isinstance(index, int) for index in encoding.values()) \
            or sorted(encoding.values()) != list(range(len(encoding))):
        raise DataError(f"{path} must map each class name to a distinct index 0..C-1")
    return [str(name) for name, _ in sorted(encoding.items(), key=lambda item: item[1])]


def _fold(subsets: dict[str, list[SampleRecord]], classes: list[str], where: Path) -> Fold:
    known = set(classes)
    seen: dict[str, str] = {}
    for subset, records in subsets.items():
        for record in records:
            if record.label not in known:
                raise DataError(
                    f"{where}: label '{record.label}' of sample '{record.id}' is absent from "
                    "encoding.yaml; regenerate the folds"
                )
            if record.id in seen:
                place = f"twice in {subset}" if seen[record.id] == subset else \
                    f"in both {seen[record.id]} and {subset}"
                raise DataError(f"{where}: sample '{record.id}' is {place}; regenerate the folds")
            seen[record.id] = subset
    return Fold(classes=classes, **subsets)

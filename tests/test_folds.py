"""Fold generation, fold files, conversion of the paper's folds, and the create_folds.py CLI."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from constants import PH2, SYNTHETIC
from data.folds import import_original_folds, load_fold, make_folds, write_folds
from data.readers import read_listing
from data.records import DataError, Fold, Listing, SampleRecord
from data.synthetic import generate_synthetic

REPO = Path(__file__).resolve().parents[1]


def _records(counts: dict[str, int], prefix: str = "") -> list[SampleRecord]:
    return [
        SampleRecord(f"{prefix}{name}_{index:04d}", f"img/{prefix}{name}_{index}.png",
                     f"msk/{prefix}{name}_{index}.png", name)
        for name, count in counts.items()
        for index in range(count)
    ]


def _listing(counts: dict[str, int], test_counts: dict[str, int] | None = None) -> Listing:
    test = _records(test_counts, prefix="test_") if test_counts else None
    return Listing(train=_records(counts), test=test, classes=list(counts))


def _per_class(records: list[SampleRecord]) -> Counter:
    return Counter(record.label for record in records)


def _ids(records: list[SampleRecord]) -> set[str]:
    return {record.id for record in records}


PH2_COUNTS = {"common_nevus": 60, "atypical_nevus": 60, "melanoma": 30}


def test_same_seed_same_folds_other_seed_or_split_other_folds() -> None:
    listing = _listing(PH2_COUNTS)
    first = make_folds(listing, seed=0, nbr_splits=2)
    assert first == make_folds(listing, seed=0, nbr_splits=2)
    # The order of the listing does not matter, only the seed.
    shuffled = Listing(train=listing.train[::-1], test=None, classes=listing.classes)
    assert {k: _ids(f.valid) for k, f in make_folds(shuffled, seed=0, nbr_splits=2).items()} == \
        {k: _ids(f.valid) for k, f in first.items()}
    other = make_folds(listing, seed=1, nbr_splits=2)
    assert _ids(other[(0, 0)].test) != _ids(first[(0, 0)].test)
    assert _ids(first[(1, 0)].test) != _ids(first[(0, 0)].test)


def test_ph2_like_counts_without_official_test() -> None:
    folds = make_folds(_listing(PH2_COUNTS), seed=0)
    fold = folds[(0, 0)]
    assert (len(fold.train), len(fold.valid), len(fold.test)) == (95, 25, 30)
    assert _per_class(fold.test) == {"common_nevus": 12, "atypical_nevus": 12, "melanoma": 6}
    assert _per_class(fold.valid) == {"common_nevus": 10, "atypical_nevus": 10, "melanoma": 5}
    # Chunks of 10/10/5 out of 48/48/24: the last fold takes what is left.
    assert _per_class(folds[(0, 4)].valid) == {"common_nevus": 8, "atypical_nevus": 8, "melanoma": 4}


def test_folds_are_disjoint_cover_everything_and_share_one_test_set() -> None:
    listing = _listing(PH2_COUNTS)
    folds = make_folds(listing, seed=3)
    everything = _ids(listing.train)
    test = _ids(folds[(0, 0)].test)
    valid_union: set[str] = set()
    for fold in folds.values():
        train, valid = _ids(fold.train), _ids(fold.valid)
        assert not (train & valid) and not (train & test) and not (valid & test)
        assert train | valid | test == everything
        assert _ids(fold.test) == test
        assert not (valid & valid_union)  # each fold validates on its own chunk
        valid_union |= valid
    assert valid_union == everything - test


def test_official_test_set_is_kept_unchanged_glas_counts() -> None:
    """GlaS: pool 37/48, official test 37/43 -> fold 0 67/18/80, fold 4 72/13 (method-spec 1.2)."""
    listing = _listing({"benign": 37, "malignant": 48}, {"benign": 37, "malignant": 43})
    folds = make_folds(listing, seed=0)
    for fold in folds.values():
        assert fold.test == listing.test
    assert (len(folds[(0, 0)].train), len(folds[(0, 0)].valid)) == (67, 18)
    assert _per_class(folds[(0, 0)].valid) == {"benign": 8, "malignant": 10}
    assert (len(folds[(0, 4)].train), len(folds[(0, 4)].valid)) == (72, 13)


def test_cub_like_counts() -> None:
    counts = {f"{i:03d}.bird": 30 if i < 194 else 29 for i in range(200)}
    folds = make_folds(_listing(counts, {name: 1 for name in counts}), seed=0)
    assert (len(folds[(0, 0)].train), len(folds[(0, 0)].valid)) == (4794, 1200)
    assert (len(folds[(0, 4)].train), len(folds[(0, 4)].valid)) == (4800, 1194)


def test_small_class_with_fewer_chunks_than_folds_still_validates_every_fold() -> None:
    folds = make_folds(_listing({"a": 6, "b": 40}, {"a": 2, "b": 2}), seed=0)
    assert all(_per_class(fold.valid)["a"] == 2 for fold in folds.values())
    assert _ids(folds[(0, 3)].valid) & _ids(folds[(0, 0)].valid)  # chunk 0 again


@pytest.mark.parametrize("counts, test_counts, fragment", [
    ({"a": 10, "b": 0}, None, "class 'b' has no training sample"),
    ({"a": 10, "b": 2}, None, "class 'b' has 2"),
    ({"a": 10, "b": 1}, {"a": 1, "b": 1}, "class 'b' has 1"),
])
def test_classes_too_small_are_named(counts, test_counts, fragment) -> None:
    with pytest.raises(DataError) as excinfo:
        make_folds(_listing(counts, test_counts), seed=0)
    assert fragment in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_bad_arguments() -> None:
    listing = _listing(PH2_COUNTS)
    for kwargs in ({"valid_ratio": 0.0}, {"test_ratio": 1.0}, {"nbr_folds": 0}, {"seed": -1}):
        with pytest.raises(DataError):
            make_folds(listing, **{"seed": 0, **kwargs})


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    listing = _listing(PH2_COUNTS)
    listing.train[0] = SampleRecord("no_mask", "img/a, b.png", None, "melanoma")
    folds = make_folds(listing, seed=7)
    written = write_folds(tmp_path, "demo", folds, seed=7)
    assert written[0] == tmp_path / "demo" / "split_0" / "fold_0"
    assert len(written) == 5
    folder = written[0]
    assert sorted(p.name for p in folder.iterdir()) == [
        "encoding.yaml", "seed.txt", "test.csv", "train.csv", "valid.csv"]
    assert (folder / "train.csv").read_text().splitlines()[0] == "id,image,mask,label"
    assert yaml.safe_load((folder / "encoding.yaml").read_text()) == {
        "common_nevus": 0, "atypical_nevus": 1, "melanoma": 2}
    assert (folder / "seed.txt").read_text().strip() == "7"
    for (split, fold), expected in folds.items():
        assert load_fold(tmp_path, "demo", split, fold) == expected
    assert not list(folder.glob("*.tmp"))


def test_load_fold_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_fold(tmp_path, "ph2", 0, 0)
    assert "python create_folds.py --dataset ph2" in str(excinfo.value)
    write_folds(tmp_path, "demo", make_folds(_listing(PH2_COUNTS), seed=0), seed=0)
    folder = tmp_path / "demo" / "split_0" / "fold_0"
    (folder / "encoding.yaml").write_text("common_nevus: 0\natypical_nevus: 1\n")
    with pytest.raises(DataError) as excinfo:
        load_fold(tmp_path, "demo", 0, 0)
    assert "'melanoma'" in str(excinfo.value) and "encoding.yaml" in str(excinfo.value)
    (folder / "valid.csv").unlink()
    with pytest.raises(DataError) as excinfo:
        load_fold(tmp_path, "demo", 0, 0)
    assert "valid.csv" in str(excinfo.value) and "\n" not in str(excinfo.value)


def _write_original_fold(folder: Path, split: int, fold: int, subsets: dict) -> None:
    folder.mkdir(parents=True)
    for subset, rows in subsets.items():
        with (folder / f"{subset}_s_{split}_f_{fold}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle, quotechar="|", lineterminator="\r\n")
            for record in rows:
                tag = 1 if subset == "train" else 0
                writer.writerow([record.id, record.image, record.mask or "", record.label, tag])
    (folder / "encoding.yaml").write_text("benign: 0\nmalignant: 1\n")


def test_import_original_folds(tmp_path: Path) -> None:
    records = _records({"benign": 3, "malignant": 3})
    records[0] = SampleRecord("0", "train_1.bmp", None, "benign")
    subsets = {"train": records[:2] + records[3:5], "valid": [records[2], records[5]],
               "test": [SampleRecord("9", "testA_1,x.bmp", "testA_1_anno.bmp", "malignant")]}
    _write_original_fold(tmp_path / "orig" / "glas" / "split_0" / "fold_0", 0, 0, subsets)
    written = import_original_folds(tmp_path / "orig" / "glas", tmp_path / "folds", "glas")
    assert written == [tmp_path / "folds" / "glas" / "split_0" / "fold_0"]
    assert load_fold(tmp_path / "folds", "glas", 0, 0) == Fold(classes=["benign", "malignant"],
                                                                **subsets)
    with pytest.raises(DataError):
        import_original_folds(tmp_path / "nothing", tmp_path / "folds", "glas")


def test_ph2_real_fold_counts(ph2_root: Path) -> None:
    fold = make_folds(read_listing(PH2, ph2_root), seed=0)[(0, 0)]
    assert (len(fold.train), len(fold.valid), len(fold.test)) == (95, 25, 30)


@pytest.mark.parametrize("dataset", [PH2, SYNTHETIC])
def test_folds_in_the_repository_match_the_code(dataset: str, tmp_path: Path, request) -> None:
    """The folds kept under folds/ are what create_folds.py makes now with its defaults."""
    if not (REPO / "folds" / dataset / "split_0" / "fold_0").is_dir():
        pytest.skip(f"folds/{dataset} has not been generated")
    if dataset == PH2:
        root = request.getfixturevalue("ph2_root")
    else:
        root = generate_synthetic(tmp_path / "synthetic")
    folds = make_folds(read_listing(dataset, root), seed=0)
    for (split, fold), expected in folds.items():
        assert load_fold(REPO / "folds", dataset, split, fold) == expected


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "create_folds.py", *args], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_missing_data_root_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _cli("--dataset", "ph2", "--data_root", str(tmp_path / "absent"),
                  "--out", str(tmp_path / "folds"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "absent" in result.stderr
    assert not (tmp_path / "folds").exists()


def test_cli_generates_the_synthetic_set_then_its_folds(tmp_path: Path) -> None:
    result = _cli("--dataset", "synthetic", "--data_root", str(tmp_path / "syn"),
                  "--out", str(tmp_path / "folds"), "--nbr_folds", "2")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "syn" / "labels.csv").is_file()
    fold = load_fold(tmp_path / "folds", "synthetic", 0, 1)
    assert (len(fold.train) + len(fold.valid), len(fold.test)) == (96, 24)
    assert str(tmp_path / "folds" / "synthetic") in result.stdout

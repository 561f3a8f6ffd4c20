"""Data problems a user meets are one clear line, never a traceback or a silent wrong result:
paths leaving the data root, empty image files, a damaged kNN cache, a pixel-labelled sample
without a mask."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_runs import TINY

import main
from al.pseudo_label import FeatureSettings, load_or_build
from constants import GENERIC, L
from data.decoded import DecodedSample, decode_records
from data.folds import load_fold, make_folds, write_folds
from data.readers import check_inside_root, read_listing, read_original_fold_csv
from data.records import DataError, Fold, SampleRecord
from data.synthetic import generate_synthetic
from data.views import Geometry
from engine.resident import TrainPool
from parseit import exit_on_error

ESCAPING = ["../../etc/passwd", "images/../../secret.png", "/etc/passwd", "C:/Windows/x.png",
            "..\\..\\x.png", "\\\\server\\share\\x.png"]


def _one_line(excinfo: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, DataError)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _write_generic(root: Path, rows: list[list[str]]) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for index in range(4):
        pixels = np.random.default_rng(index).integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"s{index}.png")
        Image.fromarray(np.full((6, 7), 255 * (index % 2), dtype=np.uint8)).save(
            root / "masks" / f"s{index}.png")
    with (root / "labels.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["id", "image", "mask", "label"], *rows])


# --- paths stay inside the data root ---------------------------------------------------------

@pytest.mark.parametrize("rel", ["images/s0.png", "./images/s0.png", "images/../images/s0.png",
                                 "a/b/../../images/s0.png", "..data/s0.png"])
def test_paths_inside_the_root_pass(rel: str) -> None:
    check_inside_root(rel, "s0", "labels.csv line 2")


@pytest.mark.parametrize("rel", ESCAPING)
def test_paths_leaving_the_root_are_refused(rel: str) -> None:
    with pytest.raises(DataError) as excinfo:
        check_inside_root(rel, "s0", "labels.csv line 2")
    _one_line(excinfo, "labels.csv line 2", "'s0'", repr(rel), "data root")


@pytest.mark.parametrize("column", [1, 2])
@pytest.mark.parametrize("rel", ["../../etc/passwd", "/etc/passwd"])
def test_labels_csv_with_a_path_outside_the_root_is_refused(tmp_path: Path, column: int, rel: str) -> None:
    data = tmp_path / "data"
    rows = [["s0", "images/s0.png", "masks/s0.png", "cat"], ["s1", "images/s1.png", "masks/s1.png", "dog"]]
    rows[1][column] = rel
    _write_generic(data, rows)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("outside")  # exists: the existence check must not pass it
    with pytest.raises(DataError) as excinfo:
        read_listing(GENERIC, data)
    _one_line(excinfo, "labels.csv line 3", "'s1'", repr(rel))


@pytest.mark.parametrize("rel", ["../../etc/passwd", "/etc/passwd", "images/../../x.png"])
@pytest.mark.parametrize("column", ["image", "mask"])
def test_fold_csv_with_a_path_outside_the_root_is_refused(tmp_path: Path, rel: str, column: str) -> None:
    records = [SampleRecord(f"s{i}", f"images/s{i}.png", f"masks/s{i}.png", "cat") for i in range(3)]
    bad = SampleRecord("s9", "images/s9.png", "masks/s9.png", "cat")
    bad = SampleRecord(**{**bad.__dict__, column: rel})
    fold = Fold(train=records[:1], valid=[records[1], bad], test=records[2:], classes=["cat"])
    write_folds(tmp_path, GENERIC, {(0, 0): fold}, seed=0)
    with pytest.raises(DataError) as excinfo:
        load_fold(tmp_path, GENERIC, 0, 0)
    _one_line(excinfo, "valid.csv line 3", "'s9'", repr(rel))


def test_original_fold_csv_with_a_path_outside_the_root_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train_s_0_f_0.csv"
    path.write_text("0,train_1.bmp,train_1_anno.bmp,benign,1\r\n1,/etc/passwd,,benign,1\r\n")
    with pytest.raises(DataError) as excinfo:
        read_original_fold_csv(path)
    _one_line(excinfo, "train_s_0_f_0.csv line 2", "'1'", "'/etc/passwd'")


def test_decoding_refuses_a_record_outside_the_root(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write_generic(data, [["s0", "images/s0.png", "masks/s0.png", "cat"]])
    Image.fromarray(np.zeros((6, 7, 3), dtype=np.uint8)).save(tmp_path / "outside.png")
    record = SampleRecord("s0", "../outside.png", None, "cat")
    with pytest.raises(DataError) as excinfo:
        decode_records([record], data, GENERIC, {"cat": 0}, progress=False)
    _one_line(excinfo, "'s0'", "'../outside.png'")


# --- unreadable image files -------------------------------------------------------------------

@pytest.mark.parametrize("which", ["image", "mask"])
def test_a_zero_byte_png_is_one_line_naming_the_file(tmp_path: Path, which: str) -> None:
    _write_generic(tmp_path, [["s0", "images/s0.png", "masks/s0.png", "cat"]])
    (tmp_path / f"{which}s" / "s0.png").write_bytes(b"")
    record = SampleRecord("s0", "images/s0.png", "masks/s0.png", "cat")
    with pytest.raises(DataError) as excinfo:
        decode_records([record], tmp_path, GENERIC, {"cat": 0}, progress=False)
    _one_line(excinfo, f"{which}s/s0.png", "empty", "'s0'")


def test_a_truncated_png_is_one_line_naming_the_file(tmp_path: Path) -> None:
    _write_generic(tmp_path, [["s0", "images/s0.png", "masks/s0.png", "cat"]])
    image = tmp_path / "images" / "s0.png"
    image.write_bytes(image.read_bytes()[:60])
    with pytest.raises(DataError) as excinfo:
        decode_records([SampleRecord("s0", "images/s0.png", None, "cat")], tmp_path, GENERIC,
                       {"cat": 0}, progress=False)
    _one_line(excinfo, "images/s0.png", "cannot be read")


def test_an_image_beyond_pillows_pixel_limit_is_one_line(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _write_generic(tmp_path, [["s0", "images/s0.png", "masks/s0.png", "cat"]])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 6x7 = 42 pixels > 2 x 10
    with pytest.raises(DataError) as excinfo:
        decode_records([SampleRecord("s0", "images/s0.png", None, "cat")], tmp_path, GENERIC,
                       {"cat": 0}, progress=False)
    _one_line(excinfo, "images/s0.png", "'s0'")


# --- the kNN cache of Label_prop --------------------------------------------------------------

SETTINGS = FeatureSettings(bins=16, lo=0.0, hi=1.0, resize_h=16, smooth=True, smooth_ksize=3,
                           smooth_sigma=0.9, enhance_color=True, enhance_factor=3.0)


def _knn_inputs() -> tuple[list[str], list[int], list[torch.Tensor]]:
    rng = np.random.default_rng(0)
    images = [torch.from_numpy(rng.integers(0, 256, size=(3, 20, 24), dtype=np.uint8)) for _ in range(6)]
    return [f"u{i}" for i in range(6)], [0, 1, 0, 1, 2, 2], images


def _assert_same(built, fresh) -> None:
    assert built.ids == fresh.ids
    assert torch.equal(built.labels, fresh.labels) and torch.equal(built.hists, fresh.hists)
    assert built.normalisers.keys() == fresh.normalisers.keys()
    assert all(torch.equal(built.normalisers[c], fresh.normalisers[c]) for c in fresh.normalisers)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "text", "wrong_content"])
def test_a_damaged_knn_cache_is_rebuilt_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      damage: str) -> None:
    ids, labels, images = _knn_inputs()
    cpu = torch.device("cpu")
    fresh = load_or_build(tmp_path / "fresh", ids, labels, images, SETTINGS, 4, cpu, progress=False)
    folder = tmp_path / "knn_cache"
    load_or_build(folder, ids, labels, images, SETTINGS, 4, cpu, progress=False)
    (path,) = folder.glob("histograms-*.pt")
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00garbage\xff" * 20)
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "text":  # torch.load raises KeyError on it
        path.write_bytes(b"hello\n")
    else:  # a readable file for these ids that holds the wrong thing
        torch.save({"ids": ids, "labels": "?", "hists": torch.zeros(2), "normalisers": {}}, path)
    capsys.readouterr()

    rebuilt = load_or_build(folder, ids, labels, images, SETTINGS, 4, cpu, progress=False)

    _assert_same(rebuilt, fresh)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "rebuilding" in err[0], err
    # The rewritten file is whole again: the next call reads it, silently.
    _assert_same(load_or_build(folder, ids, labels, images, SETTINGS, 4, cpu, progress=False), fresh)
    assert capsys.readouterr().err == ""


def test_a_knn_cache_of_other_ids_is_rebuilt_silently(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ids, labels, images = _knn_inputs()
    cpu = torch.device("cpu")
    load_or_build(tmp_path, ids[:4], labels[:4], images[:4], SETTINGS, 4, cpu, progress=False)
    fresh = load_or_build(tmp_path / "fresh", ids, labels, images, SETTINGS, 4, cpu, progress=False)
    capsys.readouterr()
    _assert_same(load_or_build(tmp_path, ids, labels, images, SETTINGS, 4, cpu, progress=False), fresh)
    assert capsys.readouterr().err == ""


# --- a pixel-labelled sample without a mask ---------------------------------------------------

def _pool() -> TrainPool:
    image = torch.zeros((3, 16, 16), dtype=torch.uint8)
    samples = [DecodedSample("with", 0, image, torch.ones((16, 16), dtype=torch.uint8)),
               DecodedSample("IMD042", 1, image, None)]
    geometry = Geometry(crop_size=8, up_scale_small_dim_to=None, ratio_scale_patch=1.0,
                        padding_ratio=0.0, pad_eval=False, padding_mode="reflect", scale_algo="BILINEAR")
    return TrainPool(samples, geometry, torch.device("cpu"))


def test_a_selected_sample_without_a_mask_is_a_data_error(capsys: pytest.CaptureFixture) -> None:
    pool = _pool()
    assert len(pool.items([(0, L, None)])) == 1
    assert pool.items([(0, L, None), (1, L, None)], with_masks=False).masks == [None, None]
    with pytest.raises(DataError) as excinfo:
        pool.items([(0, L, None), (1, L, None)])
    _one_line(excinfo, "IMD042", "no mask", "give every pixel-labelled sample a mask")
    # main.py's handler turns it into one line on stderr and exit code 2.
    with pytest.raises(SystemExit) as exit_info, exit_on_error(DataError):
        pool.items([(1, L, None)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "IMD042" in err[0] and err[0].startswith("error:")


def test_main_reports_a_selected_sample_without_a_mask_with_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = generate_synthetic(tmp_path / "data", n_per_class=6, image_size=80)
    with (data / "labels.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[1][2] = ""  # the first sample (a training one in the fold below) loses its mask
    (data / "labels.csv").unlink()
    with (data / "labels.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    fold = make_folds(read_listing(GENERIC, data), seed=0, nbr_folds=1)[(0, 0)]
    assert rows[1][0] in {record.id for record in fold.train}
    write_folds(tmp_path / "folds", GENERIC, {(0, 0): fold}, seed=0)
    args = [*TINY, "--exp_root", str(tmp_path / "exps"), "--dataset", GENERIC, "--data_root", str(data),
            "--fold_folder", str(tmp_path / "folds"), "--max_epochs", "1"]
    main.main([*args, "--al_type", "WSL"])  # stage 1 needs no mask
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main.main([*args, "--al_type", "Full_sup", "--exp_id", "full"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert len(err) == 1 and rows[1][0] in err[0] and "no mask" in err[0], err

"""Readers on small fixtures written in each official layout, the real PH2 set, and decoding."""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from constants import CUB, GENERIC, GLAS, OXFORD_FLOWERS, PH2
from data import readers
from data.decoded import decode_records
from data.readers import binarise_mask, mask_threshold, read_listing, read_original_fold_csv
from data.records import DataError, SampleRecord


def _rgb(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, DataError)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def _write_glas(root: Path) -> dict[str, np.ndarray]:
    """Grade.csv with the official header and stray spaces; BMP images; instance-id masks."""
    rows = [("train_1", 1, " benign"), ("train_2", 2, " malignant "), ("train_3", 3, " benign"),
            ("testA_1", 4, " malignant"), ("testB_1", 5, " benign")]
    lines = ["name,patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"]
    ids = {}
    for index, (name, patient, grade) in enumerate(rows):
        lines.append(f"{name},{patient},{grade}, adenomatous")
        Image.fromarray(_rgb(12, 16, index)).save(root / f"{name}.bmp")
        instance = np.zeros((12, 16), dtype=np.uint8)
        instance[2:5, 3:7] = 1
        instance[7:11, 9:15] = 2 + index
        ids[name] = instance
        if index == 0:
            # A palette mask whose instance colours are black: the raw ids must still count.
            palette_mask = Image.fromarray(instance, mode="P")
            palette_mask.putpalette([0, 0, 0] * 256)
            palette_mask.save(root / f"{name}_anno.bmp")
        else:
            Image.fromarray(instance).save(root / f"{name}_anno.bmp")
    (root / "Grade.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def test_glas_reader_splits_strips_grades_and_binarises_instance_ids(tmp_path: Path) -> None:
    ids = _write_glas(tmp_path)
    listing = read_listing(GLAS, tmp_path)
    assert listing.classes == ["benign", "malignant"]
    assert {r.id for r in listing.test} == {"testA_1", "testB_1"}
    assert {r.id: r.label for r in listing.train} == {
        "train_1": "benign", "train_2": "malignant", "train_3": "benign"}
    assert listing.train[0] == SampleRecord("train_1", "train_1.bmp", "train_1_anno.bmp", "benign")
    encoding = {"benign": 0, "malignant": 1}
    samples = decode_records(listing.train + listing.test, tmp_path, GLAS, encoding, progress=False)
    for sample in samples:
        assert sample.image.dtype == torch.uint8 and sample.image.shape == (3, 12, 16)
        assert torch.equal(sample.mask, torch.from_numpy((ids[sample.id] > 0).astype(np.uint8)))


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mask warnings are printed once per dataset and rule in a process: start from none."""
    monkeypatch.setattr(readers, "_warned", set())


def _warnings(capsys: pytest.CaptureFixture) -> list[str]:
    captured = capsys.readouterr()
    assert "warning" not in captured.out
    return [line for line in captured.err.splitlines() if line.startswith("warning:")]


def _generic_with_masks(root: Path, masks: list[np.ndarray], suffix: str = "png") -> list[SampleRecord]:
    (root / "images").mkdir()
    (root / "masks").mkdir()
    records = []
    for index, mask in enumerate(masks):
        Image.fromarray(_rgb(*mask.shape, index)).save(root / "images" / f"m{index}.png")
        Image.fromarray(mask).save(root / "masks" / f"m{index}.{suffix}")
        records.append(SampleRecord(f"m{index}", f"images/m{index}.png", f"masks/m{index}.{suffix}", "cat"))
    return records


def _square(value: int, background: int = 0) -> np.ndarray:
    mask = np.full((12, 14), background, dtype=np.uint8)
    mask[3:9, 4:11] = value
    return mask


def test_masks_stored_as_0_255_are_read_without_a_warning(
        tmp_path: Path, fresh_warnings: None, capsys: pytest.CaptureFixture) -> None:
    records = _generic_with_masks(tmp_path, [_square(255), _square(0), _square(255, background=255)])
    samples = decode_records(records, tmp_path, GENERIC, {"cat": 0}, progress=False)
    assert [int(s.mask.sum()) for s in samples] == [42, 0, 168]
    assert _warnings(capsys) == []


def test_masks_stored_as_0_1_are_read_as_0_1_with_one_warning(
        tmp_path: Path, fresh_warnings: None, capsys: pytest.CaptureFixture) -> None:
    records = _generic_with_masks(tmp_path, [_square(1), _square(1), _square(0)])
    samples = decode_records(records, tmp_path, GENERIC, {"cat": 0}, progress=False)
    expected = torch.from_numpy((_square(1) > 0).astype(np.uint8))
    assert torch.equal(samples[0].mask, expected) and torch.equal(samples[1].mask, expected)
    assert int(samples[2].mask.sum()) == 0
    lines = _warnings(capsys)
    assert len(lines) == 1, lines  # once, not once per file
    assert ("masks/m0.png" in lines[0] or "masks/m1.png" in lines[0]) and "0 and 1" in lines[0]
    # Once per process: a second decode of such masks says nothing more.
    decode_records(records, tmp_path, GENERIC, {"cat": 0}, progress=False)
    assert _warnings(capsys) == []


def test_grey_level_masks_are_thresholded_with_a_warning_naming_file_and_rule(
        tmp_path: Path, fresh_warnings: None, capsys: pytest.CaptureFixture) -> None:
    grey = _square(200, background=30)
    grey[0, 0] = 128
    grey[0, 1] = 127
    records = _generic_with_masks(tmp_path, [grey])
    mask = decode_records(records, tmp_path, GENERIC, {"cat": 0}, progress=False)[0].mask
    assert torch.equal(mask, torch.from_numpy((grey > 127).astype(np.uint8)))
    lines = _warnings(capsys)
    assert len(lines) == 1 and "masks/m0.png" in lines[0] and "above 127" in lines[0], lines

    # A JPEG-saved 0/255 mask: compression noise around the edges, thresholded the same way.
    jpeg = tmp_path / "jpeg"
    jpeg.mkdir()
    big = np.zeros((32, 32), dtype=np.uint8)
    big[5:21, 7:26] = 255  # edges off the 8-pixel JPEG blocks
    records = _generic_with_masks(jpeg, [big], suffix="jpg")
    assert set(np.unique(np.asarray(Image.open(jpeg / "masks" / "m0.jpg")))) - {0, 255}
    mask = decode_records(records, jpeg, GENERIC, {"cat": 0}, progress=False)[0].mask
    assert torch.equal(mask, torch.from_numpy((big > 127).astype(np.uint8)))
    assert _warnings(capsys) == []  # same dataset, same rule: said once already


def test_mask_rules_leave_glas_cub_and_oxford_alone(fresh_warnings: None,
                                                    capsys: pytest.CaptureFixture) -> None:
    ids = np.array([[0, 1, 2, 37]], dtype=np.uint8)
    assert binarise_mask(GLAS, Image.fromarray(ids)).tolist() == [[False, True, True, True]]
    soft = np.array([[0, 1, 51, 127, 128, 255]], dtype=np.uint8)
    assert binarise_mask(CUB, Image.fromarray(soft)).tolist() == [[False] * 4 + [True] * 2]
    # A CUB mask of 0/1 stays soft: 1 is one annotator in 255, not foreground.
    assert not binarise_mask(CUB, Image.fromarray(_square(1))).any()
    blue = np.zeros((2, 2, 3), dtype=np.uint8)
    blue[..., 2] = 254
    blue[0, 0] = (1, 1, 1)
    assert binarise_mask(OXFORD_FLOWERS, Image.fromarray(blue)).tolist() == [[True, False], [False, False]]
    assert _warnings(capsys) == []
    # The same 0/1 mask is 0/1 for PH2, naming the source given.
    assert binarise_mask(PH2, Image.fromarray(_square(1)), "lesion.bmp").sum() == 42
    lines = _warnings(capsys)
    assert len(lines) == 1 and "lesion.bmp" in lines[0]


def test_mask_thresholds_per_dataset() -> None:
    assert mask_threshold(GLAS) == 0
    assert mask_threshold(CUB) == 127.5
    assert mask_threshold(PH2) == 127
    with pytest.raises(DataError):
        mask_threshold("nope")


def _write_cub(root: Path) -> None:
    base = root / "CUB_200_2011"
    classes = {"1": "002.Zeta_bird", "2": "001.Alpha_bird"}  # file order, not name order
    images = {"1": "002.Zeta_bird/z_1.jpg", "2": "002.Zeta_bird/z_2.jpg",
              "3": "001.Alpha_bird/a_1.jpg", "4": "001.Alpha_bird/a_2.jpg"}
    labels = {"1": "1", "2": "1", "3": "2", "4": "2"}
    split = {"1": "1", "2": "0", "3": "1", "4": "0"}
    for name, table in (("classes.txt", classes), ("images.txt", images),
                        ("image_class_labels.txt", labels), ("train_test_split.txt", split)):
        base.mkdir(parents=True, exist_ok=True)
        (base / name).write_text("".join(f"{k} {v}\n" for k, v in table.items()), encoding="utf-8")
    soft = np.zeros((10, 12), dtype=np.uint8)
    soft[:, 3:6], soft[:, 6:9], soft[:, 9:] = 100, 128, 200  # annotator averages
    for index, rel in enumerate(images.values()):
        image_path = base / "images" / rel
        image_path.parent.mkdir(parents=True, exist_ok=True)
        pixels = _rgb(10, 12, index)
        # CUB holds a few grey-scale JPEGs; they must come out as 3 channels.
        (Image.fromarray(pixels[..., 0]) if index == 0 else Image.fromarray(pixels)).save(image_path)
        mask_path = root / "segmentations" / Path(rel).with_suffix(".png")
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(soft).save(mask_path)


def test_cub_reader_keeps_official_split_class_file_order_and_soft_threshold(tmp_path: Path) -> None:
    _write_cub(tmp_path)
    listing = read_listing(CUB, tmp_path)
    assert listing.classes == ["002.Zeta_bird", "001.Alpha_bird"]
    assert [r.id for r in listing.train] == ["1", "3"]
    assert [r.id for r in listing.test] == ["2", "4"]
    assert listing.train[0] == SampleRecord(
        "1", "CUB_200_2011/images/002.Zeta_bird/z_1.jpg", "segmentations/002.Zeta_bird/z_1.png",
        "002.Zeta_bird")
    encoding = {name: index for index, name in enumerate(listing.classes)}
    samples = decode_records(listing.train, tmp_path, CUB, encoding, progress=False)
    assert [s.label for s in samples] == [0, 1]
    assert samples[0].image.shape == (3, 10, 12)
    expected = np.zeros((10, 12), dtype=np.uint8)
    expected[:, 6:] = 1  # 128 and 200 are above 127.5, 100 is not
    assert torch.equal(samples[0].mask, torch.from_numpy(expected))


def _write_ph2_official(root: Path) -> None:
    rows = [("IMD003", "", "0"), ("IMD009", "", "1"), ("IMD058", "Melanoma", "2")]
    header = ("||   Name || Histological Diagnosis || Clinical Diagnosis || Asymmetry || "
              "Pigment Network || Dots/Globules || Streaks || Regression Areas || "
              "Blue-Whitish Veil || Colors ||")
    lines = [header]
    for name, histology, clinical in rows:
        lines.append(f"|| {name} || {histology:>22} || {clinical:>18} ||         0 |"
                     "               T |             A |       A |                A |"
                     "                 A ||             3  4 ||")
        folder = root / "PH2 Dataset images" / name
        (folder / f"{name}_Dermoscopic_Image").mkdir(parents=True)
        (folder / f"{name}_lesion").mkdir()
        Image.fromarray(_rgb(8, 10, len(lines))).save(
            folder / f"{name}_Dermoscopic_Image" / f"{name}.bmp")
        lesion = np.zeros((8, 10), dtype=np.uint8)
        lesion[2:6, 3:8] = 255
        Image.fromarray(lesion).save(folder / f"{name}_lesion" / f"{name}_lesion.bmp")
    lines += ["", "|| Legend ||", "|| 0 - Common Nevus; 1 - Atypical Nevus; 2 - Melanoma ||"]
    (root / "PH2_dataset.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_ph2_official_layout_reads_clinical_diagnosis(tmp_path: Path) -> None:
    _write_ph2_official(tmp_path)
    listing = read_listing(PH2, tmp_path)
    assert listing.test is None
    assert listing.classes == ["common_nevus", "atypical_nevus", "melanoma"]
    assert [(r.id, r.label) for r in listing.train] == [
        ("IMD003", "common_nevus"), ("IMD009", "atypical_nevus"), ("IMD058", "melanoma")]
    assert listing.train[0].mask == "PH2 Dataset images/IMD003/IMD003_lesion/IMD003_lesion.bmp"
    samples = decode_records(listing.train, tmp_path, PH2, {c: i for i, c in enumerate(listing.classes)},
                             progress=False)
    assert int(samples[2].mask.sum()) == 20 and samples[2].label == 2


def test_ph2_official_bad_diagnosis_names_the_line(tmp_path: Path) -> None:
    _write_ph2_official(tmp_path)
    table = tmp_path / "PH2_dataset.txt"
    table.write_text(table.read_text().replace("||                  1 ||", "||  7 ||"))
    with pytest.raises(DataError) as excinfo:
        read_listing(PH2, tmp_path)
    _one_line_error(excinfo, "PH2_dataset.txt line 3", "IMD009")


def test_ph2_real_set(ph2_root: Path) -> None:
    listing = read_listing(PH2, ph2_root)
    assert listing.test is None
    assert listing.classes == ["common_nevus", "atypical_nevus", "melanoma"]
    assert len(listing.train) == 150
    assert Counter(r.label for r in listing.train) == {
        "common_nevus": 60, "atypical_nevus": 60, "melanoma": 30}
    encoding = {c: i for i, c in enumerate(listing.classes)}
    samples = decode_records(listing.train, ph2_root, PH2, encoding, progress=False)
    for sample in samples:
        assert sample.mask.shape == sample.image.shape[1:]
        assert set(sample.mask.unique().tolist()) <= {0, 1}
        assert 0 < int(sample.mask.sum()) < sample.mask.numel()


def _write_generic(root: Path, rows: list[str], header: str = "id,image,mask,label,split") -> None:
    (root / "images").mkdir(exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for index in range(4):
        Image.fromarray(_rgb(6, 7, index)).save(root / "images" / f"s{index}.png")
        Image.fromarray(np.full((6, 7), 255 * (index % 2), dtype=np.uint8)).save(
            root / "masks" / f"s{index}.png")
    (root / "labels.csv").write_text("\n".join([header] + rows) + "\n", encoding="utf-8")


def test_generic_reader_split_column_and_missing_masks(tmp_path: Path) -> None:
    _write_generic(tmp_path, [
        "s0,images/s0.png,masks/s0.png,cat,train",
        "s1,images/s1.png,,dog,train",
        "s2,images/s2.png,masks/s2.png,dog,test",
        "s3,images/s3.png,masks/s3.png,cat,",
    ])
    listing = read_listing(GENERIC, tmp_path)
    assert listing.classes == ["cat", "dog"]
    assert [r.id for r in listing.train] == ["s0", "s1", "s3"]
    assert [r.id for r in listing.test] == ["s2"]
    assert listing.train[1].mask is None
    samples = decode_records(listing.train, tmp_path, GENERIC, {"cat": 0, "dog": 1}, progress=False)
    assert samples[1].mask is None
    assert int(samples[2].mask.sum()) == 42


def test_generic_reader_without_split_has_no_test_set(tmp_path: Path) -> None:
    _write_generic(tmp_path, ["s0,images/s0.png,masks/s0.png,cat"], header="id,image,mask,label")
    assert read_listing(GENERIC, tmp_path).test is None


def test_oxford_flowers_reader_and_blue_background_masks(tmp_path: Path) -> None:
    savemat = pytest.importorskip("scipy.io").savemat
    savemat(tmp_path / "imagelabels.mat", {"labels": np.array([[1, 2, 1, 2, 3, 3]], dtype=np.uint8)})
    savemat(tmp_path / "setid.mat", {"trnid": np.array([[2, 1]], dtype=np.uint16),
                                     "valid": np.array([[3, 4]], dtype=np.uint16),
                                     "tstid": np.array([[6, 5]], dtype=np.uint16)})
    (tmp_path / "jpg").mkdir()
    (tmp_path / "segmim").mkdir()
    flower = np.zeros((40, 48), dtype=bool)
    flower[8:30, 10:36] = True
    # Petal colours: red, and a purple not far from the background blue.
    colours = [[200, 60, 40], [90, 60, 180]] * 3
    for index in range(1, 7):
        Image.fromarray(_rgb(40, 48, index)).save(tmp_path / "jpg" / f"image_{index:05d}.jpg")
        segmim = np.where(flower[..., None], np.uint8(colours[index - 1]), np.uint8([0, 0, 254]))
        Image.fromarray(segmim.astype(np.uint8)).save(
            tmp_path / "segmim" / f"segmim_{index:05d}.jpg", quality=75)
    listing = read_listing(OXFORD_FLOWERS, tmp_path)
    assert listing.classes == ["class_001", "class_002", "class_003"]
    assert [r.id for r in listing.train] == [f"image_{i:05d}" for i in (1, 2, 3, 4)]
    assert [r.id for r in listing.test] == ["image_00005", "image_00006"]
    assert listing.train[1] == SampleRecord(
        "image_00002", "jpg/image_00002.jpg", "segmim/segmim_00002.jpg", "class_002")
    encoding = {c: i for i, c in enumerate(listing.classes)}
    samples = decode_records(listing.test, tmp_path, OXFORD_FLOWERS, encoding, progress=False)
    assert [s.label for s in samples] == [2, 2]
    # Only the JPEG-blurred outline may differ: the pixel rings just outside and inside it.
    band = np.zeros_like(flower)
    band[7:31, 9:37] = True
    band[9:29, 11:35] = False
    for sample in samples:
        wrong = sample.mask.numpy().astype(bool) != flower
        assert not (wrong & ~band).any()


def test_original_fold_csv_with_crlf_and_bar_quotes(tmp_path: Path) -> None:
    path = tmp_path / "train_s_0_f_0.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quotechar="|", lineterminator="\r\n")
        writer.writerow(["0", "images/a,b.bmp", "masks/a,b_anno.bmp", "benign", "1"])
        writer.writerow(["1", "images/c.bmp", "", "malignant", "1"])
    assert b"\r\n" in path.read_bytes() and b"|images/a,b.bmp|" in path.read_bytes()
    assert read_original_fold_csv(path) == [
        SampleRecord("0", "images/a,b.bmp", "masks/a,b_anno.bmp", "benign"),
        SampleRecord("1", "images/c.bmp", None, "malignant"),
    ]


def test_original_fold_csv_with_a_header_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,img,mask,label,tag\r\n0,a.bmp,,benign,1\r\n")
    with pytest.raises(DataError) as excinfo:
        read_original_fold_csv(path)
    _one_line_error(excinfo, "bad.csv line 1")


def test_reader_errors_are_one_line_and_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        read_listing("imagenet", tmp_path)
    _one_line_error(excinfo, "imagenet")
    with pytest.raises(DataError) as excinfo:
        read_listing(GLAS, tmp_path / "absent")
    _one_line_error(excinfo, "absent", "does not exist")
    with pytest.raises(DataError) as excinfo:
        read_listing(GLAS, tmp_path)
    _one_line_error(excinfo, "Grade.csv", "missing")
    with pytest.raises(DataError) as excinfo:
        read_listing(CUB, tmp_path)
    _one_line_error(excinfo, "classes.txt")

    _write_glas(tmp_path)
    (tmp_path / "train_2.bmp").unlink()
    with pytest.raises(DataError) as excinfo:
        read_listing(GLAS, tmp_path)
    _one_line_error(excinfo, "train_2.bmp", "missing")

    grade = tmp_path / "Grade.csv"
    grade.write_text(grade.read_text().replace(" malignant ", " mixed"))
    with pytest.raises(DataError) as excinfo:
        read_listing(GLAS, tmp_path)
    _one_line_error(excinfo, "Grade.csv line 3", "mixed")


def test_generic_reader_errors(tmp_path: Path) -> None:
    _write_generic(tmp_path, ["s0,images/s0.png,masks/s0.png,cat"], header="id,img,mask,label")
    with pytest.raises(DataError) as excinfo:
        read_listing(GENERIC, tmp_path)
    _one_line_error(excinfo, "labels.csv", "header")
    _write_generic(tmp_path, ["s0,images/s0.png,masks/s0.png,cat,valid"])
    with pytest.raises(DataError) as excinfo:
        read_listing(GENERIC, tmp_path)
    _one_line_error(excinfo, "line 2", "valid")
    _write_generic(tmp_path, ["s0,images/s0.png,masks/s0.png,cat,train",
                              "s0,images/s1.png,masks/s1.png,cat,train"])
    with pytest.raises(DataError) as excinfo:
        read_listing(GENERIC, tmp_path)
    _one_line_error(excinfo, "'s0'", "twice")


def test_decode_errors_name_the_file(tmp_path: Path) -> None:
    _write_generic(tmp_path, ["s0,images/s0.png,masks/s0.png,cat"])
    record = SampleRecord("s0", "images/s0.png", "masks/s0.png", "cat")
    encoding = {"cat": 0}
    with pytest.raises(DataError) as excinfo:
        decode_records([record], tmp_path / "absent", GENERIC, encoding, progress=False)
    _one_line_error(excinfo, "absent")
    with pytest.raises(DataError) as excinfo:
        decode_records([record], tmp_path, GENERIC, {"dog": 0}, progress=False)
    _one_line_error(excinfo, "'cat'", "encoding")
    with pytest.raises(DataError) as excinfo:
        decode_records([SampleRecord("x", "images/x.png", None, "cat")], tmp_path, GENERIC,
                       encoding, progress=False)
    _one_line_error(excinfo, "x.png", "missing")

    Image.fromarray(np.zeros((5, 7), dtype=np.uint8)).save(tmp_path / "masks" / "s0.png")
    with pytest.raises(DataError) as excinfo:
        decode_records([record], tmp_path, GENERIC, encoding, progress=False)
    _one_line_error(excinfo, "masks/s0.png", "7x5", "7x6")

    (tmp_path / "images" / "s1.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError) as excinfo:
        decode_records([SampleRecord("s1", "images/s1.png", None, "cat")], tmp_path, GENERIC,
                       encoding, progress=False)
    _one_line_error(excinfo, "s1.png", "cannot be read")


def test_decode_cache_is_keyed_by_file_size_and_mtime(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _write_generic(data, ["s0,images/s0.png,masks/s0.png,cat"])
    record = SampleRecord("s0", "images/s0.png", "masks/s0.png", "cat")
    cache = tmp_path / "cache"
    first = decode_records([record], data, GENERIC, {"cat": 0}, cache_dir=cache, progress=False)[0]
    assert len(list((cache / GENERIC).glob("*.npz"))) == 1

    # Same size and mtime: the cached arrays are used and the file is not even opened.
    image_path = data / "images" / "s0.png"
    stat = image_path.stat()
    image_path.write_bytes(b"x" * stat.st_size)
    os.utime(image_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = decode_records([record], data, GENERIC, {"cat": 0}, cache_dir=cache, progress=False)[0]
    assert torch.equal(again.image, first.image) and torch.equal(again.mask, first.mask)

    # A new mtime invalidates the entry: the (now broken) file is decoded again.
    os.utime(image_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(DataError) as excinfo:
        decode_records([record], data, GENERIC, {"cat": 0}, cache_dir=cache, progress=False)
    _one_line_error(excinfo, "s0.png", "cannot be read")

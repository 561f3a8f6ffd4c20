"""Array datasets: tiny fixtures written in each official format (CIFAR-10 python pickles, MNIST
and EMNIST gzip IDX files), the real scikit-learn digits, and the committed digits folds."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import create_folds
from constants import CIFAR10, DIGITS, EMNIST, MNIST, TEST, TRAIN
from data.arrays import ArraySet, array_listing, gather, read_arrays, read_classes
from data.folds import load_fold, make_folds, write_folds
from data.readers import read_listing
from data.records import DataError, SampleRecord

FOLDS_ROOT = Path(__file__).resolve().parents[1] / "folds"
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_BATCH_SIZES = (2, 3, 1, 2, 2)
# The official emnist-balanced-mapping.txt: digits, upper case, then the 11 lower-case letters
# that do not look like their capitals.
EMNIST_CODES = [*range(48, 58), *range(65, 91), *map(ord, "abdefghnqrt")]


def _one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, DataError)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def _pickle_like_the_release(content: dict) -> bytes:
    """Protocol 2 with bytes keys, numpy arrays referred to by their numpy-1 module path (the
    release was pickled long before numpy 2 renamed numpy.core)."""
    return pickle.dumps(content, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def _write_cifar(folder: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    """cifar-10-batches-py with all five data batches, test_batch and batches.meta; returns the
    raw (N, 3072) rows and labels of each batch."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    batches = {}
    for name, size in [*zip([f"data_batch_{n}" for n in range(1, 6)], CIFAR_BATCH_SIZES),
                       ("test_batch", 3)]:
        data = rng.integers(0, 256, size=(size, 3072), dtype=np.uint8)
        labels = [int(label) for label in rng.integers(0, 10, size=size)]
        batches[name] = (data, labels)
        content = {b"batch_label": f"{name} of 5".encode(), b"labels": labels, b"data": data,
                   b"filenames": [f"img_{i}.png".encode() for i in range(size)]}
        (folder / name).write_bytes(_pickle_like_the_release(content))
    meta = {b"num_cases_per_batch": 10000, b"label_names": [name.encode() for name in CIFAR_NAMES],
            b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(_pickle_like_the_release(meta))
    return batches


class _MakesADirectory:
    """Unpickling this calls os.mkdir: a loader that resolves any global would run it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return os.mkdir, (str(self.path),)


def _idx(array: np.ndarray, magic: int | None = None) -> bytes:
    """IDX bytes: magic 0x0000 08 <ndim> then one big-endian uint32 per dim, then the data."""
    magic = 0x00000800 | array.ndim if magic is None else magic
    header = np.asarray([magic, *array.shape], dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _write_gz(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(content)


def _write_mnist(folder: Path, per_class: int = 2, seed: int = 1) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The four gzip IDX files with 6x4 images (non-square, so any axis swap shows)."""
    rng = np.random.default_rng(seed)
    subsets = {}
    for subset, prefix, count in ((TRAIN, "train", per_class), (TEST, "t10k", 1)):
        labels = np.tile(np.arange(10, dtype=np.uint8), count)
        rng.shuffle(labels)
        images = rng.integers(0, 256, size=(len(labels), 6, 4), dtype=np.uint8)
        _write_gz(folder / f"{prefix}-images-idx3-ubyte.gz", _idx(images))
        _write_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", _idx(labels))
        subsets[subset] = (images, labels)
    return subsets


def _upright_emnist(count: int) -> np.ndarray:
    """Asymmetric 5x3 images: an 'L' whose corner pixel carries the sample's number."""
    images = np.zeros((count, 5, 3), dtype=np.uint8)
    images[:, :, 0] = 200
    images[:, 4, :] = 100
    images[:, 4, 0] = np.arange(count, dtype=np.uint8) + 1
    return images


def _write_emnist(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """emnist-balanced-* files: images stored transposed (column-major), as in the release."""
    subsets = {}
    for subset, labels in ((TRAIN, [0, 46, 10, 36, 5]), (TEST, [46, 1])):
        upright = _upright_emnist(len(labels))
        label_array = np.asarray(labels, dtype=np.uint8)
        _write_gz(folder / f"emnist-balanced-{subset}-images-idx3-ubyte.gz", _idx(upright.transpose(0, 2, 1)))
        _write_gz(folder / f"emnist-balanced-{subset}-labels-idx1-ubyte.gz", _idx(label_array))
        subsets[subset] = (upright, label_array)
    mapping = "".join(f"{label} {code}\n" for label, code in enumerate(EMNIST_CODES))
    (folder / "emnist-balanced-mapping.txt").write_text(mapping, encoding="ascii")
    return subsets


# cifar10


@pytest.mark.parametrize("nested", [True, False])
def test_cifar_reads_every_batch_and_turns_channel_planes_into_hwc(tmp_path: Path, nested: bool) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    batches = _write_cifar(folder)
    arrays = read_arrays(CIFAR10, tmp_path if nested else folder)
    assert sorted(arrays) == [TEST, TRAIN]
    train, test = arrays[TRAIN], arrays[TEST]
    assert train.images.shape == (sum(CIFAR_BATCH_SIZES), 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (3, 32, 32, 3)
    assert train.labels.dtype == np.int64 and train.images.flags.c_contiguous
    train_rows = np.concatenate([batches[f"data_batch_{n}"][0] for n in range(1, 6)])
    assert train.labels.tolist() == [label for n in range(1, 6) for label in batches[f"data_batch_{n}"][1]]
    assert test.labels.tolist() == batches["test_batch"][1]
    # Row layout: 1024 red values, then green, then blue, each plane row-major over 32x32.
    for sample, y, x in ((0, 0, 0), (3, 5, 7), (9, 31, 30), (5, 17, 0)):
        expected = [train_rows[sample, channel * 1024 + y * 32 + x] for channel in range(3)]
        assert train.images[sample, y, x].tolist() == [int(value) for value in expected]
    assert np.array_equal(test.images[2, :, :, 1], batches["test_batch"][0][2, 1024:2048].reshape(32, 32))
    assert read_classes(CIFAR10, tmp_path) == CIFAR_NAMES


def test_cifar_listing_lists_official_train_and_test(tmp_path: Path) -> None:
    batches = _write_cifar(tmp_path / "cifar-10-batches-py")
    listing = read_listing(CIFAR10, tmp_path)
    assert listing.classes == CIFAR_NAMES
    assert len(listing.train) == sum(CIFAR_BATCH_SIZES) and len(listing.test) == 3
    first_of_batch_2 = listing.train[CIFAR_BATCH_SIZES[0]]
    assert first_of_batch_2 == SampleRecord(id="train_00002", image="train/2", mask=None,
                                            label=CIFAR_NAMES[batches["data_batch_2"][1][0]])
    assert [record.id for record in listing.test] == ["test_00000", "test_00001", "test_00002"]
    assert [record.label for record in listing.test] == [CIFAR_NAMES[i] for i in batches["test_batch"][1]]


def test_cifar_missing_batch_names_file_place_and_source(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    (folder / "data_batch_5").unlink()
    with pytest.raises(DataError) as excinfo:
        read_arrays(CIFAR10, tmp_path)
    _one_line_error(excinfo, "data_batch_5", str(folder), "cifar-10-python.tar.gz")
    with pytest.raises(DataError) as excinfo:
        read_listing(CIFAR10, tmp_path / "absent")
    _one_line_error(excinfo, "cifar-10-batches-py", str(tmp_path / "absent"),
                    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign global", "not a dict"])
def test_cifar_corrupt_pickle_is_refused_in_one_line(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    path = folder / "data_batch_3"
    content = {
        "truncated": path.read_bytes()[: len(path.read_bytes()) // 2],
        "garbage": b"\x80\x02this is not a pickle",
        # A global outside numpy's array reconstruction is never resolved, hence never run.
        "foreign global": pickle.dumps({b"data": _MakesADirectory(tmp_path / "ran"), b"labels": []},
                                       protocol=2),
        "not a dict": pickle.dumps([1, 2, 3], protocol=2),
    }[damage]
    path.write_bytes(content)
    with pytest.raises(DataError) as excinfo:
        read_arrays(CIFAR10, tmp_path)
    _one_line_error(excinfo, str(path), "cifar-10-python.tar.gz")
    assert not (tmp_path / "ran").exists()


def test_cifar_label_count_must_match_images(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    batches = _write_cifar(folder)
    data, labels = batches["test_batch"]
    (folder / "test_batch").write_bytes(_pickle_like_the_release({b"data": data, b"labels": labels[:-1]}))
    with pytest.raises(DataError) as excinfo:
        read_arrays(CIFAR10, tmp_path)
    _one_line_error(excinfo, "test_batch", "2 b'labels' for 3 images")


# mnist


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_mnist_reads_gzip_idx_files(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    written = _write_mnist(folder)
    arrays = read_arrays(MNIST, tmp_path)
    for subset, (images, labels) in written.items():
        assert arrays[subset].images.shape == (len(labels), 6, 4, 3)
        assert arrays[subset].images.dtype == np.uint8 and arrays[subset].labels.dtype == np.int64
        assert arrays[subset].labels.tolist() == labels.tolist()
        for channel in range(3):
            assert np.array_equal(arrays[subset].images[..., channel], images)
    assert read_classes(MNIST, tmp_path) == [str(digit) for digit in range(10)]


def test_mnist_listing_folds_and_gather_round_trip(tmp_path: Path) -> None:
    written = _write_mnist(tmp_path / "mnist")
    listing = read_listing(MNIST, tmp_path / "mnist")
    assert [record.id for record in listing.train[:2]] == ["train_00000", "train_00001"]
    assert listing.test[9] == SampleRecord(id="test_00009", image="test/9", mask=None,
                                           label=str(written[TEST][1][9]))
    write_folds(tmp_path / "folds", MNIST, make_folds(listing, seed=0), seed=0)
    fold = load_fold(tmp_path / "folds", MNIST, 0, 1)
    assert fold.test == listing.test and len(fold.train) + len(fold.valid) == 20
    arrays = read_arrays(MNIST, tmp_path / "mnist")
    for subset_records in (fold.train, fold.valid, fold.test, fold.train[::-1] + fold.test[:3]):
        images, labels = gather(arrays, subset_records, fold.classes)
        assert images.shape == (len(subset_records), 6, 4, 3) and labels.dtype == np.int64
        for record, image, label in zip(subset_records, images, labels):
            subset, index = record.image.split("/")
            assert np.array_equal(image[..., 0], written[subset][0][int(index)])
            assert fold.classes[label] == record.label == str(written[subset][1][int(index)])


def test_create_folds_cli_works_on_mnist(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write_mnist(tmp_path / "mnist")
    code = create_folds.main(["--dataset", MNIST, "--data_root", str(tmp_path / "mnist"),
                              "--out", str(tmp_path / "folds")])
    assert code == 0, capsys.readouterr().err
    fold = load_fold(tmp_path / "folds", MNIST, 0, 4)
    assert len(fold.test) == 10 and len(fold.valid) == 10 and len(fold.train) == 10


def _damage_mnist(folder: Path, damage: str) -> str:
    """Spoil one file; returns the name the error must mention."""
    labels_path = folder / "t10k-labels-idx1-ubyte.gz"
    images_path = folder / "train-images-idx3-ubyte.gz"
    if damage == "missing":
        labels_path.unlink()
        return labels_path.name
    if damage == "truncated idx":
        content = gzip.decompress(images_path.read_bytes())
        _write_gz(images_path, content[:-5])
        return images_path.name
    if damage == "truncated gzip":
        images_path.write_bytes(images_path.read_bytes()[:-20])
        return images_path.name
    if damage == "short header":
        _write_gz(labels_path, b"\x00\x00\x08")
        return labels_path.name
    if damage == "wrong magic":
        labels = gzip.decompress(labels_path.read_bytes())[8:]
        _write_gz(labels_path, _idx(np.frombuffer(labels, dtype=np.uint8), magic=0x00000803))
        return labels_path.name
    if damage == "count mismatch":
        labels = np.frombuffer(gzip.decompress(labels_path.read_bytes())[8:], dtype=np.uint8)
        _write_gz(labels_path, _idx(labels[:-1]))
        return labels_path.name
    labels = np.frombuffer(gzip.decompress(labels_path.read_bytes())[8:], dtype=np.uint8).copy()
    labels[0] = 10
    _write_gz(labels_path, _idx(labels))
    return "outside"


@pytest.mark.parametrize(("damage", "fragment"), [
    ("missing", "http://yann.lecun.com/exdb/mnist/"),
    ("truncated idx", "truncated"),
    ("truncated gzip", "gzip"),
    ("short header", "header"),
    ("wrong magic", "0x00000803 instead of 0x00000801"),
    ("count mismatch", "holds 9 labels but t10k-images-idx3-ubyte.gz holds 10 images"),
    ("label range", "10 classes"),
])
def test_mnist_damaged_files_are_refused_in_one_line(tmp_path: Path, damage: str, fragment: str) -> None:
    _write_mnist(tmp_path, per_class=1)
    name = _damage_mnist(tmp_path, damage)
    with pytest.raises(DataError) as excinfo:
        read_arrays(MNIST, tmp_path)
    _one_line_error(excinfo, name, fragment)
    with pytest.raises(DataError):
        read_listing(MNIST, tmp_path)


# emnist


@pytest.mark.parametrize("layout", ["flat", "gzip"])
def test_emnist_transposes_images_upright_and_names_classes_from_mapping(tmp_path: Path, layout: str) -> None:
    written = _write_emnist(tmp_path / "gzip" if layout == "gzip" else tmp_path)
    arrays = read_arrays(EMNIST, tmp_path)
    classes = read_classes(EMNIST, tmp_path)
    assert len(classes) == 47 and classes[:3] == ["0", "1", "2"] and classes[10] == "A"
    assert classes[36] == "a" and classes[46] == "t"
    for subset, (upright, labels) in written.items():
        assert arrays[subset].images.shape == (len(labels), 5, 3, 3)
        assert arrays[subset].labels.tolist() == labels.tolist()
        assert np.array_equal(arrays[subset].images[..., 2], upright)
    # The 'L': a full left column, a bottom row whose left end numbers the sample.
    assert arrays[TRAIN].images[3, :, 0, 0].tolist() == [200, 200, 200, 200, 4]
    assert arrays[TRAIN].images[3, 4, :, 0].tolist() == [4, 100, 100]
    listing = read_listing(EMNIST, tmp_path)
    assert [record.label for record in listing.train] == ["0", "t", "A", "a", "5"]
    assert [record.image for record in listing.test] == ["test/0", "test/1"]


@pytest.mark.parametrize("damage", ["missing", "malformed", "short"])
def test_emnist_mapping_problems_are_refused(tmp_path: Path, damage: str) -> None:
    _write_emnist(tmp_path)
    mapping = tmp_path / "emnist-balanced-mapping.txt"
    if damage == "missing":
        mapping.unlink()
    elif damage == "malformed":
        mapping.write_text("0 48\n1 x\n", encoding="ascii")
    else:
        mapping.write_text("".join(f"{i} {c}\n" for i, c in enumerate(EMNIST_CODES[:40])), encoding="ascii")
    with pytest.raises(DataError) as excinfo:
        read_arrays(EMNIST, tmp_path)
    _one_line_error(excinfo, "emnist-balanced-mapping.txt",
                    "https://www.nist.gov/itl/products-and-services/emnist-dataset")


def test_emnist_missing_images_name_both_places(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        read_arrays(EMNIST, tmp_path)
    _one_line_error(excinfo, "emnist-balanced-train-images-idx3-ubyte.gz", str(tmp_path / "gzip"),
                    "emnist-dataset")


# gather and ArraySet


def _small_arrays() -> dict[str, ArraySet]:
    images = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    return {TRAIN: ArraySet(images=images, labels=np.asarray([0, 1, 0, 1], dtype=np.int64)),
            TEST: ArraySet(images=images[:2] + 100, labels=np.asarray([1, 1], dtype=np.int64))}


def test_gather_keeps_record_order_across_subsets() -> None:
    arrays = _small_arrays()
    records = [SampleRecord(f"r{i}", ref, None, "x") for i, ref in
               enumerate(["train/3", "test/1", "train/0", "train/3"])]
    images, labels = gather(arrays, records)
    assert labels.tolist() == [1, 1, 0, 1]
    assert np.array_equal(images[0], arrays[TRAIN].images[3])
    assert np.array_equal(images[1], arrays[TEST].images[1])
    assert np.array_equal(images[2], arrays[TRAIN].images[0])
    empty_images, empty_labels = gather(arrays, [])
    assert empty_images.shape == (0, 2, 2, 3) and empty_labels.shape == (0,)


@pytest.mark.parametrize(("reference", "fragment"), [
    ("train/4", "holds 4 samples"),
    ("valid/0", "subset is not one of"),
    ("train/-1", "non-negative integer index"),
    ("train/x", "non-negative integer index"),
])
def test_gather_refuses_bad_references(reference: str, fragment: str) -> None:
    with pytest.raises(DataError) as excinfo:
        gather(_small_arrays(), [SampleRecord("s1", "train/0", None, "a"), SampleRecord("s2", reference, None, "a")])
    _one_line_error(excinfo, "'s2'", reference, fragment, "regenerate")


def test_gather_checks_labels_against_the_fold_classes() -> None:
    records = [SampleRecord("s0", "train/0", None, "a"), SampleRecord("s1", "train/1", None, "a")]
    with pytest.raises(DataError) as excinfo:
        gather(_small_arrays(), records, classes=["a", "b"])
    _one_line_error(excinfo, "'s1'", "'a' in the fold but 'b' in the arrays")


def test_array_set_refuses_wrong_dtypes_and_shapes() -> None:
    with pytest.raises(DataError, match="uint8"):
        ArraySet(images=np.zeros((2, 3, 3), dtype=np.uint8), labels=np.zeros(2, dtype=np.int64))
    with pytest.raises(DataError, match="int64"):
        ArraySet(images=np.zeros((2, 3, 3, 3), dtype=np.uint8), labels=np.zeros(3, dtype=np.int64))


def test_unknown_array_dataset_is_refused() -> None:
    with pytest.raises(DataError) as excinfo:
        read_arrays("glas", Path("."))
    _one_line_error(excinfo, "digits, cifar10, mnist, emnist")


# digits (real data, shipped with scikit-learn)


def test_digits_real_data(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    arrays = read_arrays(DIGITS, tmp_path / "ignored")
    assert list(arrays) == [TRAIN]
    train = arrays[TRAIN]
    assert train.images.shape == (1797, 8, 8, 3) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and sorted(set(train.labels.tolist())) == list(range(10))
    assert train.images.min() == 0 and train.images.max() == 255
    raw = load_digits().images
    assert np.array_equal(train.images[..., 1], np.rint(raw * 255 / 16).astype(np.uint8))
    assert np.array_equal(train.images[..., 0], train.images[..., 2])
    listing = read_listing(DIGITS, None)
    assert listing.test is None and listing.classes == [str(digit) for digit in range(10)]
    assert len(listing.train) == 1797 and listing.train[1796].id == "train_01796"


def test_committed_digits_folds_partition_the_set_and_match_the_data() -> None:
    listing = array_listing(DIGITS)
    everything = {record.id: record for record in listing.train}
    arrays = read_arrays(DIGITS)
    regenerated = make_folds(listing, seed=0)
    valid_ids: list[str] = []
    tests = set()
    for fold_index in range(5):
        fold = load_fold(FOLDS_ROOT, DIGITS, 0, fold_index)
        assert fold.classes == listing.classes
        parts = [{record.id for record in part} for part in (fold.train, fold.valid, fold.test)]
        assert sum(map(len, parts)) == len(everything) and set().union(*parts) == set(everything)
        assert all(everything[record.id] == record for record in fold.train + fold.valid + fold.test)
        assert fold == regenerated[(0, fold_index)]
        tests.add(frozenset(parts[2]))
        valid_ids.extend(parts[1])
        gather(arrays, fold.valid, fold.classes)
    # One test set for the split; the five validation chunks tile the rest of it.
    assert len(tests) == 1 and len(valid_ids) == len(set(valid_ids)) == len(everything) - len(next(iter(tests)))


def test_create_folds_needs_no_data_root_for_digits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert create_folds.main(["--dataset", DIGITS, "--out", str(tmp_path)]) == 0
    assert "train 1143, valid 290, test 364" in capsys.readouterr().out
    assert load_fold(tmp_path, DIGITS, 0, 0) == load_fold(FOLDS_ROOT, DIGITS, 0, 0)
    with pytest.raises(SystemExit):
        create_folds.main(["--dataset", MNIST, "--out", str(tmp_path)])

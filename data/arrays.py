"""Classification datasets shipped as arrays, read from their official files into memory.

    digits   scikit-learn's bundled copy of the UCI handwritten digits (1,797 8x8 images, no files)
    cifar10  the "python version": cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
    mnist    the four gzip IDX files (train-images-idx3-ubyte.gz, ...), or torchvision's MNIST/raw/
    emnist   the `balanced` split of the EMNIST gzip release (emnist-balanced-*.gz + mapping.txt)

Every set becomes an `ArraySet` per official subset ("train", and "test" where the dataset has
one): RGB uint8 images (N, H, W, 3), greyscale replicated to three channels, and int64 labels
that index the class names in their official order. Nothing is cached: the files are parsed on
each call with np.frombuffer.

The fold machinery works on `SampleRecord`s, so `array_listing` lists sample i of subset s as
id "s_<i:05d>", image "s/<i>" (a reference into the arrays, not a file), no mask, and its class
name; `gather` turns the records of a fold subset back into arrays, in record order.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from constants import CIFAR10, CLASSIFICATION_DATASETS, DIGITS, EMNIST, MNIST, TEST, TRAIN
from data.records import DataError, Listing, SampleRecord

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MNIST_URL = "http://yann.lecun.com/exdb/mnist/"
EMNIST_URL = "https://www.nist.gov/itl/products-and-services/emnist-dataset"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_META = "batches.meta"
CIFAR10_SIDE = 32
MNIST_FILES = {
    TRAIN: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    TEST: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EMNIST_SPLIT = "balanced"
EMNIST_FILES = {
    subset: (f"emnist-{EMNIST_SPLIT}-{subset}-images-idx3-ubyte",
             f"emnist-{EMNIST_SPLIT}-{subset}-labels-idx1-ubyte")
    for subset in (TRAIN, TEST)
}
EMNIST_MAPPING = f"emnist-{EMNIST_SPLIT}-mapping.txt"
EMNIST_CLASSES = 47
# The sets of greyscale images (read as three equal channels): a model of one expects greyscale inputs.
GREYSCALE_DATASETS = (DIGITS, MNIST, EMNIST)
DIGIT_CLASSES = [str(digit) for digit in range(10)]
# IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte), the number of dims.
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
# scikit-learn's digits count the set pixels of 4x4 blocks: values 0..16.
DIGITS_MAX = 16
# The only globals an official CIFAR pickle refers to: numpy's array reconstruction (numpy 1 and
# 2 module names) and, for bytes pickled by Python 3 at protocol 2, codecs' encode.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("codecs", "encode"),
}
_SOURCES = {
    CIFAR10: f"extract {CIFAR10_URL} into the data root",
    MNIST: f"download it from {MNIST_URL}",
    EMNIST: f"unzip gzip.zip from {EMNIST_URL} into the data root",
}


@dataclass(frozen=True, eq=False)
class ArraySet:
    """One official subset: images (N, H, W, 3) uint8 and labels (N,) int64 (class indices)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[3] != 3:
            raise DataError(
                f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.dtype != np.int64 or self.labels.shape != (len(self.images),):
            raise DataError(
                f"labels must be int64 ({len(self.images)},), got {self.labels.dtype} {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)


def read_arrays(dataset: str, root: Path | None = None) -> dict[str, ArraySet]:
    """The official subsets of `dataset` under `root` ("train", plus "test" where official).

    `root` is ignored for digits (scikit-learn ships it). cifar10 accepts the folder that holds
    cifar-10-batches-py/ or that folder itself; mnist the folder of the IDX files or the one
    holding MNIST/raw/; emnist the folder of the emnist-balanced-* files or the one holding gzip/.
    """
    _check_dataset(dataset)
    if dataset == DIGITS:
        return {TRAIN: _read_digits()}
    root = _root(dataset, root)
    if dataset == CIFAR10:
        folder = _cifar_folder(root)
        return {TRAIN: _read_cifar_batches(folder, CIFAR10_TRAIN_BATCHES),
                TEST: _read_cifar_batches(folder, (CIFAR10_TEST_BATCH,))}
    if dataset == MNIST:
        folder = _idx_folder(root, (root, root / "MNIST" / "raw"), MNIST_FILES[TRAIN][0], MNIST)
        subsets = {subset: _read_idx_pair(folder, names, MNIST) for subset, names in MNIST_FILES.items()}
        _check_label_range(subsets, len(DIGIT_CLASSES), folder, MNIST)
        return subsets
    folder = _idx_folder(root, (root, root / "gzip"), EMNIST_FILES[TRAIN][0], EMNIST)
    classes = _emnist_classes(folder)
    subsets = {subset: _read_idx_pair(folder, names, EMNIST, transpose=True)
               for subset, names in EMNIST_FILES.items()}
    _check_label_range(subsets, len(classes), folder, EMNIST)
    return subsets


def read_classes(dataset: str, root: Path | None = None) -> list[str]:
    """Class names of `dataset` in label order (label i is named classes[i])."""
    _check_dataset(dataset)
    if dataset in (DIGITS, MNIST):
        return list(DIGIT_CLASSES)
    root = _root(dataset, root)
    if dataset == CIFAR10:
        return _cifar_classes(_cifar_folder(root))
    return _emnist_classes(_idx_folder(root, (root, root / "gzip"), EMNIST_FILES[TRAIN][0], EMNIST))


def array_listing(dataset: str, root: Path | None = None) -> Listing:
    """The Listing the fold machinery consumes: train = official train, test = official test
    (None for digits). Each sample is SampleRecord(id="<subset>_<i:05d>", image="<subset>/<i>",
    mask=None, label=<class name>)."""
    classes = read_classes(dataset, root)
    arrays = read_arrays(dataset, root)

    def records(subset: str) -> list[SampleRecord]:
        return [SampleRecord(id=f"{subset}_{index:05d}", image=f"{subset}/{index}", mask=None,
                             label=classes[label])
                for index, label in enumerate(arrays[subset].labels.tolist())]

    return Listing(train=records(TRAIN), test=records(TEST) if TEST in arrays else None,
                   classes=classes)


def gather(
    arrays: dict[str, ArraySet],
    records: Sequence[SampleRecord],
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, 3) uint8 and labels (N,) int64 of `records`, in record order.

    Each record's image field is "<subset>/<index>" (see `array_listing`). With `classes` (the
    fold's class order), each record's label must name the class the arrays hold for it, which
    catches folds made from another copy of the dataset.
    """
    if not arrays:
        raise DataError("no arrays to gather from: pass the result of read_arrays")
    names = []
    indices = np.empty(len(records), dtype=np.int64)
    for position, record in enumerate(records):
        names.append(_subset_of(record, arrays))
        indices[position] = _index_of(record, arrays[names[-1]])
    height, width = next(iter(arrays.values())).images.shape[1:3]
    images = np.empty((len(records), height, width, 3), dtype=np.uint8)
    labels = np.empty(len(records), dtype=np.int64)
    subset_of_position = np.asarray(names, dtype=object)
    for name in dict.fromkeys(names):
        chosen = subset_of_position == name
        source = arrays[name]
        if source.images.shape[1:3] != (height, width):
            raise DataError(
                f"subset '{name}' holds {source.images.shape[1:3]} images, not {(height, width)}: "
                "gather the subsets of one dataset"
            )
        images[chosen] = source.images[indices[chosen]]
        labels[chosen] = source.labels[indices[chosen]]
    if classes is not None:
        for record, label in zip(records, labels.tolist()):
            held = classes[label] if 0 <= label < len(classes) else f"label {label}"
            if held != record.label:
                raise DataError(
                    f"sample '{record.id}' is '{record.label}' in the fold but '{held}' in the "
                    "arrays: the folds were made from another copy of the dataset; regenerate them"
                )
    return images, labels


def _subset_of(record: SampleRecord, arrays: dict[str, ArraySet]) -> str:
    subset, _, _ = record.image.partition("/")
    if subset not in arrays:
        raise DataError(
            f"sample '{record.id}' refers to '{record.image}', whose subset is not one of "
            f"{sorted(arrays)}: expected '<subset>/<index>'; regenerate the folds for this dataset"
        )
    return subset


def _index_of(record: SampleRecord, source: ArraySet) -> int:
    text = record.image.partition("/")[2]
    if not text.isdigit():
        raise DataError(
            f"sample '{record.id}' refers to '{record.image}': expected '<subset>/<index>' with a "
            "non-negative integer index; regenerate the folds for this dataset"
        )
    index = int(text)
    if index >= len(source):
        raise DataError(
            f"sample '{record.id}' refers to '{record.image}' but that subset holds {len(source)} "
            "samples: the folds were made from another copy of the dataset; regenerate them"
        )
    return index


def _check_dataset(dataset: str) -> None:
    if dataset not in CLASSIFICATION_DATASETS:
        raise DataError(
            f"'{dataset}' is not an array dataset: choose one of {', '.join(CLASSIFICATION_DATASETS)}"
        )


def _root(dataset: str, root: Path | None) -> Path:
    if root is None:
        raise DataError(f"{dataset} needs a data root: pass the folder that holds its files")
    return Path(root)


def _missing(path: Path, dataset: str, where: str) -> DataError:
    return DataError(f"{path.name} is missing from {where}: {_SOURCES[dataset]}")


def _corrupt(path: Path, problem: str, dataset: str) -> DataError:
    return DataError(f"{path} {problem}: replace it with the official file ({_SOURCES[dataset]})")


# digits


def _read_digits() -> ArraySet:
    from sklearn.datasets import load_digits  # a heavy import only this set needs

    bunch = load_digits()
    scaled = np.rint(np.asarray(bunch.images, dtype=np.float64) * (255.0 / DIGITS_MAX))
    grey = np.clip(scaled, 0, 255).astype(np.uint8)
    return ArraySet(images=_to_rgb(grey), labels=np.asarray(bunch.target, dtype=np.int64))


# cifar10


def _cifar_folder(root: Path) -> Path:
    nested = root / CIFAR10_FOLDER
    if nested.is_dir():
        return nested
    if (root / CIFAR10_META).is_file() or (root / CIFAR10_TRAIN_BATCHES[0]).is_file():
        return root
    raise DataError(
        f"{CIFAR10_FOLDER}/ is missing from {root}: extract {CIFAR10_URL} there (or pass the "
        f"{CIFAR10_FOLDER} folder itself)"
    )


class _CifarUnpickler(pickle.Unpickler):
    """Loads only the numpy arrays, lists and bytes an official CIFAR batch holds."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")
        return super().find_class(module, name)


def _load_cifar_pickle(path: Path) -> dict:
    if not path.is_file():
        raise _missing(path, CIFAR10, str(path.parent))
    try:
        with path.open("rb") as handle:
            content = _CifarUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, ImportError, UnicodeDecodeError, MemoryError, OverflowError) as error:
        raise _corrupt(path, f"is not a readable CIFAR pickle ({error.__class__.__name__})",
                       CIFAR10) from error
    if not isinstance(content, dict):
        raise _corrupt(path, f"holds a {type(content).__name__}, not the batch dictionary", CIFAR10)
    return content


def _cifar_classes(folder: Path) -> list[str]:
    path = folder / CIFAR10_META
    names = _load_cifar_pickle(path).get(b"label_names")
    if not isinstance(names, list) or len(names) != 10 \
            or not all(isinstance(name, (bytes, str)) for name in names):
        raise _corrupt(path, "lacks the 10 b'label_names'", CIFAR10)
    classes = [name.decode("ascii") if isinstance(name, bytes) else name for name in names]
    if len(set(classes)) != len(classes):
        raise _corrupt(path, f"repeats class names {classes}", CIFAR10)
    return classes


def _read_cifar_batches(folder: Path, names: Sequence[str]) -> ArraySet:
    images, labels = [], []
    for name in names:
        path = folder / name
        batch = _load_cifar_pickle(path)
        data, batch_labels = batch.get(b"data"), batch.get(b"labels")
        side = CIFAR10_SIDE
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != 3 * side * side:
            shape = getattr(data, "shape", None)
            raise _corrupt(path, f"has b'data' {shape}, not uint8 (N, {3 * side * side})", CIFAR10)
        try:
            label_array = np.asarray(batch_labels, dtype=np.int64)
        except (TypeError, ValueError) as error:
            raise _corrupt(path, "has non-integer b'labels'", CIFAR10) from error
        if label_array.shape != (len(data),):
            raise _corrupt(path, f"has {label_array.size} b'labels' for {len(data)} images", CIFAR10)
        if label_array.size and (label_array.min() < 0 or label_array.max() > 9):
            raise _corrupt(path, "has b'labels' outside 0..9", CIFAR10)
        # Rows are the red, green and blue 32x32 planes one after the other, each row-major.
        images.append(data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1))
        labels.append(label_array)
    return ArraySet(images=np.ascontiguousarray(np.concatenate(images)), labels=np.concatenate(labels))


# mnist and emnist (IDX files)


def _idx_folder(root: Path, candidates: Sequence[Path], probe: str, dataset: str) -> Path:
    """The first candidate folder holding `probe` (gzip or unpacked); else the error for it."""
    for folder in candidates:
        if (folder / f"{probe}.gz").is_file() or (folder / probe).is_file():
            return folder
    places = " or ".join(str(folder) for folder in candidates)
    raise DataError(f"{probe}.gz is missing from {places}: {_SOURCES[dataset]}")


def _read_idx_bytes(folder: Path, name: str, dataset: str) -> tuple[Path, bytes]:
    """Decompressed content of <name>.gz (or of the unpacked <name>)."""
    packed, plain = folder / f"{name}.gz", folder / name
    if packed.is_file():
        try:
            with gzip.open(packed, "rb") as handle:
                return packed, handle.read()
        except (OSError, EOFError, zlib.error) as error:
            raise _corrupt(packed, f"is not a complete gzip file ({error.__class__.__name__})",
                           dataset) from error
    if plain.is_file():
        return plain, plain.read_bytes()
    raise _missing(packed, dataset, str(folder))


def _parse_idx(path: Path, content: bytes, magic: int, dataset: str) -> np.ndarray:
    """The uint8 array of an IDX file: a big-endian magic, one uint32 per dim, then the data."""
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(content) < header:
        raise _corrupt(path, f"is {len(content)} bytes, shorter than its {header}-byte IDX header",
                       dataset)
    found, *dims = (int(value) for value in np.frombuffer(content, dtype=">u4", count=1 + ndim))
    if found != magic:
        raise _corrupt(path, f"has IDX magic 0x{found:08X} instead of 0x{magic:08X}", dataset)
    expected = int(np.prod(dims, dtype=np.int64))
    if len(content) - header != expected:
        raise _corrupt(path, f"holds {len(content) - header} data bytes where its header "
                       f"{tuple(dims)} announces {expected} (truncated?)", dataset)
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(dims)


def _read_idx_pair(folder: Path, names: tuple[str, str], dataset: str,
                   transpose: bool = False) -> ArraySet:
    image_path, image_bytes = _read_idx_bytes(folder, names[0], dataset)
    images = _parse_idx(image_path, image_bytes, IDX_IMAGES_MAGIC, dataset)
    label_path, label_bytes = _read_idx_bytes(folder, names[1], dataset)
    labels = _parse_idx(label_path, label_bytes, IDX_LABELS_MAGIC, dataset)
    if len(labels) != len(images):
        raise DataError(
            f"{label_path} holds {len(labels)} labels but {image_path.name} holds {len(images)} "
            f"images: replace both with the official files ({_SOURCES[dataset]})"
        )
    if transpose:
        # EMNIST stores each image column-major (transposed); flip it upright.
        images = images.transpose(0, 2, 1)
    return ArraySet(images=_to_rgb(images), labels=labels.astype(np.int64))


def _check_label_range(subsets: dict[str, ArraySet], count: int, folder: Path, dataset: str) -> None:
    for subset, arrays in subsets.items():
        if len(arrays) and (arrays.labels.min() < 0 or arrays.labels.max() >= count):
            raise DataError(
                f"the {subset} labels in {folder} reach {int(arrays.labels.max())}, outside the "
                f"{count} classes 0..{count - 1}: replace them with the official files "
                f"({_SOURCES[dataset]})"
            )


def _emnist_classes(folder: Path) -> list[str]:
    """emnist-balanced-mapping.txt: '<label> <ASCII code>' per line, labels 0..46 in order."""
    path = folder / EMNIST_MAPPING
    if not path.is_file():
        raise _missing(path, EMNIST, str(folder))
    pairs = []
    for line_no, line in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not all(field.isdigit() for field in fields) \
                or not 32 < int(fields[1]) < 127:
            raise _corrupt(path, f"line {line_no} is not '<label> <printable ASCII code>'", EMNIST)
        pairs.append((int(fields[0]), chr(int(fields[1]))))
    if [label for label, _ in pairs] != list(range(EMNIST_CLASSES)):
        raise _corrupt(path, f"does not map labels 0..{EMNIST_CLASSES - 1} in order", EMNIST)
    classes = [name for _, name in pairs]
    if len(set(classes)) != len(classes):
        raise _corrupt(path, "maps two labels to one character", EMNIST)
    return classes


def _to_rgb(grey: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 -> (N, H, W, 3), the grey level copied to each channel."""
    return np.repeat(grey[..., np.newaxis], 3, axis=3)

"""Real data for the reference models: scikit-learn's bundled digits (default, no download)
and a reader for the MNIST IDX files (``--data DIR``), plain or gzip-compressed."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEST_FRACTION = 0.25
# IDX type codes -> big-endian NumPy dtypes (http://yann.lecun.com/exdb/mnist/, "IDX format").
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """A data directory or IDX file that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Dataset:
    """A train/test split of images flattened to float32 rows in [0, 1], labels as int64."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    num_classes: int

    @property
    def num_features(self) -> int:
        """Return the number of input features (pixels) per sample."""
        return int(self.x_train.shape[1])

    def take_train(self, count: int) -> Dataset:
        """Return a copy keeping only the first ``count`` training samples."""
        return Dataset(
            self.name, self.x_train[:count], self.y_train[:count], self.x_test, self.y_test,
            self.image_shape, self.num_classes,
        )


def load_digits_split(seed: int = 0, test_fraction: float = TEST_FRACTION) -> Dataset:
    """Return scikit-learn's 8x8 digits (1,797 images) split by ``seed``, stratified by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return Dataset("digits", x_train, y_train, x_test, y_test, (8, 8), 10)


def _open_bytes(path: Path) -> bytes:
    """Return the bytes of ``path``, decompressed if it is gzip (by magic, not by name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: corrupt gzip data ({exc})") from exc


def read_idx(path: str | Path) -> np.ndarray:
    """Return the array stored in IDX file ``path`` (gzip or plain), in native byte order.

    Raises ``DataError`` for a missing file, a bad magic number, or a truncated payload.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = _open_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: truncated or oversized IDX data: header says {shape} "
            f"({expected} bytes) but the file holds {len(raw) - header}"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def find_idx_file(directory: Path, stem: str) -> Path:
    """Return the path of MNIST file ``stem`` in ``directory``: plain, ``.gz``, or dotted name."""
    dotted = stem.replace("-idx", ".idx")  # some mirrors ship "train-images.idx3-ubyte"
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory}: missing {stem} (or {stem}.gz)")


def _images_and_labels(
    directory: Path, images: str, labels: str
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Return (float32 image rows in [0, 1], int64 labels, image shape) after checking them."""
    x = read_idx(find_idx_file(directory, images))
    y = read_idx(find_idx_file(directory, labels))
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(
            f"{directory}: {images} {x.shape} and {labels} {y.shape} do not form "
            "an image set (want N x H x W images and N labels)"
        )
    scale = 255.0 if x.dtype == np.uint8 else max(float(x.max()), 1.0)
    rows = (x.reshape(len(x), -1) / scale).astype(np.float32)
    return rows, y.astype(np.int64), (int(x.shape[1]), int(x.shape[2]))


def load_mnist(directory: str | Path) -> Dataset:
    """Return the MNIST-format dataset in ``directory`` (the four standard IDX files)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    x_train, y_train, shape = _images_and_labels(
        directory, MNIST_FILES["train_images"], MNIST_FILES["train_labels"]
    )
    x_test, y_test, test_shape = _images_and_labels(
        directory, MNIST_FILES["test_images"], MNIST_FILES["test_labels"]
    )
    if test_shape != shape:
        raise DataError(f"{directory}: train images are {shape}, test images {test_shape}")
    classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return Dataset("mnist", x_train, y_train, x_test, y_test, shape, max(classes, 2))


def load_dataset(data_dir: str | None = None, seed: int = 0) -> Dataset:
    """Return MNIST from ``data_dir`` when given, else the bundled digits split by ``seed``."""
    return load_mnist(data_dir) if data_dir else load_digits_split(seed)

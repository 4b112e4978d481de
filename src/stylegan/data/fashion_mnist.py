"""Fashion-MNIST (Zalando, MIT licence) from the Debian package `dataset-fashion-mnist`: gzipped IDX files."""

from __future__ import annotations

import gzip
import os

import numpy as np

from stylegan.data.images import DatasetError

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FILES = {"train": "train-{}-idx{}-ubyte.gz", "test": "t10k-{}-idx{}-ubyte.gz"}


def find_fashion_mnist(path: str | os.PathLike | None = None) -> str | None:
    """The folder holding the Fashion-MNIST IDX files (`path` or the Debian location), or None if absent."""
    folder = os.fspath(path) if path is not None else DEFAULT_DIR
    return folder if os.path.isfile(os.path.join(folder, _FILES["train"].format("images", 3))) else None


def load_fashion_mnist(split: str = "train", path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of Fashion-MNIST.

    Args:
        split: 'train' (60,000 images) or 'test' (10,000 images).
        path: folder with the four `*-idx?-ubyte.gz` files; defaults to /usr/share/datasets/fashion-mnist.

    Returns:
        images uint8 [N, 28, 28] (white garment on black) and labels int64 [N] in 0..9 (see CLASSES).
    """
    if split not in _FILES:
        raise DatasetError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    folder = find_fashion_mnist(path)
    if folder is None:
        where = path if path is not None else DEFAULT_DIR
        raise DatasetError(f"Fashion-MNIST not found in {where}; install it: apt-get install dataset-fashion-mnist")
    images = _read_idx(os.path.join(folder, _FILES[split].format("images", 3)), ndim=3)
    labels = _read_idx(os.path.join(folder, _FILES[split].format("labels", 1)), ndim=1).astype(np.int64)
    if len(images) != len(labels):
        raise DatasetError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _read_idx(filename: str, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes: magic 0x0000080D (D = ndim), big-endian int32 dims, data."""
    with gzip.open(filename, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x800 | ndim:
        raise DatasetError(f"{filename}: not an IDX file of {ndim}-D unsigned bytes (magic {magic:#x})")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetError(f"{filename}: truncated ({body.size} bytes for shape {dims})")
    return body.reshape(dims).copy()

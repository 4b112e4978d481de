"""ImageFolderDataset: a torch Dataset over a folder or .zip of images, with NVIDIA's dataset.json labels."""

from __future__ import annotations

import operator
import os
import warnings
from collections import Counter

import numpy as np
import torch

from stylegan.data.images import (
    DatasetError,
    ImageSource,
    ScanResult,
    check_resolution,
    format_skipped,
    majority_channels,
    make_square,
    open_image,
    scan,
    to_channels,
    to_chw,
)


class DatasetWarning(UserWarning):
    """Some files of a dataset were skipped (unreadable, truncated, empty or not images)."""


class ImageFolderDataset(torch.utils.data.Dataset):
    """Images from a folder (recursive) or a .zip, as (image uint8 [C, H, W], label float32 [label_dim]).

    Args:
        path: folder or .zip of png/jpg/jpeg/webp/pgm/ppm/bmp files, optionally with `dataset.json` labels.
        resolution: output side; when None, all images must already be square, same power-of-two side.
            When given, images are squared with `transform` and resized on the fly with `resize_filter`.
        use_labels: return the labels of dataset.json (ints become one-hot vectors of size max + 1).
        xflip: double the length; the second half holds the mirrored images, as NVIDIA does.
        max_size: keep a random subset of this many images (chosen with `random_seed`).
        random_seed: seed of that subset.
        channels: 1 or 3; None takes the channel count most images have. Alpha is composited onto black.
        transform: 'center-crop', 'center-crop-wide' or 'pad', used only for images that need resizing.
        resize_filter: 'lanczos' or 'box'.
        verify: decode every image once at construction so that truncated files are skipped up front
            (costs one full read; pass False for large datasets made by `make_dataset`).

    Unusable files are skipped with a `DatasetWarning` and listed in `skipped`; a `DatasetError`
    (a ValueError) is raised when none is usable.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        resolution: int | None = None,
        use_labels: bool = False,
        xflip: bool = False,
        max_size: int | None = None,
        random_seed: int = 0,
        channels: int | None = None,
        transform: str = "center-crop",
        resize_filter: str = "lanczos",
        verify: bool = True,
    ):
        self._source = ImageSource(path)
        self._transform, self._resize_filter = transform, resize_filter
        found = scan(self._source, verify=verify)
        self.skipped: list[tuple[str, str]] = found.skipped
        self._check_usable(found)
        self._names = found.names
        self._channels = _check_channels(channels) if channels is not None else majority_channels(found.modes)
        self._resolution = self._pick_resolution(found, resolution)
        self._labels = self._load_labels() if use_labels else np.zeros([len(self._names), 0], np.float32)
        self._raw_idx = _subset(len(self._names), max_size, random_seed)  # [n] indices into _names
        self._xflip = bool(xflip)  # items n..2n-1 are the mirrored copies of items 0..n-1

    # ---- construction steps -------------------------------------------------------------------------------
    def _check_usable(self, found: ScanResult) -> None:
        path = self._source.path
        if found.skipped:
            msg = f"{path}: skipped {len(found.skipped)} unusable file(s): {format_skipped(found.skipped)}"
            if not found.names:
                raise DatasetError(f"{path}: no usable images; {msg.split(': ', 1)[1]}")
            warnings.warn(msg, DatasetWarning, stacklevel=3)
        if not found.names:
            raise DatasetError(f"{path}: no images found (looked for png, jpg, jpeg, webp, pgm, ppm, bmp files)")

    def _pick_resolution(self, found: ScanResult, resolution: int | None) -> int:
        if resolution is not None:
            return check_resolution(resolution)
        sizes = Counter(found.sizes)
        (w, h), _ = sizes.most_common(1)[0]
        if len(sizes) == 1 and w == h and w >= 4 and not w & (w - 1):
            return w
        shown = ", ".join(f"{a}x{b} ({n})" for (a, b), n in sizes.most_common(4))
        problem = "different sizes" if len(sizes) > 1 else "a size that is not a square power of two"
        raise DatasetError(
            f"{self._source.path}: images have {problem}: {shown}; make a dataset with "
            f"`stylegan dataset --source {self._source.path} --dest out.zip --resolution N` "
            f"(or pass resolution=N)"
        )

    def _load_labels(self) -> np.ndarray:
        table = self._source.read_labels()
        if table is None:
            raise DatasetError(f"{self._source.path}: use_labels=True but there is no dataset.json with labels")
        missing = [n for n in self._names if n not in table]
        if missing:
            raise DatasetError(
                f"{self._source.path}: {len(missing)} image(s) have no label in dataset.json, e.g. {missing[0]}"
            )
        return _labels_array([table[n] for n in self._names], self._source.path)

    # ---- torch Dataset ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._raw_idx) * (2 if self._xflip else 1)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        raw, mirrored = self._locate(idx)
        image = self._load_image(raw)  # [C, H, W] uint8
        if mirrored:
            image = image[:, :, ::-1]
        return np.array(image, order="C"), self._labels[raw].copy()  # a writable copy: torch warns on read-only

    def _locate(self, idx: int) -> tuple[int, bool]:
        """Item `idx` (negative counts from the end) -> (index into the file list, whether it is mirrored)."""
        idx, length = operator.index(idx), len(self)
        if not -length <= idx < length:
            raise IndexError(f"index {idx} out of range for a dataset of {length} items")
        half, pos = divmod(idx % length, len(self._raw_idx))
        return int(self._raw_idx[pos]), half == 1

    def _load_image(self, raw_idx: int) -> np.ndarray:
        name = self._names[raw_idx]
        try:
            img = open_image(self._source.read(name))
        except OSError as err:
            raise DatasetError(f"{self._source.path}: cannot read {name}: {err}") from err
        img = to_channels(img, self._channels)
        img = make_square(img, self._resolution, self._transform, self._resize_filter)
        return to_chw(img)

    def get_label(self, idx: int) -> np.ndarray:
        """The label of item `idx`, float32 [label_dim] (empty when labels are off)."""
        return self._labels[self._locate(idx)[0]].copy()

    # ---- properties ---------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return os.path.splitext(os.path.basename(os.path.normpath(self._source.path)))[0]

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def num_channels(self) -> int:
        return self._channels

    @property
    def image_shape(self) -> list[int]:
        return [self._channels, self._resolution, self._resolution]

    @property
    def label_dim(self) -> int:
        return int(self._labels.shape[1])

    @property
    def label_shape(self) -> list[int]:
        return [self.label_dim]

    @property
    def has_labels(self) -> bool:
        return self.label_dim > 0

    @property
    def path(self) -> str:
        return self._source.path

    @property
    def subset(self) -> np.ndarray:
        """Indices into the sorted file list of the images used (all of them unless `max_size`), int64 [n]."""
        return self._raw_idx.copy()

    @property
    def xflip(self) -> bool:
        """Whether the dataset is doubled with mirrored copies (items n..2n-1 mirror items 0..n-1)."""
        return self._xflip


def _check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 or 3, got {channels}")
    return channels


def _subset(n: int, max_size: int | None, seed: int) -> np.ndarray:
    idx = np.arange(n, dtype=np.int64)
    if max_size is not None and max_size < n:
        np.random.RandomState(seed).shuffle(idx)
        idx = np.sort(idx[:max_size])
    return idx


def _labels_array(labels: list, path: str) -> np.ndarray:
    """Ints -> one-hot float32 [N, max + 1]; lists -> float32 [N, len]."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        ints = np.asarray(labels, dtype=np.int64)
        if ints.min() < 0:
            raise DatasetError(f"{path}: dataset.json has negative class labels")
        onehot = np.zeros([len(ints), int(ints.max()) + 1], dtype=np.float32)
        onehot[np.arange(len(ints)), ints] = 1
        return onehot
    try:
        arr = np.asarray(labels, dtype=np.float32)
    except (ValueError, TypeError) as err:
        raise DatasetError(f"{path}: dataset.json labels must all be ints or all lists of one length") from err
    if arr.ndim != 2:
        raise DatasetError(f"{path}: dataset.json labels must all be ints or all lists of one length")
    return arr

"""The dataset tool: turn a folder, a zip or Fashion-MNIST into a dataset of square PNGs (zip or folder)."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import PIL.Image

from stylegan.data.fashion_mnist import find_fashion_mnist, load_fashion_mnist
from stylegan.data.images import (
    RESIZE_FILTERS,
    TRANSFORMS,
    DatasetError,
    ImageSource,
    check_resolution,
    format_skipped,
    majority_channels,
    make_square,
    open_image,
    scan,
    to_channels,
)

FACE_TRANSFORM = "align-face"  # detect the largest face and align it as FFHQ was aligned (stylegan.faces)
DATASET_TRANSFORMS = (*TRANSFORMS, FACE_TRANSFORM)

# One item of a source: (name, a function returning the decoded image, label or None).
Item = tuple[str, Callable[[], PIL.Image.Image], "int | list[float] | None"]


@dataclass
class DatasetReport:
    """What `make_dataset` wrote and what it left out."""

    dest: str
    num_images: int
    resolution: int
    channels: int
    num_labelled: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    ignored: int = 0  # files without an image extension

    def summary(self) -> str:
        """A few lines for people: counts, shape, and the skipped files."""
        lines = [
            f"wrote {self.num_images} images of {self.resolution}x{self.resolution}x{self.channels} "
            f"to {self.dest}" + (f", with labels for {self.num_labelled}" if self.num_labelled else ", without labels")
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s): {format_skipped(self.skipped)}")
        if self.ignored:
            lines.append(f"ignored {self.ignored} file(s) that do not have an image extension")
        return "\n".join(lines)


def make_dataset(
    source: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    resolution: int,
    transform: str | None = "center-crop",
    channels: int | None = None,
    max_images: int | None = None,
    resize_filter: str = "lanczos",
    overwrite: bool = False,
) -> DatasetReport:
    """Write a dataset of `resolution`² PNGs named like NVIDIA's (00000/img00000000.png) + labels.

    Args:
        source: a folder (searched recursively), a .zip, or Fashion-MNIST: 'fashion-mnist' (train split),
            'fashion-mnist:test', or a folder holding its IDX files. Fashion-MNIST is padded 28 -> 32.
        dest: a .zip path, or a folder (which must be empty or absent). Written to a temporary name first and
            renamed at the end, so an interrupted run leaves no partial dataset.
        resolution: output side, a power of two.
        transform: how non-square images become square: 'center-crop', 'center-crop-wide', 'pad', None
            (non-square images are then an error), or 'align-face': the largest face of each image, aligned the
            FFHQ way (needs the `faces` extra; images without a face are skipped and listed; `resize_filter`
            does not apply).
        channels: 1 or 3; None takes the count most source images have.
        max_images: stop after writing this many images.
        resize_filter: 'lanczos' (default) or 'box' (NVIDIA's choice for its FID numbers when downscaling
            by an integer factor).
        overwrite: replace an existing `dest` (a zip, or a folder holding only a dataset) once the new one is
            complete; without it an existing `dest` raises DestinationExistsError.

    Returns:
        A DatasetReport; unreadable, truncated, empty, non-image and unlabelled (when others have labels)
        files are skipped and listed there.
    """
    _check_options(resolution, transform, channels, max_images, resize_filter)
    dest = os.fspath(dest)
    writer = _Writer(dest, overwrite)
    items, report = _open_source(source, dest, resolution, channels)
    shape = (
        _face_shaper(resolution)
        if transform == FACE_TRANSFORM
        else (lambda img: make_square(img, resolution, transform, resize_filter))
    )
    with writer:
        for name, load, label in items:
            if max_images is not None and report.num_images >= max_images:
                break
            try:
                img = shape(to_channels(load(), report.channels))
            except (OSError, ValueError, SyntaxError) as err:
                report.skipped.append((name, str(err) or type(err).__name__))
                continue
            writer.add(img, label)
            report.num_images += 1
        if report.num_images == 0:
            raise DatasetError(f"{source}: no usable images; {format_skipped(report.skipped) or 'none found'}")
        report.num_labelled = writer.finish()
    return report


def _face_shaper(resolution: int) -> Callable[[PIL.Image.Image], PIL.Image.Image]:
    """image -> its largest face aligned at resolution² (same channels); FaceError (a ValueError) when none."""
    from stylegan.faces import align_faces, to_hwc
    from stylegan.faces.photo import hwc_to_pil

    return lambda img: hwc_to_pil(align_faces(to_hwc(img), resolution=resolution, largest=True)[0].image)


def _check_options(resolution, transform, channels, max_images, resize_filter) -> None:
    check_resolution(resolution)
    if transform not in (None, *DATASET_TRANSFORMS):
        raise DatasetError(f"unknown transform {transform!r}; choose one of {', '.join(DATASET_TRANSFORMS)}")
    if transform == FACE_TRANSFORM:
        from stylegan.faces import FacesUnavailableError, require_faces

        try:
            require_faces()
        except FacesUnavailableError as err:
            raise DatasetError(str(err)) from None
    if channels not in (None, 1, 3):
        raise DatasetError(f"channels must be 1 or 3, got {channels}")
    if max_images is not None and max_images < 1:
        raise DatasetError(f"max_images must be at least 1, got {max_images}")
    if resize_filter not in RESIZE_FILTERS:
        raise DatasetError(f"unknown resize filter {resize_filter!r}; choose one of {', '.join(RESIZE_FILTERS)}")


def _open_source(source, dest: str, resolution: int, channels: int | None) -> tuple[Iterator[Item], DatasetReport]:
    text = os.fspath(source)
    if text in ("fashion-mnist", "fashion-mnist:train", "fashion-mnist:test"):
        return _fashion_items(None, text.partition(":")[2] or "train"), DatasetReport(
            dest, 0, resolution, channels or 1
        )
    if os.path.isdir(text) and find_fashion_mnist(text):
        return _fashion_items(text, "train"), DatasetReport(dest, 0, resolution, channels or 1)
    if os.path.abspath(text) == os.path.abspath(dest):
        raise DatasetError(f"{text}: the destination must differ from the source")
    src = ImageSource(text)
    found = scan(src, verify=False)  # headers only; decoding errors are caught while writing
    report = DatasetReport(dest, 0, resolution, channels or 1, skipped=found.skipped, ignored=found.ignored)
    if not found.names:
        detail = f"; skipped {format_skipped(found.skipped)}" if found.skipped else ""
        raise DatasetError(f"{text}: no usable images (looked for png, jpg, jpeg, webp, pgm, ppm, bmp){detail}")
    report.channels = channels or majority_channels(found.modes)
    return _folder_items(src, found.names, src.read_labels(), report), report


def _folder_items(src: ImageSource, names: list[str], labels: dict | None, report: DatasetReport) -> Iterator[Item]:
    for name in names:
        if labels is not None and name not in labels:
            report.skipped.append((name, "no label in dataset.json"))
            continue
        yield name, (lambda n=name: open_image(src.read(n))), (labels or {}).get(name)


def _fashion_items(path: str | None, split: str) -> Iterator[Item]:
    images, labels = load_fashion_mnist(split, path)
    images = np.pad(images, [(0, 0), (2, 2), (2, 2)])  # [N, 32, 32]: NVIDIA's MNIST layout
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        yield f"{split}[{i}]", (lambda a=img: PIL.Image.fromarray(a, "L")), int(label)


class DestinationExistsError(DatasetError):
    """The destination of `make_dataset` exists and `overwrite` was not given."""


class _Writer:
    """Writes images and labels to a temporary zip or folder beside `dest`, renamed onto `dest` on success.

    On any exception (KeyboardInterrupt included) the temporary output is removed and `dest` is left as it was.
    """

    def __init__(self, dest: str, overwrite: bool = False):
        self.dest, self.is_zip = dest, dest.lower().endswith(".zip")
        parent = os.path.dirname(os.path.abspath(dest))
        if not os.path.isdir(parent):
            raise DatasetError(f"{dest}: the folder {parent} does not exist")
        _check_dest(dest, self.is_zip, overwrite)
        stem = f".{os.path.basename(os.path.normpath(dest))}"
        self.tmp = os.path.join(parent, f"{stem}.tmp{os.getpid()}")
        self.old = os.path.join(parent, f"{stem}.old{os.getpid()}")  # a replaced folder, until the swap is done
        self.labels: list[list] = []
        self.count = 0

    def __enter__(self) -> _Writer:
        if self.is_zip:
            self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)
        else:
            os.makedirs(self.tmp)
        return self

    def add(self, img: PIL.Image.Image, label) -> None:
        name = f"{self.count // 1000:05d}/img{self.count:08d}.png"
        buf = io.BytesIO()
        img.save(buf, format="png", compress_level=1)
        self._write(name, buf.getvalue())
        if label is not None:
            self.labels.append([name, label])
        self.count += 1

    def _write(self, name: str, data: bytes) -> None:
        if self.is_zip:
            self.zip.writestr(name, data)
            return
        os.makedirs(os.path.join(self.tmp, os.path.dirname(name)), exist_ok=True)
        with open(os.path.join(self.tmp, name), "wb") as f:
            f.write(data)

    def finish(self) -> int:
        """Write dataset.json when there are labels; returns how many images are labelled."""
        if self.labels:
            self._write("dataset.json", json.dumps({"labels": self.labels}).encode())
        return len(self.labels)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.is_zip:
                self.zip.close()
            if exc_type is None:
                self._publish()
        finally:
            if os.path.isdir(self.tmp):
                shutil.rmtree(self.tmp, ignore_errors=True)
            elif os.path.lexists(self.tmp):
                os.remove(self.tmp)

    def _publish(self) -> None:
        """Move the finished output onto `dest`; a zip is replaced in one rename, a folder in two."""
        if self.is_zip or not os.path.isdir(self.dest):
            os.replace(self.tmp, self.dest)
            return
        os.rename(self.dest, self.old)  # rename cannot replace a folder: move the old one aside first
        os.rename(self.tmp, self.dest)
        shutil.rmtree(self.old, ignore_errors=True)


def _check_dest(dest: str, is_zip: bool, overwrite: bool) -> None:
    """Raises unless `dest` is absent, an empty folder, or (with `overwrite`) something we may replace."""
    if not os.path.lexists(dest) or (not is_zip and os.path.isdir(dest) and not os.listdir(dest)):
        return
    if is_zip and os.path.isdir(dest):
        raise DatasetError(f"{dest} is a folder, not a zip file")
    if not is_zip and not os.path.isdir(dest):
        raise DatasetError(f"{dest} is a file, not a folder (a zip destination must end in .zip)")
    if not overwrite:
        raise DestinationExistsError(f"{dest} already exists")
    if not is_zip and not _holds_only_a_dataset(dest):
        raise DatasetError(f"{dest}: will not replace a folder that holds more than a dataset; remove it first")


def _holds_only_a_dataset(folder: str) -> bool:
    """True when `folder` holds only what `make_dataset` writes: dataset.json and 5-digit folders of images."""
    return all(
        entry == "dataset.json" or (len(entry) == 5 and entry.isdigit() and os.path.isdir(os.path.join(folder, entry)))
        for entry in os.listdir(folder)
    )

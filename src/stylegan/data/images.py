"""Image files in a folder or a .zip: listing, probing, decoding, channel conversion and squaring.

One place holds this logic so that the dataset (resizing on the fly) and the dataset tool (resizing once, to a
zip) treat every file the same way.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import PIL.Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".pgm", ".ppm", ".bmp")
TRANSFORMS = ("center-crop", "center-crop-wide", "pad")
RESIZE_FILTERS = {"lanczos": PIL.Image.Resampling.LANCZOS, "box": PIL.Image.Resampling.BOX}
WIDE_ASPECT = 4 / 3  # width / height of the band kept by 'center-crop-wide' (NVIDIA's LSUN-car 512x384 setup)
_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class DatasetError(ValueError):
    """A dataset cannot be used as given: empty, unreadable, inconsistent or badly labelled."""


@dataclass
class ScanResult:
    """What a scan of the image files found: usable files with their size and mode, and skipped files."""

    names: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height)
    modes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    ignored: int = 0  # files whose extension is not an image extension


class ImageSource:
    """Read-only view of the files in a folder (recursive) or a .zip archive, with '/'-separated names.

    The zip is opened lazily and once per process, so the object pickles for DataLoader workers.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            self.is_zip = False
        elif os.path.isfile(self.path) and zipfile.is_zipfile(self.path):
            self.is_zip = True
        elif os.path.exists(self.path):
            raise DatasetError(f"{self.path}: not a folder or a .zip archive")
        else:
            raise DatasetError(f"{self.path}: no such folder or file")
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_zip_pid": None}

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def list_files(self) -> list[str]:
        """All regular files, sorted, skipping hidden files and macOS resource folders."""
        if self.is_zip:
            names = [info.filename for info in self._zipfile().infolist() if not info.is_dir()]
        else:
            names = []
            for root, dirs, files in os.walk(self.path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                rel = os.path.relpath(root, self.path)
                names += [f if rel == "." else f"{rel}/{f}".replace(os.sep, "/") for f in files]
        return sorted(n for n in names if not any(p.startswith(".") or p == "__MACOSX" for p in n.split("/")))

    def read(self, name: str) -> bytes:
        """The bytes of one file."""
        if self.is_zip:
            return self._zipfile().read(name)
        with open(os.path.join(self.path, *name.split("/")), "rb") as f:
            return f.read()

    def read_labels(self) -> dict[str, int | list[float]] | None:
        """Labels from `dataset.json` ({"labels": [[name, label], ...]}), or None when there are none."""
        try:
            raw = self.read("dataset.json")
        except (FileNotFoundError, KeyError):
            return None
        try:
            labels = json.loads(raw).get("labels")
        except (ValueError, AttributeError) as err:
            raise DatasetError(f"{self.path}: dataset.json is not valid JSON with a 'labels' list") from err
        if labels is None:
            return None
        try:
            return {str(name).replace("\\", "/"): label for name, label in labels}
        except (TypeError, ValueError) as err:
            raise DatasetError(f"{self.path}: dataset.json 'labels' must be a list of [name, label] pairs") from err


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the image extensions we read."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def open_image(data: bytes, *, full: bool = True) -> PIL.Image.Image:
    """Open image bytes; with `full`, decode every pixel so that truncated files fail here."""
    if not data:
        raise OSError("empty file")
    img = PIL.Image.open(io.BytesIO(data))
    if full:
        img.load()
    return img


def scan(source: ImageSource, *, verify: bool = True) -> ScanResult:
    """Probe every image file: size and mode of the usable ones, reasons for the others."""
    result = ScanResult()
    for name in source.list_files():
        if not is_image_name(name):
            result.ignored += int(name != "dataset.json")
            continue
        try:
            data = source.read(name)
            header = None if verify else _png_header(data)
            if header is None:
                img = open_image(data, full=verify)
                header = (img.size, img.mode)
        except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as err:
            result.skipped.append((name, _reason(err)))
            continue
        result.names.append(name)
        result.sizes.append(header[0])
        result.modes.append(header[1])
    return result


_PNG_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}  # IHDR colour type -> PIL mode (8-bit)


def _png_header(data: bytes) -> tuple[tuple[int, int], str] | None:
    """((width, height), mode) read straight from a PNG's IHDR chunk (10x faster than PIL), or None."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or data[25] not in _PNG_MODES:
        return None
    size = (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
    mode = "I;16" if data[25] == 0 and data[24] == 16 else _PNG_MODES[data[25]]
    return size, mode


def _reason(err: Exception) -> str:
    text = str(err).split(" (")[0].strip() or type(err).__name__
    return "not an image" if isinstance(err, PIL.UnidentifiedImageError) else text


def format_skipped(skipped: list[tuple[str, str]], limit: int = 10) -> str:
    """One line naming the skipped files and why, e.g. 'a.png (empty file), b.jpg (truncated)'."""
    shown = ", ".join(f"{name} ({reason})" for name, reason in skipped[:limit])
    return shown + (f", and {len(skipped) - limit} more" if len(skipped) > limit else "")


def mode_channels(mode: str) -> int:
    """1 for grayscale modes (with or without alpha), 3 for everything else."""
    return 1 if mode in _GRAY_MODES else 3


def majority_channels(modes: list[str]) -> int:
    """The channel count most images have; a tie goes to 3 so that no colour is lost."""
    counts = Counter(mode_channels(m) for m in modes)
    return 1 if counts[1] > counts[3] else 3


def to_channels(img: PIL.Image.Image, channels: int) -> PIL.Image.Image:
    """Convert to 'L' (channels=1) or 'RGB' (channels=3); alpha composited onto black, 16-bit scaled."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        arr = arr / 257.0 if arr.max(initial=0) > 255 else arr  # 16-bit range -> 8-bit range
        img = PIL.Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "La", "PA", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = PIL.Image.alpha_composite(PIL.Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return img.convert("L" if channels == 1 else "RGB")


def check_resolution(resolution: int) -> int:
    """Raise unless `resolution` is a power of two >= 4."""
    if not isinstance(resolution, int) or resolution < 4 or resolution & (resolution - 1):
        raise DatasetError(f"resolution must be a power of two >= 4 (4, 8, ..., 1024), got {resolution}")
    return resolution


def make_square(img: PIL.Image.Image, resolution: int, transform: str | None, resize_filter: str) -> PIL.Image.Image:
    """Crop or pad to a square as `transform` says, then resize to `resolution` with `resize_filter`.

    'center-crop' keeps the central square; 'center-crop-wide' keeps a central 4:3 band, resizes it to
    the full width and pads top and bottom with black; 'pad' keeps the whole image and pads the short side
    with black; None requires a square image.
    """
    w, h = img.size
    if transform == "center-crop" and w != h:
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    elif transform == "center-crop-wide":
        return _center_crop_wide(img, resolution, resize_filter)
    elif transform == "pad" and w != h:
        img = _paste_centred(img, max(w, h), max(w, h))
    elif transform is None and w != h:
        raise DatasetError(f"image is {w}x{h}, not square: choose a transform (center-crop, center-crop-wide, pad)")
    elif transform not in (None, *TRANSFORMS):
        raise DatasetError(f"unknown transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")
    return _resize(img, resolution, resolution, resize_filter)


def _center_crop_wide(img: PIL.Image.Image, resolution: int, resize_filter: str) -> PIL.Image.Image:
    w, h = img.size
    bw, bh = (w, round(w / WIDE_ASPECT)) if w / h <= WIDE_ASPECT else (round(h * WIDE_ASPECT), h)
    bw, bh = min(bw, w), min(bh, h)
    img = img.crop(((w - bw) // 2, (h - bh) // 2, (w - bw) // 2 + bw, (h - bh) // 2 + bh))
    img = _resize(img, resolution, round(resolution / WIDE_ASPECT), resize_filter)
    return _paste_centred(img, resolution, resolution)


def _paste_centred(img: PIL.Image.Image, width: int, height: int) -> PIL.Image.Image:
    canvas = PIL.Image.new(img.mode, (width, height))  # black
    canvas.paste(img, ((width - img.size[0]) // 2, (height - img.size[1]) // 2))
    return canvas


def _resize(img: PIL.Image.Image, width: int, height: int, resize_filter: str) -> PIL.Image.Image:
    if resize_filter not in RESIZE_FILTERS:
        raise DatasetError(f"unknown resize filter {resize_filter!r}; choose one of {', '.join(RESIZE_FILTERS)}")
    if img.size == (width, height):
        return img
    return img.resize((width, height), RESIZE_FILTERS[resize_filter])


def to_chw(img: PIL.Image.Image) -> np.ndarray:
    """PIL image -> uint8 array [C, H, W]."""
    arr = np.asarray(img, dtype=np.uint8)
    return (arr[:, :, None] if arr.ndim == 2 else arr).transpose(2, 0, 1)

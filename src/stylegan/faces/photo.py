"""Photos in: reading a file with its size checked before any pixel is decoded, and one array layout.

Photos and faces are handed around as uint8 numpy arrays [H, W, C] with C = 1 (grey) or 3 (RGB): dlib's layout.
Coordinates are (x, y) in pixels with pixel centres at integers (dlib's and OpenCV's convention).
"""

from __future__ import annotations

import io
import os

import numpy as np
import PIL.Image
import PIL.ImageOps

from stylegan.faces.models import FaceError

MIN_SIDE = 32  # smaller images cannot hold a face the detector finds (its window is 80 px; upsampled twice: 20 px)
MAX_SIDE = 16384
MAX_PIXELS = 64 * 1024 * 1024


class PhotoError(FaceError):
    """An input is not an image we accept: unreadable, or too small or too large."""


def check_size(width: int, height: int) -> None:
    """Raise PhotoError unless both sides are within [MIN_SIDE, MAX_SIDE] and the area within MAX_PIXELS."""
    if min(width, height) < MIN_SIDE:
        raise PhotoError(f"image is {width}x{height}: too small for face detection (sides >= {MIN_SIDE} px)")
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise PhotoError(
            f"image is {width}x{height}: too large (sides <= {MAX_SIDE} px, at most {MAX_PIXELS // 2**20} Mpx)"
        )


def load_photo(source: str | os.PathLike | bytes) -> np.ndarray:
    """Read an image file (or its bytes) into uint8 [H, W, C], C = 1 for grey images and 3 otherwise.

    The size is checked from the header before decoding; EXIF orientation is applied; alpha is dropped.
    Raises PhotoError for unreadable, truncated, tiny or huge images.
    """
    name = "image" if isinstance(source, bytes) else os.fspath(source)
    try:
        with PIL.Image.open(io.BytesIO(source) if isinstance(source, bytes) else name) as img:
            check_size(*img.size)  # from the header: nothing is decoded yet
            img.load()
            return pil_to_hwc(PIL.ImageOps.exif_transpose(img))
    except PhotoError as err:
        raise PhotoError(f"{name}: {err}") from None
    except PIL.UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image") from None
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as err:
        raise PhotoError(f"{name}: cannot read the image ({str(err).split(' (')[0] or type(err).__name__})") from None


def pil_to_hwc(img: PIL.Image.Image) -> np.ndarray:
    """PIL image in any mode -> uint8 [H, W, 1] for grey modes, [H, W, 3] otherwise (alpha dropped)."""
    grey = img.mode in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")
    if img.mode.startswith("I") or img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = arr / 257.0 if arr.max(initial=0) > 255 else arr
        img = PIL.Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    arr = np.asarray(img.convert("L" if grey else "RGB"), dtype=np.uint8)
    return np.ascontiguousarray(arr[:, :, None] if arr.ndim == 2 else arr)


def to_hwc(image, *, check: bool = True) -> np.ndarray:
    """A photo as uint8 [H, W, C] (C = 1 or 3) from a PIL image, a numpy array [H, W] / [H, W, C] or a torch
    uint8 tensor [C, H, W] (the layout of stylegan.images). With `check`, its size is checked with check_size."""
    if isinstance(image, PIL.Image.Image):
        arr = pil_to_hwc(image)
    elif isinstance(image, np.ndarray):
        arr = image[:, :, None] if image.ndim == 2 else image
    elif hasattr(image, "permute"):  # a torch tensor [C, H, W]
        arr = image.detach().to("cpu").permute(1, 2, 0).numpy()
    else:
        raise PhotoError(f"expected an image (PIL, numpy [H, W, C] or torch [C, H, W]), got {type(image).__name__}")
    if arr.ndim != 3 or arr.shape[2] not in (1, 3) or arr.dtype != np.uint8:
        raise PhotoError(f"expected uint8 pixels [H, W, C] with C = 1 or 3, got {arr.dtype} {list(arr.shape)}")
    if check:
        check_size(arr.shape[1], arr.shape[0])
    return np.ascontiguousarray(arr)


def hwc_to_pil(arr: np.ndarray) -> PIL.Image.Image:
    """uint8 [H, W, 1] -> PIL 'L', [H, W, 3] -> PIL 'RGB'."""
    return PIL.Image.fromarray(arr[:, :, 0], "L") if arr.shape[2] == 1 else PIL.Image.fromarray(arr, "RGB")

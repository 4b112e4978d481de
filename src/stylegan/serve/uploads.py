"""Checks an uploaded image before anything else touches it: size, format, pixel count, complete data.

Uploads arrive as the request body (bytes in memory; no file name from the client is used, so no client path ever
reaches `open`). Refusals are `UploadError`s carrying the HTTP status and one line for the user:
413 too large (bytes or pixels, checked from the header before any pixel is decoded), 415 not an accepted image
format (SVG, HTML, text, ...), 400 empty, truncated or corrupt. The Check and Project views decode uploads with
`open_image` and nothing else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import PIL.Image

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "PPM")  # PIL tries no other: no SVG, PDF/EPS (Ghostscript), TIFF zoo
SHOWN = {"WEBP": "WebP", "PPM": "PGM/PPM"}


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000


class UploadError(ValueError):
    """A refused upload: `status` is the HTTP code, the message says why and what is accepted."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def too_large(size: int, limits: UploadLimits) -> UploadError:
    return UploadError(413, f"upload of {size:,} bytes is over the limit of {limits.max_bytes // 2**20} MB")


def inspect_image(data: bytes, limits: UploadLimits) -> dict:
    """Opens and fully decodes `data` within the limits; returns {format, width, height, mode, bytes}."""
    img = open_image(data, limits)
    return dict(format=img.format, width=img.width, height=img.height, mode=img.mode, bytes=len(data))


def open_image(data: bytes, limits: UploadLimits) -> PIL.Image.Image:
    """`data` decoded within the limits: a loaded PIL image (first frame), or an UploadError."""
    if not data:
        raise UploadError(400, "empty upload: send an image file as the request body")
    if len(data) > limits.max_bytes:
        raise too_large(len(data), limits)
    img = _open(data)
    width, height = img.size
    if width * height > limits.max_pixels:
        megapixels = f"{width * height / 1e6:.0f} MP; the limit is {limits.max_pixels / 1e6:g} MP"
        raise UploadError(413, f"image is {width}x{height} ({megapixels})")
    try:
        img.load()
    except PIL.Image.DecompressionBombError as err:
        raise UploadError(413, f"image refused as a decompression bomb: {err}") from None
    except Exception as err:  # PIL raises OSError, ValueError, SyntaxError, struct.error, ... for bad data
        raise UploadError(400, f"the {img.format} file is truncated or corrupt ({_line(err)})") from None
    return img


def _open(data: bytes) -> PIL.Image.Image:
    """Reads the header only (PIL decodes lazily); refuses anything but FORMATS."""
    try:
        return PIL.Image.open(io.BytesIO(data), formats=FORMATS)
    except PIL.Image.DecompressionBombError as err:
        raise UploadError(413, f"image refused as a decompression bomb: {err}") from None
    except Exception:  # UnidentifiedImageError, or a header so broken that a plugin raised
        accepted = ", ".join(SHOWN.get(f, f) for f in FORMATS)
        raise UploadError(415, f"not an accepted image: send {accepted}") from None


def _line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__

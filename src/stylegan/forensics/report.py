"""Everything `stylegan detect` says about one file, as a plain dict (JSON-ready); bad files give {'error': ...}."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import PIL.Image

from stylegan.forensics.mark import DEFAULT_KEY, detect
from stylegan.forensics.metadata import PREFIX, read_metadata, says_generated

MAX_PIXELS = 100_000_000  # larger images are refused rather than decoded (decompression bombs)


def load_image(path: str | Path) -> tuple[np.ndarray, dict[str, str]]:
    """uint8 pixels [H, W] or [H, W, 3] (first frame of an animation) and the text metadata of an image file.

    Raises ValueError with one line for anything that is not a readable, complete image.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings(record=False):  # a bomb warning becomes an error for this read only
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ValueError(f"{img.width}x{img.height} is too large (over {MAX_PIXELS:,} pixels)")
                img.load()
                meta = read_metadata(img)
                pixels = np.asarray(img.convert("L" if img.mode in ("1", "L", "I;16", "I", "F") else "RGB"))
    except (PIL.UnidentifiedImageError, PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning):
        raise ValueError("not an image Pillow can read (or too large)") from None
    except OSError as err:
        if isinstance(err, FileNotFoundError | IsADirectoryError | PermissionError):
            raise ValueError(err.strerror.lower() if err.strerror else str(err)) from None
        raise ValueError(f"broken or truncated image ({str(err).splitlines()[0]})") from None
    except SyntaxError as err:  # Pillow's parsers raise it for malformed headers
        raise ValueError(f"malformed image ({err})") from None
    return pixels, meta


def inspect_file(path: str | Path, *, key: str = DEFAULT_KEY) -> dict:
    """{'file', 'size', 'mark': {...}, 'metadata': {...}} for one file, or {'file', 'error'}."""
    try:
        pixels, meta = load_image(path)
    except ValueError as err:
        return {"file": str(path), "error": str(err)}
    result = detect(pixels, key=key)
    mark = {"found": result.found, "pilot": round(result.pilot, 2), "reason": result.reason}
    if result.found:
        mark.update(
            tool=result.payload.tool,
            model=f"{result.payload.model:03x}",
            seed=result.payload.seed,
            bit_errors=result.bit_errors,
            coded_bits=result.coded_bits,
            period=round(result.period, 2),
            angle=round(result.angle, 2),
        )
    return {"file": str(path), "size": [pixels.shape[1], pixels.shape[0]], "mark": mark, "metadata": _summary(meta)}


def _summary(meta: dict[str, str]) -> dict:
    summary = {"ai_generated": says_generated(meta), "software": meta.get("Software")}
    summary.update({k.removeprefix(PREFIX): v for k, v in meta.items() if k.startswith(PREFIX)})
    return {k: v for k, v in summary.items() if v is not None}

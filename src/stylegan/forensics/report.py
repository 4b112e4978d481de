"""Everything `stylegan detect` says about one file, as a plain dict (JSON-ready); bad files give {'error': ...}.

Per file: the invisible mark, the text metadata, the C2PA manifest (forensics.c2pa) and the detectors' calibrated
p(generated) (forensics.detector). html.py turns a list of these into the one-page report.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import PIL.Image

from stylegan.forensics.mark import DEFAULT_KEY, detect
from stylegan.forensics.metadata import PREFIX, read_metadata, says_generated

MAX_PIXELS = 100_000_000  # larger images are refused rather than decoded (decompression bombs)
DETECTOR_SIDES = (16, 1024)  # the detectors skip smaller images and read the central 1024 x 1024 of larger ones


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


def inspect_file(path: str | Path, *, key: str = DEFAULT_KEY, detectors: list | tuple = ()) -> dict:
    """{'file', 'size', 'frames', 'mark', 'metadata', 'c2pa', 'detector'} for one file, or {'file', 'error'}.

    detectors: forensics.detector.Detector objects (load_detectors()); none -> no 'detector' entry.
    """
    try:
        pixels, meta = load_image(path)
    except ValueError as err:
        return {"file": str(path), "error": str(err)}
    from stylegan.forensics import c2pa

    report = {"file": str(path), "size": [pixels.shape[1], pixels.shape[0]], "frames": _frames(path)}
    report.update(mark=_mark(pixels, key), metadata=_summary(meta), c2pa=c2pa.read(path))
    if detectors:
        report["detector"] = detector_result(pixels, detectors)
    return report


def _frames(path: str | Path) -> int:
    with PIL.Image.open(path) as img:
        return int(getattr(img, "n_frames", 1))


def _mark(pixels: np.ndarray, key: str) -> dict:
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
    return mark


def detector_result(pixels: np.ndarray, detectors) -> dict:
    """{'p_generated': {kind: p}, 'note': calibration note} or {'skipped': why} (image too small)."""
    low, high = DETECTOR_SIDES
    h, w = pixels.shape[:2]
    if min(h, w) < low:
        return {"skipped": f"smaller than {low} px"}
    top, left = max(0, (h - high) // 2), max(0, (w - high) // 2)
    crop = pixels[top : top + high, left : left + high]
    probs = {det.kind: round(float(det.probability([crop])[0]), 4) for det in detectors}
    return {"p_generated": probs, "note": "; ".join(det.calibration_note for det in detectors)}


def load_detectors(paths: list[str | Path] | None = None) -> list:
    """The detectors in `paths`, or the ones shipped with the package (spectral and CNN) when none are given."""
    from stylegan.forensics.detector import load_detector, shipped_detectors

    return [load_detector(p) for p in paths] if paths else [load_detector(p) for p in shipped_detectors()]


def _summary(meta: dict[str, str]) -> dict:
    summary = {"ai_generated": says_generated(meta), "software": meta.get("Software")}
    summary.update({k.removeprefix(PREFIX): v for k, v in meta.items() if k.startswith(PREFIX)})
    return {k: v for k, v in summary.items() if v is not None}

"""Everything `stylegan detect` says about one file, as a plain dict (JSON-ready); bad files give {'error': ...}.

Per file: the invisible mark, the text metadata, the C2PA manifest (forensics.c2pa) and the detectors' calibrated
p(generated) (forensics.detector). Stills are read whole; animations (GIF, APNG, WebP) and videos (MP4, MOV, WebM,
AVI; forensics.media) have a few frames spread over their length checked for the mark and by the detectors.
html.py turns a list of these into the one-page report.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image

from stylegan.forensics import media
from stylegan.forensics.mark import DEFAULT_KEY, detect
from stylegan.forensics.metadata import PREFIX, read_metadata, says_generated

MAX_PIXELS = 100_000_000  # larger images are refused rather than decoded (decompression bombs)
DETECTOR_SIDES = (16, 1024)  # the detectors skip smaller images and read the central 1024 x 1024 of larger ones
NOT_EMBEDDED = ("none", "off")  # how a `stylegan:mark` begins that says the frames carry no mark


@dataclass
class Media:
    """A file opened for inspection: kind 'image' | 'animation' | 'video', its format ('PNG', 'GIF', 'MP4', ...),
    size (width, height; None when a video could not be decoded), frame count (None: unknown), sampled frames
    (index, uint8 [H, W] or [H, W, 3]), its text metadata, and for a video ffmpeg's facts and why frames are missing.
    more: for an animation or decoded video, reads further frames by index (as samples are)."""

    kind: str
    format: str
    size: tuple[int, int] | None
    frames: int | None
    samples: list[tuple[int, np.ndarray]]
    metadata: dict[str, str]
    video: dict = field(default_factory=dict)
    note: str | None = None
    more: Callable[[list[int]], list[tuple[int, np.ndarray]]] | None = field(default=None, repr=False)


def open_media(path: str | Path, samples: int = media.SAMPLES) -> Media:
    """Reads a still, an animation (its first frame and up to `samples` frames in all) or a video.

    Raises ValueError with one line for anything that is not a readable, complete image or video.
    """
    container = media.sniff(path)
    if container is not None:
        return _open_video(Path(path), container, samples)
    return _open_picture(Path(path), samples)


def load_image(path: str | Path) -> tuple[np.ndarray, dict[str, str]]:
    """uint8 pixels [H, W] or [H, W, 3] (first frame of an animation) and the text metadata of an image file.

    Raises ValueError with one line for anything that is not a readable, complete image.
    """
    found = _open_picture(Path(path), samples=1)
    return found.samples[0][1], found.metadata


def first_frame(path: str | Path) -> np.ndarray | None:
    """The first frame of an image, animation or video (uint8 [H, W] or [H, W, 3]); None when it cannot be decoded
    (a video without the video extra). Raises ValueError like open_media."""
    found = open_media(path, samples=1)
    return found.samples[0][1] if found.samples else None


def _open_picture(path: Path, samples: int) -> Media:
    try:
        with warnings.catch_warnings(record=False):  # a bomb warning becomes an error for this read only
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ValueError(f"{img.width}x{img.height} is too large (over {MAX_PIXELS:,} pixels)")
                img.load()
                meta = read_metadata(img)
                count = int(getattr(img, "n_frames", 1))
                picked = _pillow_frames(img, sorted({count * k // samples for k in range(samples)}))
                fmt = img.format or path.suffix.lstrip(".").upper()
    except (PIL.UnidentifiedImageError, PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning):
        raise ValueError("not an image or video that can be read (or too large)") from None
    except OSError as err:
        if isinstance(err, FileNotFoundError | IsADirectoryError | PermissionError):
            raise ValueError(err.strerror.lower() if err.strerror else str(err)) from None
        raise ValueError(f"broken or truncated image ({str(err).splitlines()[0]})") from None
    except (SyntaxError, EOFError) as err:  # Pillow's parsers raise these for malformed headers and short frames
        raise ValueError(f"malformed image ({err or type(err).__name__})") from None
    height, width = picked[0][1].shape[:2]
    if count == 1:
        return Media("image", fmt, (width, height), count, picked, meta)
    return Media("animation", fmt, (width, height), count, picked, meta, more=lambda at: _reopened_frames(path, at))


def _reopened_frames(path: Path, indices: list[int]) -> list[tuple[int, np.ndarray]]:
    """Frames `indices` of an animation read before (open_media checked the file)."""
    with PIL.Image.open(path) as img:
        return _pillow_frames(img, indices)


def _pillow_frames(img: PIL.Image.Image, indices: list[int]) -> list[tuple[int, np.ndarray]]:
    """The frames `indices` of an opened image as uint8 [H, W] (grey modes) or [H, W, 3]."""
    picked = []
    for index in indices:
        if index:
            img.seek(index)
            img.load()
        picked.append((index, np.asarray(img.convert("L" if img.mode in ("1", "L", "I;16", "I", "F") else "RGB"))))
    return picked


def _open_video(path: Path, container: str, samples: int) -> Media:
    """A video's tags (the MP4 comment without ffmpeg) and, with the video extra, its facts and sampled frames."""
    tags = {}
    if container in ("MP4", "MOV"):
        comment = media.bmff_comment(path)  # also refuses a truncated file before ffmpeg is asked
        tags = {"comment": comment} if comment is not None else {}
    if not media.ffmpeg_available():
        return Media("video", container, None, None, [], _comment_metadata(tags), note=media.VIDEO_HINT)
    if container not in ("MP4", "MOV"):
        tags = media.ffmpeg_tags(path)
    info = media.probe_video(path, container, MAX_PIXELS, samples)
    facts = {"fps": info.fps, "duration_s": info.duration_s, "codec": info.codec}
    more = lambda at: media.video_frames(path, at, info.rate)  # noqa: E731
    return Media("video", container, info.size, info.frames, info.samples, _comment_metadata(tags), facts, more=more)


def _comment_metadata(tags: dict[str, str]) -> dict[str, str]:
    """Container tags as metadata: the comment kept as 'Comment', its key=value pairs (metadata.comment_text) too."""
    comment = tags.get("comment")
    return {} if comment is None else {"Comment": comment}


def inspect_file(
    path: str | Path, *, key: str = DEFAULT_KEY, detectors: list | tuple = (), trust_anchors: str | None = None
) -> dict:
    """{'file', 'kind', 'format', 'size', 'frames', 'mark', 'metadata', 'c2pa', 'detector'} for one file, or
    {'file', 'error'}. Animations and videos add 'frames_checked' (the sampled frame indices); videos add 'video'
    (fps, duration_s, codec) and, when their frames cannot be decoded, 'note' saying why.

    detectors: forensics.detector.Detector objects (load_detectors()); none -> no 'detector' entry.
    trust_anchors: PEM certificates (c2pa.load_trust_anchors) the C2PA signer is checked against.
    """
    try:
        found = open_media(path)
    except ValueError as err:
        return {"file": str(path), "error": str(err)}
    from stylegan.forensics import c2pa

    meta = _with_comment_pairs(found.metadata)
    report = {"file": str(path), "kind": found.kind, "format": found.format, "size": _size(found)}
    report["frames"] = found.frames
    report.update(mark=_media_mark(found, meta, key), metadata=_summary(meta), c2pa=c2pa.read(path, trust_anchors))
    if found.kind != "image":
        report["frames_checked"] = [index for index, _ in found.samples]
    if found.video:
        report["video"] = {k: v for k, v in found.video.items() if v is not None}
    if found.note:
        report["note"] = found.note
    if detectors:
        report["detector"] = _media_detector(found, detectors)
    return report


def _size(found: Media) -> list[int] | None:
    return list(found.size) if found.size else None


def _with_comment_pairs(meta: dict[str, str]) -> dict[str, str]:
    """The metadata plus the key=value pairs of a 'Comment' written by metadata.comment_text (GIF, MP4)."""
    pairs = media.parse_comment(meta.get("Comment", ""))
    return {**pairs, **meta}


def _media_mark(found: Media, meta: dict[str, str], key: str) -> dict:
    """The mark of a still; for frames: the first sampled frame that has one, else the mean of the sampled frames,
    else (when there are more frames) the mean of every frame of a short or small video or animation, or of
    media.MEAN_SAMPLES frames spread over a longer one (media.mean_indices; 'frame': 'mean', 'averaged': the frame
    indices, 'found_in': 0), else why none was found.

    A video's frames carry one and the same pattern (the mark is computed once per video), so in their mean it adds
    up while the changing content and the codec's noise partly cancel: frames too degraded to read one by one (128 px
    frames after H.264 crf 23) are read together, and more frames read what 3 cannot (benchmarks/bench_video_mark.py).
    """
    if found.kind == "image":
        return _mark(found.samples[0][1], key)
    if not found.samples:
        return {"found": False, "pilot": 0.0, "reason": found.note, "found_in": 0}
    results = [(index, _mark(pixels, key)) for index, pixels in found.samples]
    hits = [(index, mark) for index, mark in results if mark["found"]]
    if hits:
        return {**hits[0][1], "frame": hits[0][0], "found_in": len(hits)}
    says_none = meta.get(PREFIX + "mark", "").startswith(NOT_EMBEDDED)  # then more frames would not help
    for gather in (lambda: found.samples, lambda: [] if says_none else _more_frames(found)):  # in turn, as needed
        frames = gather()
        together = mean_frame([pixels for _, pixels in frames])
        if together is not None:
            mark = _mark(together, key)
            if mark["found"]:
                return {**mark, "frame": "mean", "averaged": [index for index, _ in frames], "found_in": 0}
    first = results[0][1]
    if says_none:
        reason = f"not embedded in {found.format} frames, as its metadata says"
    else:
        reason = f"none in {len(results)} sampled frame(s): {first['reason']}"
    return {**first, "reason": reason, "found_in": 0}


def _more_frames(found: Media) -> list[tuple[int, np.ndarray]]:
    """The frames media.mean_indices picks (every frame of a short or small video or animation, else
    media.MEAN_SAMPLES spread over it; the sampled ones reused); [] when it has no more frames than were sampled or
    they cannot be read."""
    if found.more is None or not found.frames or found.frames <= len(found.samples):
        return []
    have = dict(found.samples)
    wanted = media.mean_indices(found.frames, found.size)
    try:
        extra = dict(found.more([i for i in wanted if i not in have]))
    except (OSError, ValueError):  # a frame that read before and not now: keep what the samples said
        return []
    return [(i, have[i] if i in have else extra[i]) for i in wanted if i in have or i in extra]


def mean_frame(frames: list[np.ndarray]) -> np.ndarray | None:
    """The pixel mean of two or more frames of one shape (uint8, rounded), else None."""
    if len(frames) < 2 or any(f.shape != frames[0].shape for f in frames):
        return None
    return np.rint(np.mean(np.stack(frames).astype(np.float32), axis=0)).astype(np.uint8)


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


def _media_detector(found: Media, detectors) -> dict:
    """detector_result of a still; for frames the mean p(generated) over the sampled frames, with 'frames': count."""
    if not found.samples:
        return {"skipped": found.note}
    results = [detector_result(pixels, detectors) for _, pixels in found.samples]
    if found.kind == "image" or "skipped" in results[0]:
        return results[0]
    kinds = results[0]["p_generated"]
    mean = {kind: round(float(np.mean([r["p_generated"][kind] for r in results])), 4) for kind in kinds}
    return {"p_generated": mean, "note": results[0]["note"], "frames": len(results)} | _flags(mean, detectors)


def detector_result(pixels: np.ndarray, detectors) -> dict:
    """{'p_generated': {kind: p}, 'note': calibration note} or {'skipped': why} (image too small); an image enlarged
    by pixel replication is scored at its own size, with 'enlarged': the factor."""
    from stylegan.forensics.detector import undo_pixel_replication

    low, high = DETECTOR_SIDES
    pixels, factor = undo_pixel_replication(pixels)
    h, w = pixels.shape[:2]
    if min(h, w) < low:
        return {"skipped": f"smaller than {low} px"}
    top, left = max(0, (h - high) // 2), max(0, (w - high) // 2)
    crop = pixels[top : top + high, left : left + high]
    probs = {det.kind: round(float(det.probability([crop])[0]), 4) for det in detectors}
    result = {"p_generated": probs, "note": "; ".join(det.calibration_note for det in detectors)}
    return result | _flags(probs, detectors) | ({"enlarged": factor} if factor > 1 else {})


def _flags(probs: dict[str, float], detectors) -> dict:
    """{'flagged': {kind: p >= its operating threshold}, 'threshold': {kind: that p}, 'operating_fpr': ...} for the
    detectors that store operating thresholds (detector.OPERATING_FPR of held-out real images flagged); {} if none."""
    from stylegan.forensics.detector import OPERATING_FPR, sigmoid

    cuts = {}
    for det in detectors:
        try:
            cuts[det.kind] = float(sigmoid(np.array(det.threshold(OPERATING_FPR))))
        except ValueError:  # trained before thresholds were stored
            continue
    if not cuts:
        return {}
    flagged = {kind: bool(probs[kind] >= cut) for kind, cut in cuts.items()}
    threshold = {kind: round(cut, 4) for kind, cut in cuts.items()}
    return {"flagged": flagged, "threshold": threshold, "operating_fpr": OPERATING_FPR}


def load_detectors(paths: list[str | Path] | None = None) -> list:
    """The detectors in `paths`, or the ones shipped with the package (spectral and CNN) when none are given."""
    from stylegan.forensics.detector import load_detector, shipped_detectors

    return [load_detector(p) for p in paths] if paths else [load_detector(p) for p in shipped_detectors()]


def _summary(meta: dict[str, str]) -> dict:
    summary = {"ai_generated": says_generated(meta), "software": meta.get("Software")}
    summary.update({k.removeprefix(PREFIX): v for k, v in meta.items() if k.startswith(PREFIX)})
    return {k: v for k, v in summary.items() if v is not None}

"""The `stylegan detect --report` page: one self-contained HTML file (images and plots inlined as base64 PNG).

Per image: the picture, the log power spectrum of its high-pass residual, its radial profile against the shipped
spectral detector's mean real and mean generated profiles, and the verdicts (mark, metadata, C2PA, detectors).
No scripts, no fonts, no CDN: it opens offline and can be mailed as is.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw

from stylegan.forensics import spectral

THUMB = 192
PLOT = (320, 192)
STYLE = (
    "body{font:14px sans-serif;margin:2em;color:#222}section{border-top:1px solid #ccc;padding:1em 0}"
    "img{image-rendering:pixelated;margin-right:1em;vertical-align:top}td{padding:2px 8px;vertical-align:top}"
    ".bad{color:#b00}.ok{color:#070}"
)


def png_data_uri(pixels: np.ndarray) -> str:
    """uint8 [H, W] or [H, W, 3] -> 'data:image/png;base64,...'."""
    buf = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail(pixels: np.ndarray, side: int = THUMB) -> np.ndarray:
    """The image scaled so its longer side is `side` (nearest neighbour when enlarging: pixels stay visible)."""
    img = PIL.Image.fromarray(pixels)
    scale = side / max(img.size)
    resample = PIL.Image.NEAREST if scale > 1 else PIL.Image.BILINEAR
    return np.asarray(img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), resample))


def spectrum_image(pixels: np.ndarray, side: int = THUMB) -> np.ndarray:
    """uint8 [side, side]: log power spectrum of the high-pass residual, centred, contrast-stretched (1-99 %)."""
    gray = spectral.to_gray(pixels)[:1024, :1024]
    logp = np.log10(spectral.power_spectrum(gray) + 1e-12)
    lo, hi = np.percentile(logp, [1, 99])
    scaled = np.clip((logp - lo) / max(hi - lo, 1e-9), 0, 1) * 255
    return thumbnail(scaled.astype(np.uint8), side)


def profile_plot(pixels: np.ndarray, detector=None) -> np.ndarray:
    """RGB [192, 320] line plot of the radial profile (black) vs the detector's mean real (green) / generated (red).

    All curves are the profile minus its mean (spectral.features), so only their shape is compared.
    """
    width, height = PLOT
    img = PIL.Image.new("RGB", PLOT, "white")
    draw = PIL.ImageDraw.Draw(img)
    curves = [((0, 0, 0), spectral.features(pixels)[:-1])]
    if detector is not None and "real_profile" in detector.tensors:
        curves += [((0, 150, 0), detector.tensors["real_profile"].numpy()[:-1])]
        curves += [((200, 0, 0), detector.tensors["fake_profile"].numpy()[:-1])]
    lo = min(c.min() for _, c in curves)
    hi = max(c.max() for _, c in curves)
    box = (30, 10, width - 10, height - 25)  # plot area: left, top, right, bottom
    draw.rectangle(box, outline=(160, 160, 160))
    for colour, curve in curves:
        xs = np.linspace(box[0], box[2], len(curve))
        ys = box[3] - (curve - lo) / max(hi - lo, 1e-9) * (box[3] - box[1])
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=colour, width=2)
    draw.text((box[0], height - 20), "0   radial frequency (cycles/px)   0.5", fill=(0, 0, 0))
    draw.text((2, box[1]), "log", fill=(0, 0, 0))
    return np.asarray(img)


def write_report(reports: list[dict], out: str | Path, spectral_detector=None) -> Path:
    """Writes the page for `reports` (report.inspect_file results) to `out`, atomically."""
    from stylegan.io.native import atomic_write

    body = "".join(_section(r, spectral_detector) for r in reports)
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>stylegan detect</title>'
        f"<style>{STYLE}</style></head><body><h1>stylegan detect: {len(reports)} file(s)</h1>"
        "<p>Black: this image's spectral profile; green / red: mean profile of the real / generated training images "
        f"of the spectral detector.</p>{body}</body></html>"
    )
    atomic_write(out, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return Path(out)


def _section(report: dict, detector) -> str:
    from stylegan.forensics.report import first_frame

    name = html.escape(report["file"])
    if "error" in report:
        return f'<section><h2>{name}</h2><p class="bad">error: {html.escape(report["error"])}</p></section>'
    try:
        pixels = first_frame(report["file"])
    except ValueError:  # changed or removed since it was inspected: the verdicts still stand
        pixels = None
    images = "" if pixels is None else "".join(f'<img src="{uri}" alt="">' for uri in _pictures(pixels, detector))
    rows = "".join(f"<tr><td>{k}</td><td>{html.escape(v)}</td></tr>" for k, v in verdicts(report))
    return f"<section><h2>{name}</h2><div>{images}</div><table>{rows}</table></section>"


def _pictures(pixels: np.ndarray, detector) -> list[str]:
    """Data URIs of the thumbnail, the spectrum and the radial profile of one image or frame."""
    plot = profile_plot(pixels[:1024, :1024], detector)
    return [png_data_uri(thumbnail(pixels)), png_data_uri(spectrum_image(pixels)), png_data_uri(plot)]


def verdicts(report: dict) -> list[tuple[str, str]]:
    """(label, text) lines shared by the page and the terminal: mark, metadata, C2PA, detector."""
    from stylegan.forensics.c2pa import describe

    mark_text = _mark_text(report["mark"], report.get("frames_checked"))
    meta = report["metadata"]
    extras = ", ".join(f"{k}={meta[k]}" for k in ("software", "model", "seed") if meta.get(k))
    meta_text = ("AI-generated" if meta.get("ai_generated") else "none saying AI-generated") + (
        f" ({extras})" if extras else ""
    )
    lines = [("mark", mark_text), ("metadata", meta_text), ("C2PA", describe(report["c2pa"]).removeprefix("C2PA: "))]
    if "detector" in report:
        lines.append(("detector", detector_text(report["detector"])))
    if report.get("kind", "image") != "image":
        lines.append(("frames", frames_text(report)))
    return lines


def _mark_text(mark: dict, checked: list[int] | None) -> str:
    if not mark["found"]:
        return f"none ({mark['reason']})"
    text = (
        f"found: tool {mark['tool']}, model {mark['model']}, seed {mark['seed']}, "
        f"{mark['bit_errors']}/{mark['coded_bits']} coded bits corrected"
    )
    averaged = mark.get("averaged", checked or [])
    if checked and mark.get("frame") == "mean" and len(averaged) > len(checked):
        every = averaged == list(range(len(averaged)))  # media.mean_indices: every frame, or some spread over it
        how = f"all {len(averaged)} frames" if every else f"{len(averaged)} frames spread over its length"
        text += f" (in the mean of {how}; in none of the {len(checked)} sampled"
        text += " alone or together)"
    elif checked and mark.get("frame") == "mean":
        text += f" (in the mean of the {len(checked)} sampled frames; in none of them alone)"
    elif checked:
        text += f" (frame {mark['frame']}; in {mark['found_in']} of {len(checked)} sampled frames)"
    return text


def frames_text(report: dict) -> str:
    """How many frames an animation or video has and which were checked (or why none could be)."""
    video = report.get("video", {})
    facts = [f"animated {report['format']}" if report["kind"] == "animation" else f"{report['format']} video"]
    facts += [f"{video['fps']:g} fps"] if "fps" in video else []
    facts += [f"{video['duration_s']:g} s"] if "duration_s" in video else []
    facts += [video["codec"]] if "codec" in video else []
    count = "unknown number of frames" if report.get("frames") is None else str(report["frames"])
    checked = ", ".join(str(i) for i in report.get("frames_checked", []))
    return f"{count} ({', '.join(facts)}); " + (report.get("note") or f"checked frame(s) {checked}")


def detector_text(result: dict) -> str:
    if "skipped" in result:
        return f"not run ({result['skipped']})"
    flagged = result.get("flagged", {})
    marks = {kind: ": flagged" if hit else ": not flagged" for kind, hit in flagged.items()}
    text = ", ".join(f"p(generated) {p:.2f} [{kind}{marks.get(kind, '')}]" for kind, p in result["p_generated"].items())
    if flagged:
        share = f"{result['operating_fpr']:.0%}"
        text += f" (flagged: at or above the threshold that flags {share} of held-out real images)"
    text += f" (scored at its own pixels: enlarged {result['enlarged']}x)" if "enlarged" in result else ""
    return text + (f" (mean of {result['frames']} frames)" if result.get("frames", 1) > 1 else "")

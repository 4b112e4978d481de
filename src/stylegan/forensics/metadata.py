"""Readable provenance: PNG text chunks saying which software and model made an image, with which settings, and that
it is AI-generated (IPTC digital source type "trainedAlgorithmicMedia").

Metadata is easy to strip; the invisible mark (forensics.mark) is the part that survives re-encoding. Both are written
by images.save_png; C2PA manifests (signed) will sit beside these in a later module.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import PIL.Image
import PIL.PngImagePlugin

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
AI_NOTE = "AI-generated image (made by a trained generative model; not a photograph)"
PREFIX = "stylegan:"
_SETTINGS = ("model", "seed", "truncation_psi", "truncation_cutoff", "noise_mode", "class_idx", "mark")


def software() -> str:
    """'stylegan <version>' of the installed package."""
    try:
        return f"stylegan {version('stylegan')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "stylegan"


def generation_metadata(**settings: object) -> dict[str, str]:
    """The text chunks for one generated image: software, AI-generated note, IPTC source type, and every setting that
    is not None (model, seed, truncation_psi, truncation_cutoff, noise_mode, class_idx, mark) as `stylegan:<name>`."""
    unknown = set(settings) - set(_SETTINGS)
    if unknown:
        raise ValueError(f"unknown metadata field(s) {sorted(unknown)}; known: {', '.join(_SETTINGS)}")
    chunks = {"Software": software(), "Description": AI_NOTE, "DigitalSourceType": DIGITAL_SOURCE_TYPE}
    chunks.update({PREFIX + name: str(value) for name, value in settings.items() if value is not None})
    return chunks


def png_info(chunks: dict[str, str]) -> PIL.PngImagePlugin.PngInfo:
    """Text chunks -> Pillow's PngInfo (iTXt for non-Latin-1 text, tEXt otherwise)."""
    info = PIL.PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        if value.isascii():
            info.add_text(key, value)
        else:
            info.add_itxt(key, value)
    return info


def read_metadata(image: PIL.Image.Image) -> dict[str, str]:
    """The text metadata Pillow found in an opened image (PNG text chunks, a GIF comment), as strings."""
    found = {k: v for k, v in getattr(image, "text", {}).items() if isinstance(v, str)}
    comment = image.info.get("comment")
    if isinstance(comment, bytes):
        found["Comment"] = comment.decode("utf-8", "replace")
    return found


def says_generated(chunks: dict[str, str]) -> bool:
    """Whether metadata declares the image AI-generated (our chunks, or any IPTC trainedAlgorithmicMedia mention)."""
    return any("trainedAlgorithmicMedia" in value for value in chunks.values())


def comment_text(chunks: dict[str, str]) -> str:
    """One line for formats with a single comment field (GIF): 'key=value; ...'."""
    return "; ".join(f"{key}={value}" for key, value in chunks.items())


def add_gif_comment(path: str | Path, text: str) -> None:
    """Inserts a GIF89a comment extension carrying `text` into an existing GIF, in place (atomic).

    Pixels and timing are untouched: the file's bytes are copied and the comment block goes right after the logical
    screen descriptor and global colour table, ahead of every frame (where readers such as Pillow look for it).
    """
    from stylegan.io.native import atomic_write

    path = Path(path)
    data = path.read_bytes()
    if not data.startswith((b"GIF87a", b"GIF89a")) or not data.endswith(b"\x3b"):
        raise ValueError(f"{path}: not a complete GIF file")
    payload = text.encode("utf-8")
    blocks = b"".join(
        bytes([len(chunk)]) + chunk for chunk in (payload[i : i + 255] for i in range(0, len(payload), 255))
    )
    packed = data[10]
    start = 13 + (3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0)  # header 6 + screen 7 (+ colour table)
    body = b"GIF89a" + data[6:start] + b"\x21\xfe" + blocks + b"\x00" + data[start:]
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(body))

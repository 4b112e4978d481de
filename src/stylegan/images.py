"""Images as the library hands them around, and the one place that turns them into pixels and PNG files.

Layout everywhere: uint8 tensors [N, C, H, W] with C = 1 (grey) or 3 (RGB), as datasets, metrics, training
snapshots and the editing tools use them; a grid or a figure is one image [C, H, W].
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from stylegan.io.native import atomic_write


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Generator output [N, C, H, W] in [-1, 1] -> uint8 [N, C, H, W] on the same device.

    Pixel value v = x * 127.5 + 128, clipped to [0, 255] and truncated: -1 -> 0.5 -> 0, 0 -> 128, 1 -> 255.5 -> 255.
    This is the quantisation official samples and metric statistics are made with, so it must not change.
    """
    return img.float().mul(127.5).add(128).clamp(0, 255).to(torch.uint8)


def tile(images: torch.Tensor, cols: int | None = None, *, pad: int = 0, fill: int = 255) -> torch.Tensor:
    """Lays images [N, C, H, W] out row by row on one canvas [C, rows*(H+pad)-pad, cols*(W+pad)-pad].

    Args:
        images: uint8 (or any dtype) batch; all images share C, H and W.
        cols: images per row; default ceil(sqrt(N)), a square-ish grid. Clamped to N.
        pad: gap in pixels between neighbouring cells (none around the border).
        fill: value of the gaps and of the empty cells after the last image.
    """
    n, c, h, w = images.shape
    cols = max(1, min(cols or math.ceil(math.sqrt(n)), n))
    rows = math.ceil(n / cols)
    canvas = images.new_full([rows * cols, c, h + pad, w + pad], fill)
    canvas[:n, :, :h, :w] = images
    canvas = canvas.reshape(rows, cols, c, h + pad, w + pad).permute(2, 0, 3, 1, 4)  # [C, rows, H+pad, cols, W+pad]
    canvas = canvas.reshape(c, rows * (h + pad), cols * (w + pad))
    return canvas[:, : canvas.shape[1] - pad, : canvas.shape[2] - pad]


def to_pil(img: torch.Tensor) -> PIL.Image.Image:
    """One uint8 image [C, H, W] (C = 1 or 3) -> a PIL image in mode L or RGB."""
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"expected one image [C, H, W] with 1 or 3 channels, got shape {list(img.shape)}")
    hwc = np.ascontiguousarray(img.detach().to("cpu", torch.uint8).permute(1, 2, 0).numpy())
    return PIL.Image.fromarray(hwc[:, :, 0], "L") if hwc.shape[2] == 1 else PIL.Image.fromarray(hwc, "RGB")


def zoom(img: torch.Tensor, factor: int) -> torch.Tensor:
    """[..., H, W] -> [..., factor*H, factor*W] by repeating pixels (nearest neighbour), for small models."""
    return img.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1) if factor > 1 else img


def save_png(
    img: torch.Tensor,
    path: str | Path,
    *,
    mark: bool = True,
    metadata: dict[str, object] | None = None,
    generated: bool = True,
    mark_psnr: float | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """Writes one uint8 image [C, H, W] to `path` as PNG (see png_bytes), atomically: readers never see half a file.

    The parent folder is created. An existing file is replaced: callers that must not overwrite check first.
    """
    data = png_bytes(img, mark=mark, metadata=metadata, generated=generated, mark_psnr=mark_psnr, extra=extra)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return Path(path)


def png_bytes(
    img: torch.Tensor,
    *,
    mark: bool = True,
    metadata: dict[str, object] | None = None,
    generated: bool = True,
    compress_level: int = 6,
    mark_psnr: float | None = None,
    extra: dict[str, str] | None = None,
) -> bytes:
    """One uint8 image [C, H, W] as the contents of a PNG file, declared AI-generated.

    PNG text chunks carry the software, the IPTC source type and the settings in `metadata` (model, seed,
    truncation_psi, truncation_cutoff, noise_mode, class_idx; see forensics.metadata.generation_metadata). With
    mark=True (the default) the invisible provenance mark carrying the model's hash prefix and the seed is embedded
    too, in images whose sides are all >= forensics.mark.MIN_SIDE; the `stylegan:mark` chunk says whether it was.
    generated=False is for real images (a training run's grid of reals, an aligned photo): no mark, no AI-generated
    declaration, only the software chunk. compress_level 1 is for bytes that only cross the loopback.
    mark_psnr: the mark's strength as PSNR against the unmarked image (default forensics.mark.PSNR_DB; higher is
    fainter and less robust: a face swap uses it to keep the photo outside the face within its bound).
    extra: more `stylegan:<key>` text chunks (e.g. a swap's source and target names).
    """
    from stylegan.forensics.metadata import PREFIX, generation_metadata, png_info, software

    pil = to_pil(img)
    if not generated:
        info = png_info({"Software": software()})
    else:
        settings = dict(metadata or {})
        if mark:
            pil, settings["mark"] = _marked(pil, settings, mark_psnr)
        else:
            settings["mark"] = "off (--no-mark)"
        chunks = generation_metadata(**settings)
        chunks.update({PREFIX + key: str(value) for key, value in (extra or {}).items()})
        info = png_info(chunks)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", pnginfo=info, compress_level=compress_level)
    return buf.getvalue()


def _marked(
    pil: PIL.Image.Image, settings: dict[str, object], psnr: float | None = None
) -> tuple[PIL.Image.Image, str]:
    """The image with the provenance mark (payload from the model and seed in settings), and a note on what was done."""
    from stylegan.forensics import mark

    if not mark.can_mark(pil.height, pil.width):
        return pil, f"none (smaller than {mark.MIN_SIDE} px)"
    model = settings.get("model")
    payload = mark.Payload(
        model=mark.model_hash_prefix(str(model)) if model is not None else 0,
        seed=int(settings.get("seed") or 0) % (1 << 32),
    )
    marked = mark.embed(np.asarray(pil), payload, psnr=mark.PSNR_DB if psnr is None else psnr)
    return PIL.Image.fromarray(marked, pil.mode), f"v1 model={payload.model:03x} seed={payload.seed}"

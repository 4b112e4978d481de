"""Generation and style mixing from seeds, with NVIDIA's seed -> z convention (RandomState(seed).randn)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image


def parse_range(text: str, *, what: str = "range") -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]. Raises ValueError on malformed input."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"bad {what} {text!r}: use numbers and ranges like 0-7,12")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ValueError(f"bad {what} {text!r}: {part} runs backwards")
        out.extend(range(lo, hi + 1))
    return out


def seeds_to_z(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """[N, z_dim] float32 latents, z_i = RandomState(seed_i).randn(z_dim) as in NVIDIA's generate.py."""
    for s in seeds:
        if not 0 <= int(s) < 2**32:
            raise ValueError(f"seed {s} is out of range: seeds are integers in [0, 2**32)")
    return torch.from_numpy(np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds])).float()


def class_labels(G, class_idx: int | None, n: int) -> torch.Tensor:
    """[n, c_dim] one-hot labels; checks that class_idx fits the model."""
    c_dim = G.c_dim
    if c_dim == 0:
        if class_idx is not None:
            raise ValueError("this model is unconditional (c_dim=0): drop --class")
        return torch.zeros([n, 0])
    if class_idx is None:
        raise ValueError(f"this model is conditional (c_dim={c_dim}): pass --class 0..{c_dim - 1}")
    if not 0 <= class_idx < c_dim:
        raise ValueError(f"--class {class_idx} is out of range: this model has classes 0..{c_dim - 1}")
    c = torch.zeros([n, c_dim])
    c[:, class_idx] = 1
    return c


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> [N, H, W, C] uint8."""
    img = (img.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return img.permute(0, 2, 3, 1).cpu().numpy()


def image_from_array(arr: np.ndarray) -> Image.Image:
    """[H, W, C] uint8 with C = 1 or 3 -> PIL image."""
    return Image.fromarray(arr[:, :, 0], "L") if arr.shape[2] == 1 else Image.fromarray(arr, "RGB")


@torch.no_grad()
def compute_ws(
    G,
    seeds: Sequence[int],
    *,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """ws [N, num_ws, w_dim] for the seeds."""
    z = seeds_to_z(seeds, G.z_dim).to(device)
    c = class_labels(G, class_idx, len(seeds)).to(device)
    return G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


@torch.no_grad()
def synthesize(G, ws: torch.Tensor, *, noise_mode: str = "const", batch_size: int = 8) -> np.ndarray:
    """Images [N, H, W, C] uint8 from ws, in batches."""
    chunks = [
        to_uint8(G.synthesis(ws[i : i + batch_size], noise_mode=noise_mode))
        for i in range(0, ws.shape[0], batch_size)
    ]
    return np.concatenate(chunks)


def generate_images(
    G,
    seeds: Sequence[int],
    *,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """One image per seed: [N, H, W, C] uint8."""
    ws = compute_ws(
        G,
        seeds,
        truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff,
        class_idx=class_idx,
        device=device,
    )
    return synthesize(G, ws, noise_mode=noise_mode, batch_size=batch_size)


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 0, fill: int = 255) -> np.ndarray:
    """[N, H, W, C] -> one [rows*H, cols*W, C] image (row-major)."""
    n, h, w, c = images.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full([rows * (h + pad) - pad, cols * (w + pad) - pad, c], fill, dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = img
    return grid


def mix_ws(ws_rows: torch.Tensor, ws_cols: torch.Tensor, styles: Sequence[int]) -> torch.Tensor:
    """[R, num_ws, w_dim] x [C, num_ws, w_dim] -> [R, C, num_ws, w_dim]: row ws with the cols' ws at `styles`."""
    mixed = ws_rows[:, None].repeat(1, ws_cols.shape[0], 1, 1)
    idx = torch.as_tensor(list(styles), dtype=torch.long)
    mixed[:, :, idx] = ws_cols[None, :, idx]
    return mixed


def style_mixing_figure(
    G,
    row_seeds: Sequence[int],
    col_seeds: Sequence[int],
    styles: Sequence[int],
    *,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """The paper's style-mixing grid: a header row of B sources (columns), a header column of A sources (rows);
    cell (i, j) is A_i with B_j's styles copied into the layers `styles`. Returns [H', W', C] uint8."""
    bad = [s for s in styles if not 0 <= s < G.num_ws]
    if bad:
        raise ValueError(f"--styles {bad} out of range: this model has layers 0..{G.num_ws - 1}")
    ws_a = compute_ws(
        G,
        row_seeds,
        truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff,
        class_idx=class_idx,
        device=device,
    )
    ws_b = compute_ws(
        G,
        col_seeds,
        truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff,
        class_idx=class_idx,
        device=device,
    )
    mixed = mix_ws(ws_a, ws_b, styles).flatten(0, 1)  # [R*C, num_ws, w_dim]
    img_a, img_b = synthesize(G, ws_a, noise_mode=noise_mode), synthesize(G, ws_b, noise_mode=noise_mode)
    img_mix = synthesize(G, mixed, noise_mode=noise_mode)
    _, h, w, c = img_a.shape
    blank = np.full([1, h, w, c], 255, np.uint8)
    cells = [blank, img_b]
    for i in range(len(row_seeds)):
        cells += [img_a[i : i + 1], img_mix[i * len(col_seeds) : (i + 1) * len(col_seeds)]]
    return make_grid(np.concatenate(cells), cols=len(col_seeds) + 1)

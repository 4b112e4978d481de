"""Images from seeds, with NVIDIA's seed -> z convention (z = RandomState(seed).randn(z_dim)).

Images are uint8 tensors [N, C, H, W] (see stylegan.images). The editing tools render with `noise_mode="const"`
(NOISE_MODE), as NVIDIA's generate.py does, so a seed always gives the same picture; the networks themselves
default to fresh noise ("random"), so every call here passes the mode explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from stylegan.images import to_uint8

NOISE_MODE = "const"  # stored per-layer noise: one seed, one image


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


def format_range(values: Sequence[int]) -> str:
    """[0, 1, 2, 3, 7] -> '0-3,7': the inverse of parse_range, for messages."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in runs)


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
    """ws [N, num_ws, w_dim] for the seeds (truncated in W when truncation_psi != 1)."""
    z = seeds_to_z(seeds, G.z_dim).to(device)
    c = class_labels(G, class_idx, len(seeds)).to(device)
    return G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


@torch.no_grad()
def synthesize(G, ws: torch.Tensor, *, noise_mode: str = NOISE_MODE, batch_size: int = 8) -> torch.Tensor:
    """uint8 images [N, C, H, W] on the CPU from ws [N, num_ws, w_dim], `batch_size` at a time."""
    return torch.cat([to_uint8(G.synthesis(part, noise_mode=noise_mode)).cpu() for part in ws.split(batch_size)])


def generate_images(
    G,
    seeds: Sequence[int],
    *,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = NOISE_MODE,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """One image per seed: uint8 [N, C, H, W]; the same seed gives the same image as NVIDIA's generate.py."""
    ws = compute_ws(
        G,
        seeds,
        truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff,
        class_idx=class_idx,
        device=device,
    )
    return synthesize(G, ws, noise_mode=noise_mode, batch_size=batch_size)


def mix_ws(ws_rows: torch.Tensor, ws_cols: torch.Tensor, styles: Sequence[int]) -> torch.Tensor:
    """[R, num_ws, w_dim] x [C, num_ws, w_dim] -> [R, C, num_ws, w_dim]: row ws with the cols' ws at `styles`."""
    take = torch.zeros(ws_rows.shape[1], dtype=torch.bool, device=ws_rows.device)
    take[list(styles)] = True
    return torch.where(take[None, None, :, None], ws_cols[None], ws_rows[:, None])

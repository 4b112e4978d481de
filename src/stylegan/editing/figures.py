"""The StyleGAN paper's figures for any loaded generator (StyleGAN1 and StyleGAN2 modules alike).

- Fig. 3 `paper_mixing_figure`: top row sources B, left column sources A; each row copies one group of B's
  styles (coarse 4²-8², middle 16²-32², fine 64² and up) into A.
- Fig. 4 `stochastic_variation_figure`: one w, several noise draws, and the per-pixel standard deviation.
- Fig. 5 `noise_layers_figure`: noise in all layers / none / fine layers only / coarse layers only.
- Fig. 8 `truncation_figure`: w_avg + psi (w - w_avg) for psi from 1 to -1.
- `interpolation_frames` / `write_video`: a loop through the seeds' ws (GIF: Pillow, mp4: imageio-ffmpeg).

Per-layer noise is switched off by zeroing the layers' `noise_strength` inside `noise_only_at` (restored
after), so the network code needs no hook. Images are uint8 arrays [H, W, C] (grids) or [N, H, W, C].
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from stylegan.editing.generate import compute_ws, make_grid, mix_ws, synthesize, to_uint8

GROUPS = ("coarse", "middle", "fine")
PAPER_PSIS = (1.0, 0.7, 0.5, 0.0, -0.5, -1.0)
PAD = 2  # white pixels between the cells of a figure


def default_truncation(G) -> tuple[float, int | None]:
    """The model's own generation defaults: StyleGAN1 configs carry the paper's (0.7, 8); others (1, None)."""
    cfg = getattr(G, "config", None)
    return float(getattr(cfg, "truncation_psi", 1.0)), getattr(cfg, "truncation_cutoff", None)


def ws_resolutions(G) -> list[int]:
    """Resolution of the layer each of the num_ws ws drives (StyleGAN2's last w drives the final ToRGB)."""
    if not hasattr(G.synthesis, "block_resolutions"):
        raise ValueError("layer groups need a StyleGAN1 or StyleGAN2 generator (resolution blocks)")
    out: list[int] = []
    for res in G.synthesis.block_resolutions:
        out += [res] * getattr(getattr(G.synthesis, f"b{res}"), "num_conv", 2)
    return (out + [G.img_resolution] * G.num_ws)[: G.num_ws]


def _group_of(res: int, img_resolution: int) -> str:
    """Paper split (coarse <= 8², middle 16²-32², fine >= 64²); below 64² output, the levels in thirds."""
    if img_resolution >= 64:
        return "coarse" if res <= 8 else "middle" if res <= 32 else "fine"
    levels = int(math.log2(img_resolution)) - 1  # number of resolutions 4 .. R
    third = min(int((math.log2(res) - 2) * 3 // levels), 2)
    return GROUPS[third]


def layer_groups(G) -> dict[str, list[int]]:
    """ws indices per group {'coarse': [...], 'middle': [...], 'fine': [...]}, by the layers' resolutions."""
    groups: dict[str, list[int]] = {g: [] for g in GROUPS}
    for idx, res in enumerate(ws_resolutions(G)):
        groups[_group_of(res, G.img_resolution)].append(idx)
    return groups


def _noise_layers(G) -> list[tuple[torch.nn.Module, int]]:
    return [
        (m, int(m.resolution))
        for m in G.synthesis.modules()
        if isinstance(getattr(m, "noise_strength", None), torch.Tensor) and hasattr(m, "resolution")
    ]


@contextlib.contextmanager
def noise_only_at(G, keep: Callable[[int], bool]) -> Iterator[None]:
    """Within the block, only layers whose resolution satisfies `keep` add noise (others' strength is 0)."""
    saved = [(m, m.noise_strength.detach().clone()) for m, res in _noise_layers(G) if not keep(res)]
    try:
        with torch.no_grad():
            for m, _ in saved:
                m.noise_strength.zero_()
        yield
    finally:
        with torch.no_grad():
            for m, value in saved:
                m.noise_strength.copy_(value)


def _check_noise(G) -> None:
    if not _noise_layers(G):
        raise ValueError("this model has no noise inputs (e.g. StyleGAN3), so noise figures do not apply")


def paper_mixing_figure(
    G,
    col_seeds: Sequence[int],
    row_seeds: dict[str, Sequence[int]],
    *,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Paper Fig. 3. Top row: sources B (`col_seeds`); left column: sources A; the rows of group g (from
    `row_seeds[g]`, g in coarse/middle/fine) take B's styles at that group's layers. Returns [H', W', C]."""
    groups = layer_groups(G)
    kw = dict(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, class_idx=class_idx, device=device)
    ws_b = compute_ws(G, col_seeds, **kw)
    img_b = synthesize(G, ws_b, noise_mode=noise_mode)
    cells = [np.full_like(img_b[:1], 255), img_b]  # blank corner, then the B row
    for group, seeds in row_seeds.items():
        if not seeds:
            continue
        if not groups[group]:
            raise ValueError(f"this {G.img_resolution}² model has no {group} layers; drop that row group")
        ws_a = compute_ws(G, seeds, **kw)
        mixed = mix_ws(ws_a, ws_b, groups[group])  # [R, C, num_ws, w_dim]
        for i in range(len(seeds)):
            cells += [
                synthesize(G, ws_a[i : i + 1], noise_mode=noise_mode),
                synthesize(G, mixed[i], noise_mode=noise_mode),
            ]
    return make_grid(np.concatenate(cells), cols=len(col_seeds) + 1, pad=PAD)


@torch.no_grad()
def _draws(G, ws: torch.Tensor, num: int, noise_seed: int, batch_size: int = 8) -> torch.Tensor:
    """[num, C, H, W] images of one ws [1, num_ws, w_dim], each with its own noise draw (reproducible)."""
    torch.manual_seed(noise_seed)
    return torch.cat(
        [
            G.synthesis(ws.expand(min(batch_size, num - k), -1, -1), noise_mode="random")
            for k in range(0, num, batch_size)
        ]
    )


def std_image(images: torch.Tensor) -> np.ndarray:
    """Per-pixel std-dev over draws [K, C, H, W] (mean over channels), scaled so the max is white."""
    std = images.float().std(dim=0).mean(dim=0)  # [H, W]
    std = std / std.max().clamp(min=1e-8) * 255
    return std.clamp(0, 255).to(torch.uint8).cpu().numpy()


def stochastic_variation_figure(
    G,
    seeds: Sequence[int],
    *,
    num_draws: int = 4,
    std_draws: int = 32,
    noise_seed: int = 0,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Paper Fig. 4. One row per seed: `num_draws` images with the same w and different noise, then the
    per-pixel std image over max(num_draws, std_draws) draws (the paper used 100). Returns [H', W', C]."""
    _check_noise(G)
    if num_draws < 1 or max(num_draws, std_draws) < 2:
        raise ValueError("need at least 1 draw shown and 2 draws for the standard deviation")
    ws = compute_ws(
        G,
        seeds,
        truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff,
        class_idx=class_idx,
        device=device,
    )
    rows = []
    for i in range(len(seeds)):
        imgs = _draws(G, ws[i : i + 1], max(num_draws, std_draws), noise_seed)
        u8 = to_uint8(imgs[:num_draws])
        std = np.repeat(std_image(imgs)[None, :, :, None], u8.shape[-1], axis=-1)
        rows.append(np.concatenate([u8, std]))
    return make_grid(np.concatenate(rows), cols=num_draws + 1, pad=PAD)


def noise_conditions(G) -> dict[str, Callable[[int], bool]]:
    """Fig. 5's columns: which layer resolutions get noise (fine = 64² and up; small models: top third)."""
    fine = {res for res in G.synthesis.block_resolutions if _group_of(res, G.img_resolution) == "fine"}
    return {
        "all": lambda r: True,
        "none": lambda r: False,
        "fine": lambda r: r in fine,
        "coarse": lambda r: r not in fine,
    }


def noise_layers_figure(
    G,
    seeds: Sequence[int],
    *,
    noise_seed: int = 0,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Paper Fig. 5. One row per seed; columns: noise in all layers, none, fine layers only, coarse only."""
    _check_noise(G)
    ws = compute_ws(
        G,
        seeds,
        truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff,
        class_idx=class_idx,
        device=device,
    )
    columns = []
    for keep in noise_conditions(G).values():
        with noise_only_at(G, keep):
            torch.manual_seed(noise_seed)
            columns.append(synthesize(G, ws, noise_mode="random", batch_size=len(seeds)))
    cells = np.stack(columns, axis=1).reshape(-1, *columns[0].shape[1:])  # row-major [seed, condition]
    return make_grid(cells, cols=len(columns), pad=PAD)


def truncation_figure(
    G,
    seeds: Sequence[int],
    psis: Sequence[float] = PAPER_PSIS,
    *,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Paper Fig. 8. One row per seed, one column per psi (w_avg + psi (w - w_avg))."""
    ws = compute_ws(G, seeds, class_idx=class_idx, device=device)  # [N, num_ws, w_dim]
    cols = [synthesize(G, G.mapping.truncate(ws, psi, truncation_cutoff), noise_mode=noise_mode) for psi in psis]
    cells = np.stack(cols, axis=1).reshape(-1, *cols[0].shape[1:])
    return make_grid(cells, cols=len(psis), pad=PAD)


def interpolation_frames(
    G,
    seeds: Sequence[int],
    *,
    frames_per_seed: int = 24,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    loop: bool = True,
    device: torch.device | str = "cpu",
) -> Iterator[np.ndarray]:
    """Frames [H, W, C] of a linear walk in W through the seeds' ws (back to the first when `loop`)."""
    if len(seeds) < 2 or frames_per_seed < 1:
        raise ValueError("an interpolation needs at least 2 seeds and 1 frame per seed")
    ws = compute_ws(
        G,
        seeds,
        truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff,
        class_idx=class_idx,
        device=device,
    )
    keys = torch.cat([ws, ws[:1]]) if loop else ws
    t = torch.arange(frames_per_seed, dtype=torch.float32, device=ws.device) / frames_per_seed
    for k in range(keys.shape[0] - 1):
        path = keys[k : k + 1].lerp(keys[k + 1 : k + 2], t.reshape(-1, 1, 1))  # [frames, num_ws, w_dim]
        yield from synthesize(G, path, noise_mode=noise_mode)
    if not loop:
        yield synthesize(G, keys[-1:], noise_mode=noise_mode)[0]


def write_video(frames: Iterator[np.ndarray], path: str | Path, fps: int = 24) -> int:
    """Writes frames to .gif (Pillow) or .mp4 (imageio-ffmpeg, optional). Returns the number of frames."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"{path.name}: the video must be .gif or .mp4")
    if suffix == ".mp4":
        return _write_mp4(frames, path, fps)
    from stylegan.editing.generate import image_from_array

    images = [image_from_array(f) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return len(images)


def _write_mp4(frames: Iterator[np.ndarray], path: Path, fps: int) -> int:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ValueError("writing .mp4 needs imageio-ffmpeg (pip install imageio-ffmpeg); or write a .gif") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    writer, count = None, 0
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1)
                writer.send(None)
            writer.send(np.ascontiguousarray(np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame))
            count += 1
    finally:
        if writer is not None:
            writer.close()
    return count

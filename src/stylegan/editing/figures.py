"""The StyleGAN paper's figures for any loaded generator (StyleGAN1, StyleGAN2 and StyleGAN3 modules alike).

- Fig. 3 `style_mixing_figure`: top row sources B, left column sources A; each row copies some of B's styles
  into A (`group_rows` picks the paper's coarse / middle / fine groups; `stylegan mix` any list of layers).
- Fig. 4 `stochastic_variation_figure`: one w, several noise draws, and the per-pixel standard deviation.
- Fig. 5 `noise_layers_figure`: noise in all layers / none / fine layers only / coarse layers only.
- Fig. 8 `truncation_figure`: w_avg + psi (w - w_avg) for psi from 1 to -1.
- `interpolation_frames` / `write_video`: a loop through the seeds' ws (GIF: Pillow, mp4: imageio-ffmpeg; mp4
  frames carry the provenance mark, see editing.video_mark).

Layer groups come from the model's own resolutions (`layer_groups`, `describe_groups`): the paper's split at 64²
and above, the resolutions in thirds below. StyleGAN3 has no resolution blocks: there each w counts at the
resolution whose Nyquist frequency is its layer's cutoff (`ws_resolutions`). StyleGAN3 has no noise inputs, so
Figs. 4 and 5 refuse it in one line. Per-layer noise is switched off by zeroing the layers'
`noise_strength` inside `noise_only_at` (restored after), so the network code needs no hook. Figures are uint8
images [C, H, W]; frames too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from stylegan.editing.generate import NOISE_MODE, compute_ws, mix_ws, synthesize
from stylegan.editing.video_mark import CRF, GIF_NOTE, OFF_NOTE, FrameMarker
from stylegan.images import tile, to_pil, to_uint8
from stylegan.io.native import atomic_write
from stylegan.networks import stylegan3

GROUPS = ("coarse", "middle", "fine")
PAPER_PSIS = (1.0, 0.7, 0.5, 0.0, -0.5, -1.0)
PAD = 2  # white pixels between the cells of a figure


def default_truncation(G) -> tuple[float, int | None]:
    """The model's own generation defaults: StyleGAN1 configs carry the paper's (0.7, 8); others (1, None)."""
    cfg = getattr(G, "config", None)
    return float(getattr(cfg, "truncation_psi", 1.0)), getattr(cfg, "truncation_cutoff", None)


def ws_resolutions(G) -> list[int]:
    """Resolution of the layer each of the num_ws ws drives (StyleGAN2's last w drives the final ToRGB).

    StyleGAN3: w 0 drives the Fourier-feature input, w i + 1 synthesis layer i (the last one ToRGB). A layer
    whose output is band-limited to the cutoff f_c counts as resolution 2 f_c (the one whose Nyquist frequency
    is f_c), rounded to a power of two, so that the same groups apply as for the blocks of StyleGAN2.
    """
    if isinstance(G.synthesis, stylegan3.SynthesisNetwork):
        return _band_limit_resolutions(G.config)
    if not hasattr(G.synthesis, "block_resolutions"):
        raise ValueError("layer groups need a StyleGAN1, StyleGAN2 or StyleGAN3 generator")
    out: list[int] = []
    for res in G.synthesis.block_resolutions:
        out += [res] * getattr(getattr(G.synthesis, f"b{res}"), "num_conv", 2)
    return (out + [G.img_resolution] * G.num_ws)[: G.num_ws]


def _band_limit_resolutions(cfg) -> list[int]:
    """[num_ws] 2 f_c of the input and of each layer's output (layer_schedule), rounded to a power of two."""
    points = stylegan3.layer_schedule(cfg)  # [0]: the input; [i]: the output of layer i
    cutoffs = [points[0].cutoff] + [points[i].cutoff for i in range(cfg.num_layers + 1)]
    return [2 ** math.floor(math.log2(2 * fc) + 0.5) for fc in cutoffs]


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


def describe_groups(G) -> str:
    """The model's layer groups in words, e.g. at 1024² (StyleGAN1):
    'coarse ws 0-3 (4²-8²), middle ws 4-7 (16²-32²), fine ws 8-17 (64²-1024²)'."""
    res = ws_resolutions(G)
    return ", ".join(
        f"{group} ws {_span(idx[0], idx[-1])} ({_span(f'{res[idx[0]]}²', f'{res[idx[-1]]}²')})"
        for group, idx in layer_groups(G).items()
        if idx
    )


def _span(first, last) -> str:
    return f"{first}" if first == last else f"{first}-{last}"


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


def check_layers(G, layers: Sequence[int]) -> list[int]:
    """The ws indices as a list; ValueError naming the valid range when one is not a layer of G."""
    layers = [int(i) for i in layers]
    outside = sorted({i for i in layers if not 0 <= i < G.num_ws})
    if outside:
        raise ValueError(f"layers {outside} out of range: this model has layers (ws indices) 0..{G.num_ws - 1}")
    return layers


def group_rows(G, seeds_per_group: dict[str, Sequence[int]]) -> list[tuple[int, list[int]]]:
    """Fig. 3's rows: (seed A, the ws indices of its group) for each seed of `seeds_per_group[group]`."""
    groups = layer_groups(G)
    rows = []
    for group, seeds in seeds_per_group.items():
        if seeds and not groups[group]:
            raise ValueError(f"this {G.img_resolution}² model has no {group} layers; drop that row group")
        rows += [(seed, groups[group]) for seed in seeds]
    return rows


def style_mixing_figure(
    G,
    col_seeds: Sequence[int],
    rows: Sequence[tuple[int, Sequence[int]]],
    *,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = NOISE_MODE,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Paper Fig. 3 (and `stylegan mix`): a grid [C, H', W'] with sources B along the top, sources A down the left.

    Args:
        col_seeds: seeds of the sources B, one per column.
        rows: (seed of source A, layers) per row; cell (i, j) is A_i with B_j's ws at rows[i]'s layers.
    """
    if not rows or not col_seeds:
        raise ValueError("a style-mixing figure needs at least one row seed and one column seed")
    kw = dict(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, class_idx=class_idx, device=device)
    ws_b = compute_ws(G, col_seeds, **kw)  # [cols, num_ws, w_dim]
    ws_a = compute_ws(G, [seed for seed, _ in rows], **kw)  # [rows, num_ws, w_dim]
    per_row = [
        torch.cat([ws_a[i : i + 1], mix_ws(ws_a[i : i + 1], ws_b, check_layers(G, layers))[0]])
        for i, (_, layers) in enumerate(rows)
    ]  # each [1 + cols, num_ws, w_dim]: A, then A with B_j's styles
    cells = synthesize(G, torch.cat([ws_b, *per_row]), noise_mode=noise_mode)
    corner = cells.new_full([1, *cells.shape[1:]], 255)
    return tile(torch.cat([corner, cells]), cols=len(col_seeds) + 1, pad=PAD)


@torch.no_grad()
def _draws(G, ws: torch.Tensor, num: int, noise_seed: int, batch_size: int = 8) -> torch.Tensor:
    """[num, C, H, W] float images of one ws [1, num_ws, w_dim], each with its own noise draw (reproducible)."""
    torch.manual_seed(noise_seed)
    sizes = [min(batch_size, num - k) for k in range(0, num, batch_size)]
    return torch.cat([G.synthesis(ws.expand(n, -1, -1), noise_mode="random").cpu() for n in sizes])


def std_image(images: torch.Tensor) -> torch.Tensor:
    """uint8 [H, W]: per-pixel std-dev over draws [K, C, H, W] (mean over channels), scaled so the max is white."""
    std = images.float().std(dim=0).mean(dim=0)  # [H, W]
    return (std * (255 / std.max().clamp(min=1e-8))).clamp(0, 255).to(torch.uint8)


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
) -> torch.Tensor:
    """Paper Fig. 4. One row per seed: `num_draws` images with the same w and different noise, then the
    per-pixel std image over max(num_draws, std_draws) draws (the paper used 100). Returns [C, H', W']."""
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
    cells = []
    for one_w in ws.split(1):
        draws = _draws(G, one_w, max(num_draws, std_draws), noise_seed)  # [K, C, H, W]
        shown = to_uint8(draws[:num_draws])
        cells += [shown, std_image(draws).expand(1, shown.shape[1], -1, -1)]
    return tile(torch.cat(cells), cols=num_draws + 1, pad=PAD)


def noise_conditions(G) -> dict[str, Callable[[int], bool]]:
    """Fig. 5's columns: which layer resolutions get noise (fine = the model's fine group, see layer_groups)."""
    fine = {res for res in G.synthesis.block_resolutions if _group_of(res, G.img_resolution) == "fine"}
    return {
        "all": lambda r: True,
        "none": lambda r: False,
        "fine": lambda r: r in fine,
        "coarse": lambda r: r not in fine,
    }


def _by_rows(columns: list[torch.Tensor]) -> torch.Tensor:
    """K batches [N, C, H, W] (one per column) -> [N*K, C, H, W] in row-major order (row n: column 0..K-1)."""
    return torch.stack(columns, dim=1).flatten(0, 1)


def noise_layers_figure(
    G,
    seeds: Sequence[int],
    *,
    noise_seed: int = 0,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Paper Fig. 5. One row per seed; columns: noise in all layers, none, fine layers only, coarse only.
    Every column uses the same noise draw (seeded by `noise_seed`). Returns [C, H', W']."""
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
    return tile(_by_rows(columns), cols=len(columns), pad=PAD)


def truncation_figure(
    G,
    seeds: Sequence[int],
    psis: Sequence[float] = PAPER_PSIS,
    *,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = NOISE_MODE,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Paper Fig. 8. One row per seed, one column per psi (w_avg + psi (w - w_avg)). Returns [C, H', W']."""
    columns = [
        synthesize(
            G,
            compute_ws(
                G, seeds, truncation_psi=psi, truncation_cutoff=truncation_cutoff, class_idx=class_idx, device=device
            ),
            noise_mode=noise_mode,
        )
        for psi in psis
    ]
    return tile(_by_rows(columns), cols=len(psis), pad=PAD)


def interpolation_frames(
    G,
    seeds: Sequence[int],
    *,
    frames_per_seed: int = 24,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = NOISE_MODE,
    loop: bool = True,
    device: torch.device | str = "cpu",
) -> Iterator[torch.Tensor]:
    """Frames uint8 [C, H, W] of a linear walk in W through the seeds' ws (back to the first when `loop`)."""
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
    for start, stop in zip(keys[:-1], keys[1:], strict=True):
        path = torch.lerp(start[None], stop[None], t[:, None, None])  # [frames, num_ws, w_dim]
        yield from synthesize(G, path, noise_mode=noise_mode)
    if not loop:
        yield synthesize(G, keys[-1:], noise_mode=noise_mode)[0]


@dataclass(frozen=True)
class WrittenVideo:
    """What write_video wrote: the frame count, and the provenance metadata its comment carries (with the writer's
    `stylegan:mark`: what was done to the frames), for a C2PA manifest of the same file. None without metadata."""

    frames: int
    metadata: dict[str, str] | None


def write_video(
    frames: Iterable[torch.Tensor],
    path: str | Path,
    fps: int = 24,
    *,
    metadata: dict[str, str] | None = None,
    mark: FrameMarker | None = None,
) -> WrittenVideo:
    """Writes frames uint8 [C, H, W] to a .gif (Pillow) or .mp4 (imageio-ffmpeg, optional), atomically.

    metadata: provenance text (forensics.metadata.generation_metadata), stored as the container's comment (MP4
    `comment` tag, GIF comment extension) with `stylegan:mark` set to what was done. mark: the provenance mark added
    to every .mp4 frame whose sides are >= forensics.mark.MIN_SIDE, at H.264 crf video_mark.CRF (see video_mark);
    None leaves the frames as they are (--no-mark). GIF frames are never marked (the palette would wipe the mark
    out). The parent folder is created; an existing file is replaced.
    """
    path = Path(path)
    kind = path.suffix.lower()
    if kind not in (".gif", ".mp4"):
        raise ValueError(f"{path.name}: the video must be .gif or .mp4")
    if kind == ".mp4":
        return _write_mp4(frames, path, fps, metadata, mark)
    pictures = [to_pil(frame) for frame in frames]
    if not pictures:
        raise ValueError("no frames to write")
    first, rest = pictures[0], pictures[1:]
    atomic_write(
        path,
        lambda tmp: first.save(
            tmp, format="GIF", save_all=True, append_images=rest, duration=round(1000 / fps), loop=0
        ),
    )
    if metadata is None:
        return WrittenVideo(len(pictures), None)
    from stylegan.forensics.metadata import PREFIX, add_gif_comment, comment_text

    metadata = {**metadata, PREFIX + "mark": GIF_NOTE}
    add_gif_comment(path, comment_text(metadata))
    return WrittenVideo(len(pictures), metadata)


def _write_mp4(
    frames: Iterable[torch.Tensor], path: Path, fps: int, metadata: dict[str, str] | None, mark: FrameMarker | None
) -> WrittenVideo:
    """H.264 through imageio-ffmpeg's pipe; frames are streamed, not held in memory. The comment is made when the
    first frame gives the size (which decides whether frames are marked)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ValueError("writing .mp4 needs imageio-ffmpeg (pip install imageio-ffmpeg); or write a .gif") from None
    from stylegan.forensics.metadata import PREFIX, comment_text

    count, written = 0, metadata

    def start(tmp: str, height: int, width: int):
        nonlocal written
        params = ["-f", "mp4", "-crf", str(CRF)]
        if metadata is not None:
            note = OFF_NOTE if mark is None else mark.note(height, width)
            written = {**metadata, PREFIX + "mark": note}
            params += ["-metadata", f"comment={comment_text(written)}"]
        writer = imageio_ffmpeg.write_frames(tmp, (width, height), fps=fps, macro_block_size=1, output_params=params)
        writer.send(None)  # start the encoder
        return writer

    def encode(tmp: str) -> None:
        nonlocal count
        writer = None
        try:
            for frame in frames:
                rgb = frame.expand(3, -1, -1).permute(1, 2, 0).contiguous().numpy()  # [H, W, 3]; grey repeated
                if writer is None:
                    writer = start(tmp, *rgb.shape[:2])
                writer.send(rgb if mark is None else mark(rgb))
                count += 1
        finally:
            if writer is not None:
                writer.close()

    atomic_write(path, encode)
    return WrittenVideo(count, written)

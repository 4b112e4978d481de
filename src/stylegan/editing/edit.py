"""Editing along latent directions: sources (seeds or projected ws) moved by strengths along directions, in chosen
layers, rendered as a strip, a grid or a video. `stylegan edit` is a thin wrapper over `write_edit`.

Edit: ws'[layers] = ws[layers] + s * sigma * v for each strength s (sigma: the model's w spread along v, see
editing.directions), other layers untouched. Layout of a figure: one row per (source, direction), sources outer,
one column per strength. A video sweeps the strength from the first value to the last and back, every
(source, direction) in one frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from stylegan.editing.directions import Direction, DirectionError
from stylegan.editing.generate import NOISE_MODE, synthesize
from stylegan.images import tile, zoom

PAD = 2  # white pixels between cells, as in editing.figures
VIDEO_SUFFIXES = (".mp4", ".gif")


def parse_strengths(text: str) -> list[float]:
    """'-3:3:7' -> 7 evenly spaced values from -3 to 3; '-2,0,2' -> that list; '1.5' -> [1.5]."""
    text = str(text).strip()
    try:
        if ":" in text:
            lo, hi, count = text.split(":")
            n = int(count)
            if n < 1:
                raise ValueError
            return [float(v) for v in np.linspace(float(lo), float(hi), n)]
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise DirectionError(
            f"bad strengths {text!r}: use START:STOP:COUNT (e.g. -3:3:7) or a list like -2,0,2"
        ) from None


def load_projected_w(path: str | Path, G) -> torch.Tensor:
    """ws [N, num_ws, w_dim] float32 from a projection .npz (NVIDIA's projected_w.npz: key `w`, [1, num_ws, w_dim]).

    [num_ws, w_dim] and W-space [N, w_dim] arrays are accepted too (a W vector is repeated for every layer).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            if "w" not in data:
                raise DirectionError(
                    f"{path}: no array 'w' (found {', '.join(data.files) or 'none'}); expected NVIDIA's projected_w.npz"
                )
            w = torch.from_numpy(np.asarray(data["w"], dtype=np.float32))
    except FileNotFoundError:
        raise DirectionError(f"{path}: no such file") from None
    except (OSError, ValueError) as err:
        raise DirectionError(f"{path}: not a readable .npz ({err})") from None
    if w.ndim == 2 and w.shape[-1] == G.w_dim and w.shape[0] != G.num_ws:
        w = w[:, None].expand(-1, G.num_ws, -1)  # W: one w per source
    w = w[None] if w.ndim == 2 else w
    if w.ndim != 3 or tuple(w.shape[1:]) != (G.num_ws, G.w_dim):
        raise DirectionError(
            f"{path}: w has shape {list(w.shape)}, this model needs [N, {G.num_ws}, {G.w_dim}] (num_ws, w_dim)"
        )
    return w.contiguous()


def edit_ws(
    ws: torch.Tensor, directions: Sequence[Direction], strengths: Sequence[float], layers: Sequence[int] | None = None
) -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> edited [N, D, S, num_ws, w_dim] (D directions, S strengths).

    layers: ws indices to move; None: each direction's own layers.
    """
    out = []
    s = torch.tensor([float(v) for v in strengths], dtype=ws.dtype, device=ws.device)  # [S]
    for d in directions:
        mask = torch.zeros(ws.shape[1], dtype=ws.dtype, device=ws.device)
        mask[list(d.layers if layers is None else layers)] = 1
        step = d.step().to(ws)  # [w_dim]
        delta = s[:, None, None] * mask[None, :, None] * step[None, None, :]  # [S, num_ws, w_dim]
        out.append(ws[:, None] + delta[None])  # [N, S, num_ws, w_dim]
    return torch.stack(out, dim=1)


def check_directions(G, directions: Sequence[Direction]) -> None:
    """DirectionError when a direction does not fit G's w_dim or num_ws."""
    for d in directions:
        if len(d.vector) != G.w_dim:
            raise DirectionError(f"direction {d.name}: w_dim {len(d.vector)}, this model has w_dim {G.w_dim}")
        if max(d.layers, default=0) >= G.num_ws:
            raise DirectionError(f"direction {d.name}: layers beyond this model's {G.num_ws} ws")


@torch.no_grad()
def edit_images(
    G,
    ws: torch.Tensor,
    directions: Sequence[Direction],
    strengths: Sequence[float],
    layers: Sequence[int] | None = None,
    *,
    noise_mode: str = NOISE_MODE,
    batch_size: int = 64,
) -> torch.Tensor:
    """uint8 images [N, D, S, C, H, W] of sources ws [N, num_ws, w_dim] edited along each direction by each strength."""
    check_directions(G, directions)
    edited = edit_ws(ws, directions, strengths, layers)  # [N, D, S, num_ws, w_dim]
    images = synthesize(G, edited.flatten(0, 2), noise_mode=noise_mode, batch_size=batch_size)
    return images.reshape(*edited.shape[:3], *images.shape[1:])


def edit_figure(
    G,
    ws: torch.Tensor,
    directions: Sequence[Direction],
    strengths: Sequence[float],
    layers: Sequence[int] | None = None,
    *,
    noise_mode: str = NOISE_MODE,
) -> torch.Tensor:
    """One image [C, H', W']: a row per (source, direction), sources outer, a column per strength."""
    images = edit_images(G, ws, directions, strengths, layers, noise_mode=noise_mode)
    return tile(images.flatten(0, 2), cols=len(strengths), pad=PAD)


def sweep(strengths: Sequence[float], frames: int) -> list[float]:
    """Strengths of a looping video: first -> last -> back, `frames` values, linear (a triangle wave)."""
    lo, hi = float(strengths[0]), float(strengths[-1])
    t = np.arange(frames) / frames
    return [float(v) for v in lo + (hi - lo) * (1 - np.abs(2 * t - 1))]


def edit_frames(
    G,
    ws: torch.Tensor,
    directions: Sequence[Direction],
    strengths: Sequence[float],
    layers: Sequence[int] | None = None,
    *,
    frames: int = 48,
    noise_mode: str = NOISE_MODE,
    scale: int = 1,
) -> Iterator[torch.Tensor]:
    """Video frames uint8 [C, H, W]: every (source, direction) tiled in one frame, strength swept (see sweep)."""
    check_directions(G, directions)
    cols = len(directions)
    for s in sweep(strengths, frames):
        images = edit_images(G, ws, directions, [s], layers, noise_mode=noise_mode)  # [N, D, 1, C, H, W]
        yield zoom(tile(images.flatten(0, 2), cols=cols, pad=PAD), scale)


def describe(strengths: Sequence[float]) -> str:
    """'-3,-2,...,3' with short numbers, for metadata and messages."""
    return ",".join(f"{v:g}" for v in strengths)


def write_edit(
    G,
    ws: torch.Tensor,
    directions: Sequence[Direction],
    strengths: Sequence[float],
    out: str | Path,
    *,
    layers: Sequence[int] | None = None,
    metadata: dict | None = None,
    seeds: Sequence[int] | None = None,
    mark: bool = True,
    scale: int = 1,
    frames: int = 48,
    fps: int = 24,
    noise_mode: str = NOISE_MODE,
    credentials=None,
) -> Path:
    """Writes the edit as a PNG figure (strip/grid) or a video (.mp4 / .gif, by suffix), with provenance.

    metadata: the generation settings save_png records (model, truncation_psi, ...); the edit's own settings
    (seeds, directions, strengths, layers) are added as `stylegan:` text chunks (PNG) or to the video's comment.
    credentials: forensics.c2pa.SigningCredentials, to add signed C2PA content credentials to the file (PNG, GIF
    and MP4 alike), or None.
    """
    out = Path(out)
    edit_info = _edit_info(directions, strengths, layers, seeds)
    settings = dict(metadata or {}, noise_mode=noise_mode)
    if seeds:
        settings["seed"] = int(seeds[0])  # the mark carries one seed: the first source's
    if out.suffix.lower() in VIDEO_SUFFIXES:
        video = (frames, fps, scale, mark)
        chunks = _write_video(G, ws, directions, strengths, layers, out, settings, edit_info, video)
    else:
        fig = edit_figure(G, ws, directions, strengths, layers, noise_mode=noise_mode)
        chunks = _write_png(zoom(fig, scale), out, settings, edit_info, mark)
    if credentials is not None:
        from stylegan.forensics.c2pa import sign_output

        sign_output(out, credentials, chunks)
    return out


def _edit_info(directions, strengths, layers, seeds) -> dict[str, str]:
    from stylegan.editing.generate import format_range

    info = {
        "direction": "; ".join(d.name for d in directions),
        "strengths": describe(strengths),
        "layers": "; ".join(format_range(d.layers if layers is None else layers) for d in directions),
    }
    if seeds:
        info["seeds"] = format_range(list(seeds))
    return info


def _write_png(fig: torch.Tensor, out: Path, settings: dict, edit_info: dict, mark: bool) -> None:
    """One PNG: mark, generation metadata and the edit's settings as `stylegan:` text chunks (which a C2PA
    manifest then takes from the file: returns None)."""
    from stylegan.images import save_png

    save_png(fig, out, mark=mark, metadata=settings, extra=edit_info)


def _write_video(G, ws, directions, strengths, layers, out, settings, edit_info, video) -> dict:
    """The .mp4 or .gif with its provenance comment; video: (frames, fps, scale, mark). MP4 frames carry the mark
    (the first source's seed; see editing.video_mark). Returns the metadata the comment was made from."""
    from stylegan.editing.figures import write_video
    from stylegan.editing.video_mark import FrameMarker, frame_payload
    from stylegan.forensics.metadata import PREFIX, generation_metadata

    frames, fps, scale, mark = video
    if frames < 2:
        raise DirectionError(f"a video needs at least 2 frames, got {frames}")
    chunks = generation_metadata(**settings)
    chunks.update({PREFIX + k: v for k, v in edit_info.items()})
    marker = FrameMarker(frame_payload(settings.get("model"), settings.get("seed"))) if mark else None
    frame_iter = edit_frames(
        G, ws, directions, strengths, layers, frames=frames, noise_mode=settings["noise_mode"], scale=scale
    )
    return write_video(frame_iter, out, fps=fps, metadata=chunks, mark=marker).metadata


def video_available() -> bool:
    """Whether the `video` extra (imageio-ffmpeg) is installed, for .mp4 output."""
    import importlib.util

    return importlib.util.find_spec("imageio_ffmpeg") is not None


def is_video(out: str | Path) -> bool:
    return Path(out).suffix.lower() in VIDEO_SUFFIXES

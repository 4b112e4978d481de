"""Equivariance metrics of StyleGAN3 (Karras et al. 2021, "Alias-Free GANs", appendix E): EQ-T, EQ-T_frac, EQ-R.

A generator g is equivariant to a transform t when moving its input (the Fourier features, through
`G.synthesis.input.transform`) moves its output the same way: g(t[input]; w) = t[g(input; w)]. The metric is the
peak signal-to-noise ratio of that identity, in dB,

    EQ = 10 log10(I_max^2 / E_{w, t, c, p in V} [(g(t[input]; w)_c(p) - t[g(input; w)]_c(p))^2]),  I_max = 2,

the mean square error taken over colour channels c, the pixels p where the image-space transform is defined (V)
and all samples, before the logarithm. Transforms, one per batch of latents (the transform buffer is shared):

- EQ-T (integer): translation by whole pixels, each axis uniform in [-1/8, 1/8] of the canvas, rounded; the image
  side is an exact pixel shift and V the pixels whose source is inside the image.
- EQ-T_frac: the same without rounding; EQ-R: rotation by an angle uniform in [-180, 180] degrees. Both need
  resampling between pixels, done with a Lanczos (windowed sinc) kernel; V excludes the pixels whose kernel reaches
  outside the image. The resampling is split symmetrically: t^(1/2) applied to g(input) is compared with
  t^(-1/2) applied to g(t[input]), so both sides pass through mirror-image kernels and the kernel's attenuation of
  high frequencies cancels instead of counting as an equivariance error.

Only generators whose synthesis input takes a transform (StyleGAN3) can be measured: the input is what moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

I_MAX = 2.0  # images span [-1, 1]
TRANSLATE_MAX = 0.125  # of the canvas, per axis
ROTATE_MAX = 180.0  # degrees
LANCZOS_A = 4  # kernel radius in pixels: (2a)^2 taps per output pixel


def psnr(sse: float, count: float) -> float:
    """10 log10(I_max^2 / (sse / count)) in dB; inf for a zero error."""
    if sse <= 0:
        return math.inf
    return 10 * math.log10(I_MAX**2 * count / sse)


def masked_sse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(sum of squared differences, number of values) of a, b [N, C, H, W] over mask [H, W] (1: valid)."""
    n, c = a.shape[:2]
    sse = ((a.double() - b.double()).square() * mask.double()).sum().item()
    return sse, float(mask.sum().item()) * n * c


# ----------------------------------------------------------------------------------------------------------------
# Image-space transforms. Coordinates: x along W, y along H, in canvas units (the image spans [-0.5, 0.5]).


def content_matrix(translate: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> torch.Tensor:
    """3x3 map q -> A q taking the content at q to where it lands: a turn by `angle` degrees, then a shift.

    Positive angles turn x = (1, 0) towards -y (counter-clockwise on screen, y pointing down).
    """
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return torch.tensor([[c, s, translate[0]], [-s, c, translate[1]], [0.0, 0.0, 1.0]], dtype=torch.float64)


def shift_integer(img: torch.Tensor, dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Content moved by (dx, dy) whole pixels: out[..., i, j] = img[..., i - dy, j - dx].

    Returns (out [N, C, H, W], mask [H, W]); pixels with no source are 0 in both.
    """
    h, w = img.shape[-2:]
    out = torch.zeros_like(img)
    mask = torch.zeros(h, w, dtype=img.dtype, device=img.device)
    if abs(dx) < w and abs(dy) < h:
        rows_out, rows_in = _overlap(dy, h)
        cols_out, cols_in = _overlap(dx, w)
        out[..., rows_out, cols_out] = img[..., rows_in, cols_in]
        mask[rows_out, cols_out] = 1
    return out, mask


def _overlap(d: int, n: int) -> tuple[slice, slice]:
    """Destination and source slices of a length-n axis moved by d (|d| < n)."""
    return slice(max(d, 0), n + min(d, 0)), slice(max(-d, 0), n + min(-d, 0))


def lanczos(x: torch.Tensor, a: int = LANCZOS_A) -> torch.Tensor:
    """sinc(x) sinc(x / a) for |x| < a, else 0 (x in pixels)."""
    return torch.where(x.abs() < a, torch.sinc(x) * torch.sinc(x / a), torch.zeros_like(x))


def resample(img: torch.Tensor, src: torch.Tensor, a: int = LANCZOS_A) -> tuple[torch.Tensor, torch.Tensor]:
    """Band-limited interpolation of img [N, C, H, W] at source positions src [Ho, Wo, 2] (x, y in pixel indices).

    Separable Lanczos kernel over the (2a)^2 nearest pixels, weights normalised to sum to one. Returns
    (out [N, C, Ho, Wo], mask [Ho, Wo]); mask is 1 where every tap lies inside the image, else 0 (and out is 0).
    """
    h, w = img.shape[-2:]
    x, y = src[..., 0].to(img.dtype), src[..., 1].to(img.dtype)
    offsets = torch.arange(1 - a, a + 1, device=img.device)
    ix = x.floor().long()[..., None] + offsets  # [Ho, Wo, 2a]
    iy = y.floor().long()[..., None] + offsets
    wx, wy = lanczos(x[..., None] - ix, a), lanczos(y[..., None] - iy, a)
    inside = ((ix >= 0) & (ix < w)).all(-1) & ((iy >= 0) & (iy < h)).all(-1)  # [Ho, Wo]
    norm = inside / (wy.sum(-1) * wx.sum(-1))  # weights sum to one (the kernel is separable); 0 outside
    rows, cols = iy.clamp(0, h - 1) * w, ix.clamp(0, w - 1)
    flat = img.flatten(-2)
    out = torch.zeros(*img.shape[:-2], *src.shape[:2], dtype=img.dtype, device=img.device)
    for j in range(2 * a):  # one tap at a time: memory stays at one image batch
        for i in range(2 * a):
            out += flat[..., rows[..., j] + cols[..., i]] * (wy[..., j] * wx[..., i] * norm)
    return out, inside.to(img.dtype)


def warp(img: torch.Tensor, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Content of img [N, C, H, W] moved by the 3x3 canvas-unit map `matrix` (see content_matrix): out(p) =
    img(matrix^-1 p), resampled with `resample`. Returns (out, mask [H, W])."""
    h, w = img.shape[-2:]
    size = torch.tensor([w, h], dtype=torch.float64, device=img.device)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64, device=img.device),
        torch.arange(w, dtype=torch.float64, device=img.device),
        indexing="ij",
    )
    canvas = (torch.stack([xs, ys], -1) + 0.5) / size - 0.5  # [H, W, 2] pixel centres in canvas units
    inv = torch.linalg.inv(matrix.to(device=img.device, dtype=torch.float64))
    src = canvas @ inv[:2, :2].T + inv[:2, 2]
    return resample(img, (src + 0.5) * size - 0.5)


# ----------------------------------------------------------------------------------------------------------------
# The generator side


def input_layer(G) -> torch.nn.Module:
    """G.synthesis.input if it has a 3x3 `transform` buffer (StyleGAN3); ValueError otherwise."""
    layer = getattr(getattr(G, "synthesis", None), "input", None)
    transform = getattr(layer, "transform", None)
    if not isinstance(transform, torch.Tensor) or tuple(transform.shape) != (3, 3):
        raise ValueError(
            "equivariance metrics need a StyleGAN3 generator: they move its input (synthesis.input.transform), "
            "which other generators do not have"
        )
    return layer


@torch.no_grad()
def synthesize_moved(G, ws: torch.Tensor, matrix: torch.Tensor | None) -> torch.Tensor:
    """G.synthesis(ws) float32 with the content moved by `matrix` (identity: None) through the input transform."""
    layer = input_layer(G)
    saved = layer.transform.clone()
    try:
        if matrix is not None:
            layer.transform.copy_(torch.linalg.inv(matrix).to(layer.transform))
        else:
            layer.transform.copy_(torch.eye(3, dtype=layer.transform.dtype))
        return G.synthesis(ws, noise_mode="const").float()
    finally:
        layer.transform.copy_(saved)


def random_transform(mode: str, generator: torch.Generator, resolution: int) -> tuple[float, float, float]:
    """(tx, ty, angle): canvas units and degrees. mode: int (whole pixels) | frac | rot."""
    u = torch.rand(2, generator=generator, dtype=torch.float64) * 2 - 1  # both drawn in every mode
    if mode == "rot":
        return 0.0, 0.0, float(u[0]) * ROTATE_MAX
    t = u * TRANSLATE_MAX
    if mode == "int":
        t = (t * resolution).round() / resolution
    if mode not in ("int", "frac"):
        raise ValueError(f"unknown equivariance mode {mode!r}; use int, frac or rot")
    return float(t[0]), float(t[1]), 0.0


@torch.no_grad()
def equivariance_error(G, ws: torch.Tensor, mode: str, move: tuple[float, float, float]) -> tuple[float, float]:
    """(sum of squared errors, number of values) of one batch ws [N, num_ws, w_dim] under one transform `move`."""
    tx, ty, angle = move
    base = synthesize_moved(G, ws, None)
    moved = synthesize_moved(G, ws, content_matrix((tx, ty), angle))
    if mode == "int":
        res_h, res_w = base.shape[-2:]
        expected, mask = shift_integer(base, round(tx * res_w), round(ty * res_h))
        return masked_sse(moved, expected, mask)
    half = content_matrix((tx / 2, ty / 2), angle / 2)  # a pure shift or a turn about the centre: half twice = all
    a, mask_a = warp(base, half)
    b, mask_b = warp(moved, torch.linalg.inv(half))
    return masked_sse(a, b, mask_a * mask_b)


def equivariance_psnr(
    G,
    mode: str,
    num: int,
    batch_size: int,
    device: torch.device,
    batch_seed: Callable[[int], int],
    batches: range | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Rows [sse, count] float64, one per batch of `batches` (default all of ceil(num / batch_size)).

    Batch b draws its z, labels and transform from torch.Generator().manual_seed(batch_seed(b)).
    """
    from stylegan.metrics.features import random_labels

    input_layer(G)
    batches = range(-(-num // batch_size)) if batches is None else batches
    rows = []
    for b in batches:
        n = min(batch_size, num - b * batch_size)
        gen = torch.Generator().manual_seed(batch_seed(b))
        z = torch.randn([n, G.z_dim], generator=gen)
        c = random_labels(G, n, gen)
        move = random_transform(mode, gen, G.synthesis.img_resolution)
        ws = G.mapping(z.to(device), c.to(device))
        rows.append(equivariance_error(G, ws, mode, move))
        if progress is not None:
            progress(n)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)

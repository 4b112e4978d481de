"""Winograd minimal filtering F(m x m, 3 x 3) for the 3x3 stride-1 'same' convolution of one CPU image.

A 1-D correlation of r = 3 taps producing m outputs is a polynomial product evaluated at n = m + 2 points
(here 0, ±1, ±2, ... and infinity): y = Aᵀ [(G g) ⊙ (Bᵀ d)] for a data tile d of n samples. Nested along both axes,
an m x m output tile costs n² products instead of 9 m², and over channels the products become n² independent matrix
products [tiles, C_in] @ [C_in, C_out], which is where the time goes:

    V[ξ, ν] = (Bᵀ d B)[ξ, ν]             input transform, per tile and input channel
    U[ξ, ν] = (G w Gᵀ)[ξ, ν]             weight transform, per (input, output) channel pair
    M[ξ, ν] = V[ξ, ν] @ U[ξ, ν]           n² GEMMs (one torch.bmm)
    y       = Aᵀ M A                      output transform, per tile and output channel

The matrices follow from the points alone (`transforms`): Aᵀ is the Vandermonde matrix of the points, G the
Lagrange-scaled one, and Bᵀ is the unique solution of the identity that makes the three compose to a correlation.
The image is processed in bands of tile rows, so every temporary stays small (cache-resident, and below the size at
which fresh allocations page-fault), and each transform is a handful of whole-band tensor operations on strided views
(no loop over tiles). F(2, 3) multiplies 2.25x less than the direct convolution, F(4, 3) 4x less; both are exact up to
float rounding (F(4, 3) rounds a few times more than the direct sum, see tests/nn/test_winograd.py).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from stylegan.nn.derived import derived

POINTS = {2: (0.0, 1.0, -1.0), 4: (0.0, 1.0, -1.0, 2.0, -2.0)}  # finite points of F(m, 3); infinity is the last
# Output tile m of conv.py's fast path, None: off. F(4, 3) on layers of 256 channels or more took config-f 256² at 2
# threads, whole G, from 0.265 to 0.232 s/img when it was switched on (benchmarks/bench_winograd.py --generator,
# benchmarks/results/winograd_generator_2026-11-30.txt).
TILE: int | None = 4
MIN_CHANNELS = 256  # narrower layers: the direct convolution is as fast (benchmarks/bench_winograd.py)
MIN_SIZE = 32  # smaller images: U (4x the weight) costs more to read than oneDNN's packed direct convolution
BAND_BYTES = 8 << 20  # target size of one band's transformed input V (fits the caches with M beside it)


@functools.cache
def transforms(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Aᵀ [m, n], G [n, 3], Bᵀ [n, n]) in float64 for F(m, 3), n = m + 2, from the points in POINTS[m].

    Aᵀ[a, j] = p_j^a and G[j, k] = p_j^k / prod_{l != j} (p_j - p_l) for the finite points; the point at infinity
    keeps the leading coefficients (last column of Aᵀ, last row of G). Bᵀ solves
    sum_j Aᵀ[a, j] G[j, k] Bᵀ[j, t] = [t == a + k] for all a, k, t (the correlation y[a] = sum_k g[k] d[a + k]).
    """
    p = np.array(POINTS[m])
    n = m + 2
    a_t = np.zeros((m, n))
    a_t[:, :-1] = p[None, :] ** np.arange(m)[:, None]
    a_t[-1, -1] = 1.0
    g = np.zeros((n, 3))
    norms = np.array([np.prod([pj - pl for pl in p if pl != pj]) for pj in p])
    g[:-1] = p[:, None] ** np.arange(3)[None, :] / norms[:, None]
    g[-1, -1] = 1.0
    # Unknown Bᵀ[j, t]: for each t the equations over (a, k) are linear in the column Bᵀ[:, t].
    coeff = (a_t[:, None, :] * g.T[None, :, :]).reshape(m * 3, n)  # [(a, k), j]
    target = np.array([[float(t == a + k) for t in range(n)] for a in range(m) for k in range(3)])  # [(a, k), t]
    b_t, *_ = np.linalg.lstsq(coeff, target, rcond=None)
    if not np.allclose(coeff @ b_t, target, atol=1e-12):
        raise ArithmeticError(f"no Winograd input transform for F({m}, 3) at points {POINTS[m]}")
    return a_t, g, np.round(b_t, 12) + 0.0  # + 0.0: no negative zeros


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `conv3x3` should replace a 'same' 3x3 correlation of x with weight: float32 CPU inference on
    layers wide enough for the saved multiplications to outweigh the transforms."""
    return (
        TILE is not None
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and weight.shape[2:] == (3, 3)
        and min(weight.shape[:2]) >= MIN_CHANNELS
        and min(x.shape[2:]) >= MIN_SIZE
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    )


def weight_transform(w: torch.Tensor, m: int) -> torch.Tensor:
    """U [n², C_out, C_in] = G w Gᵀ for a correlation kernel w [C_out, C_in, 3, 3], computed in float64."""
    g = torch.from_numpy(transforms(m)[1])
    u = torch.einsum("xk,yl,ockl->xyoc", g, g, w.detach().double())  # [n, n, C_out, C_in]
    return u.reshape(-1, *u.shape[2:]).to(w.dtype)


def cached_weight_transform(w: torch.Tensor, m: int) -> torch.Tensor:
    """weight_transform(w, m), recomputed only when w (a parameter, usually) changes; one entry per tile size, so
    that alternating sizes do not recompute every time."""
    return derived(w, ("winograd", m), functools.partial(weight_transform, m=m))


def gemm(v: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """v [P, C_in] @ u [C_out, C_in]ᵀ (+ bias [C_out]) -> [P, C_out]. oneDNN's matmul where available: on CPUs where
    MKL's sgemm takes a narrower vector path (AVX2 on AMD) it runs about twice as fast as F.linear, with the same
    fp32 arithmetic."""
    if ONEDNN_LINEAR and v.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(v, u, bias, "none", [], "")
    return v @ u.t() if bias is None else torch.addmm(bias, v, u.t())


ONEDNN_LINEAR = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
ONEDNN_PACKED = ONEDNN_LINEAR and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")


def _packed(u: torch.Tensor, rows: int) -> list[torch.Tensor]:
    """The n² matrices of u [n², C_out, C_in] in oneDNN's packed layout for GEMMs of about `rows` rows, once per u
    (a cached transform, usually): the GEMMs then skip re-packing their weight on every call (10-20 % of them)."""
    if not ONEDNN_PACKED or u.dtype != torch.float32:
        return list(u)
    return derived(u, ("onednn", rows), lambda u: [torch.ops.mkldnn._reorder_linear_weight(m, rows) for m in u])


def _combine(terms: list[tuple[float, torch.Tensor]], out: torch.Tensor) -> None:
    """out = sum of coefficient * tensor over the (non-zero) terms, written in place into `out`."""
    (c0, t0), rest = terms[0], terms[1:]
    if rest:
        c1, t1 = rest[0]
        if c0 == 1.0:
            torch.add(t0, t1, alpha=c1, out=out)
        else:
            torch.mul(t0, c0, out=out).add_(t1, alpha=c1)
        rest = rest[1:]
    elif c0 == 1.0:
        out.copy_(t0)
    else:
        torch.mul(t0, c0, out=out)
    for c, t in rest:
        out.add_(t, alpha=c)


def _apply(matrix: np.ndarray, taps: list[torch.Tensor], outs: list[torch.Tensor], _scratch=None) -> None:
    """outs[i] = sum_j matrix[i, j] * taps[j] (one small linear map applied elementwise along an axis)."""
    for row, out in zip(matrix, outs, strict=True):
        _combine([(float(c), t) for c, t in zip(row, taps, strict=True) if c != 0.0], out)


def _input_f4(d: list[torch.Tensor], v: list[torch.Tensor], scratch: list[torch.Tensor]) -> None:
    """v = Bᵀ d for F(4, 3) in 12 tensor operations instead of 16, by pairing its rows:
    v1, v2 = (d4 - 4 d2) ± (d3 - 4 d1) and v3, v4 = (d4 - d2) ± 2 (d3 - d1); v0 and v5 stand alone."""
    even, odd, even1, odd1 = scratch
    torch.add(d[4], d[2], alpha=-4.0, out=even)
    torch.add(d[3], d[1], alpha=-4.0, out=odd)
    torch.add(even, odd, out=v[1])
    torch.sub(even, odd, out=v[2])
    torch.sub(d[4], d[2], out=even1)
    torch.sub(d[3], d[1], out=odd1)
    torch.add(even1, odd1, alpha=2.0, out=v[3])
    torch.add(even1, odd1, alpha=-2.0, out=v[4])
    torch.add(d[4], d[2], alpha=-5.0, out=v[0]).add_(d[0], alpha=4.0)
    torch.add(d[5], d[3], alpha=-5.0, out=v[5]).add_(d[1], alpha=4.0)


def _output_f4(mm: list[torch.Tensor], y: list[torch.Tensor], scratch: list[torch.Tensor]) -> None:
    """y = Aᵀ mm for F(4, 3) in 10 tensor operations instead of 14: with s = m1 + m2, t = m3 + m4 and
    the differences s', t', y0 = m0 + s + t, y1 = s' + 2 t', y2 = s + 4 t, y3 = s' + 8 t' + m5."""
    s, t, ds, dt = scratch
    torch.add(mm[1], mm[2], out=s)
    torch.add(mm[3], mm[4], out=t)
    torch.sub(mm[1], mm[2], out=ds)
    torch.sub(mm[3], mm[4], out=dt)
    torch.add(s, t, out=y[0]).add_(mm[0])
    torch.add(ds, dt, alpha=2.0, out=y[1])
    torch.add(s, t, alpha=4.0, out=y[2])
    torch.add(ds, dt, alpha=8.0, out=y[3]).add_(mm[5])


def _programs(m: int):
    """(input transform, output transform) as functions (taps, outs, scratch): the factored programs for F(4, 3)
    (tests/nn/test_winograd.py checks them against `transforms`), the matrices row by row otherwise."""
    if m == 4:
        return _input_f4, _output_f4
    a_t, _, b_t = transforms(m)
    return functools.partial(_apply, b_t), functools.partial(_apply, a_t)


def conv3x3(
    x: torch.Tensor,
    u: torch.Tensor,
    m: int,
    *,
    in_scale: torch.Tensor | None = None,
    out_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    band_bytes: int = BAND_BYTES,
) -> torch.Tensor:
    """y = F.conv2d(x * in_scale, w, padding=1) * out_scale + bias for one image, with u = weight_transform(w, m).

    Args:
        x: [1, C_in, H, W], any memory format (channels_last avoids a copy).
        u: [n², C_out, C_in] transformed weight, n = m + 2, same dtype as x.
        m: output tile size, a key of POINTS.
        in_scale: [C_in] or None; out_scale, bias: [C_out] or None (the modulation, demodulation and bias of a
            StyleGAN2 layer, so that u stays the shared weight's transform).
        band_bytes: approximate size of one band's transformed input.
    Returns:
        [1, C_out, H, W] in channels_last memory format.
    """
    _, c_in, h, w = x.shape
    tiles_x = math.ceil(w / m)
    band = max(1, min(math.ceil(h / m), band_bytes // ((m + 2) ** 2 * tiles_x * c_in * x.element_size())))
    out = torch.empty((1, h, w, u.shape[1]), dtype=x.dtype)  # [1, H, W, C_out]
    work = _Band(m, band, tiles_x, c_in, u.shape[1], x.dtype)
    src = x[0].permute(1, 2, 0)  # [H, W, C_in]
    weights = _packed(u, band * tiles_x)
    for row in range(0, math.ceil(h / m), band):
        rows = work.run(src, weights, out[0], row, in_scale)
        if out_scale is not None and bias is not None:
            torch.addcmul(bias, rows, out_scale, out=rows)
        elif out_scale is not None or bias is not None:
            rows.mul_(out_scale) if bias is None else rows.add_(bias)
    return out.permute(0, 3, 1, 2)


class _Band:
    """Buffers and steps for `band` rows of tiles; reused for every band of one convolution."""

    def __init__(self, m: int, band: int, tiles_x: int, c_in: int, c_out: int, dtype: torch.dtype):
        n = m + 2
        self.m, self.n, self.band, self.tiles_x = m, n, band, tiles_x
        self.forward, self.backward = _programs(m)
        width = m * tiles_x + 2
        new = functools.partial(torch.empty, dtype=dtype)
        self.padded = torch.zeros((m * band + 2, width, c_in), dtype=dtype)  # input rows with halo
        self.rows = new((n, band, width, c_in))  # Bᵀ applied along H
        self.v = new((n, n, band, tiles_x, c_in))
        self.cols = new((m, n, band, tiles_x, c_out))  # Aᵀ applied along H
        self.scratch = {  # the factored programs' intermediate sums, one set per pass
            "rows": [new((band, width, c_in)) for _ in range(4)],
            "v": [new((n, band, tiles_x, c_in)) for _ in range(4)],
            "cols": [new((band * tiles_x, c_out)) for _ in range(4)],
            "out": [new((m, band, tiles_x, c_out)) for _ in range(4)],
        }

    def run(self, src, weights, out, row, in_scale) -> torch.Tensor:
        """Writes output rows [m * row, m * (row + band)) (clipped to H) of out [H, W, C_out] and returns them."""
        m, n, tx = self.m, self.n, self.tiles_x
        tiles = min(self.band, (src.shape[0] - m * row + m - 1) // m)
        self._load(src, m * row, tiles, in_scale)
        span = m * (tiles - 1) + 1  # stop of a stride-m slice that yields `tiles` entries
        taps = [self.padded[j : j + span : m] for j in range(n)]  # each [tiles, W_pad, C_in]
        self.forward(taps, [r[:tiles] for r in self.rows], [t[:tiles] for t in self.scratch["rows"]])
        span_x = m * (tx - 1) + 1
        taps = [self.rows[:, :tiles, j : j + span_x : m] for j in range(n)]  # each [n, tiles, tiles_x, C_in]
        self.forward(taps, [self.v[:, i, :tiles] for i in range(n)], [t[:, :tiles] for t in self.scratch["v"]])
        products = [[gemm(self.v[i, j, :tiles].flatten(0, 1), weights[i * n + j]) for j in range(n)] for i in range(n)]
        scratch = [t[: tiles * tx] for t in self.scratch["cols"]]
        for j in range(n):  # Aᵀ along H straight from the products, column by column: nothing is stacked
            outs = [self.cols[a, j, :tiles].flatten(0, 1) for a in range(m)]
            self.backward([products[i][j] for i in range(n)], outs, scratch)
        return self._store(out, m * row, tiles)

    def _load(self, src: torch.Tensor, y0: int, tiles: int, in_scale: torch.Tensor | None) -> None:
        """padded[r, 1 + x] = src[y0 - 1 + r, x] * in_scale for the band's rows, zero outside the image."""
        h, w = src.shape[:2]
        lo, hi = max(0, y0 - 1), min(h, y0 + self.m * tiles + 1)
        inner = self.padded[lo - (y0 - 1) : hi - (y0 - 1), 1 : 1 + w]
        inner.copy_(src[lo:hi]) if in_scale is None else torch.mul(src[lo:hi], in_scale, out=inner)
        if lo == y0:  # top halo row, outside the image
            self.padded[0].zero_()
        self.padded[hi - (y0 - 1) :].zero_()  # rows below the image (the bottom halo and any partial tile)

    def _store(self, out: torch.Tensor, y0: int, tiles: int) -> torch.Tensor:
        """Aᵀ along W from cols into out[y0 + m * t + a, m * s + b] (cropped to the image); returns those rows."""
        m, n = self.m, self.n
        h, w = out.shape[:2]
        rows = min(m * tiles, h - y0)
        exact = rows == m * tiles and w == m * self.tiles_x
        if exact:
            target = out[y0 : y0 + rows].view(tiles, m, self.tiles_x, m, -1)
        else:
            target = torch.empty((tiles, m, self.tiles_x, m, out.shape[2]), dtype=out.dtype)
        taps = [self.cols[:, j, :tiles] for j in range(n)]  # each [m, tiles, tiles_x, C_out]
        outs = [target[:, :, :, b].permute(1, 0, 2, 3) for b in range(m)]
        self.backward(taps, outs, [t[:, :tiles] for t in self.scratch["out"]])
        if not exact:
            out[y0 : y0 + rows] = target.flatten(2, 3).flatten(0, 1)[:rows, :w]
        return out[y0 : y0 + rows]

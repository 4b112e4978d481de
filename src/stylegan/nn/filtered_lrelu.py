"""Filtered leaky ReLU: the alias-free non-linearity of StyleGAN3 (Karras et al. 2021, sec. 3.2).

A point-wise non-linearity creates frequencies above the signal's band limit. Applied on a grid `up` times finer
(after an ideal-as-possible up-sampling) and followed by a low-pass filter and decimation, its output stays
band-limited. For x [N, C, H, W]:

    y = down_d( fd * clamp( gain * lrelu( fu * up_u( pad( x + b ) ) ) ) )

where up_u inserts u - 1 zeros between samples, the padding (given in the up-sampled frame, negative = crop) fixes
the output geometry, `*` is convolution with a FIR filter (fu carries the DC gain u² of up-sampling), and down_d
keeps every d-th sample. Filters are 1-D (separable, applied along x and y) or 2-D (e.g. radially symmetric).

`filtered_lrelu` computes the up-sampling as a transposed convolution (only the non-zero taps are multiplied, and
the up-sampled tensor is written once), applies the non-linearity in place when autograd is off, and the
down-sampling as a strided convolution (only kept samples are computed). On the CPU a separable up-sampling filter
runs as one 2-D pass with its outer product rather than two 1-D passes: oneDNN's depthwise convolutions cost about
as much per output with 36 taps as with 6, so one pass that writes the result once beats two (10-30 % per layer at
256²). The down-sampling filter stays separable: as a 2-D pass it is a little faster too, but its sums round far
enough from NVIDIA's separable ones to use up most of the parity budget on the clamp fixture (4.9e-6 of 5e-6 x
max|img|, against 3.8e-6); for the same reason the 2-D pass runs only where the clamp is provably inactive.
`filtered_lrelu_reference` is the plain zero-insertion form through `upfirdn2d`, the oracle in tests.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from stylegan.nn.upfirdn2d import Padding, parse_padding, upfirdn2d

_OUTER_ON_CPU = True  # separable up-sampling filters as one 2-D pass on the CPU (module docstring)


def _add_bias(x: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return x if b is None else x + b.to(x.dtype).reshape(1, -1, 1, 1)


def filtered_lrelu_reference(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    gain: float = 2**0.5,
    slope: float = 0.2,
    clamp: float | None = None,
) -> torch.Tensor:
    """The definition, step by step (zero insertion, full-rate filtering): slow, for tests."""
    x = upfirdn2d(_add_bias(x, b), fu, up=up, padding=padding, gain=up * up)
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down)


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    gain: float = 2**0.5,
    slope: float = 0.2,
    clamp: float | None = None,
) -> torch.Tensor:
    """Bias, up-sample, leaky ReLU, gain, clamp, down-sample (see the module docstring).

    Args:
        x: [N, C, H, W].
        fu: up-sampling filter, [taps] (separable) or [taps, taps]; None = no filter (up must be 1).
        fd: down-sampling filter, same forms.
        b: [C] bias added before up-sampling, or None.
        up, down: integer factors.
        padding: (x0, x1, y0, y1) or int, in the up-sampled frame; negative values crop.
        gain: multiplies the activation (sqrt(2) keeps the variance of a leaky ReLU).
        slope: negative slope of the leaky ReLU (1 = linear).
        clamp: clamp the activation to [-clamp, clamp] after the gain; None = no clamping.
    Returns:
        [N, C, H', W'] with W' = (W * up + x0 + x1 - taps_u + 1 - taps_d) // down + 1 (likewise H').
    """
    if (fu is None and up != 1) or (fd is None and down != 1):
        raise ValueError("filtered_lrelu: up/down-sampling needs a filter")
    if clamp is not None and _cannot_reach(x, b, fu, up, gain, slope, clamp):
        clamp = None  # provably a no-op: saves a pass over the largest tensor
    pads = parse_padding(padding)
    rows_up = x.shape[2] * up + pads[2] + pads[3] - (0 if fu is None else fu.shape[0])
    if _fast_path(x, fu, fd, b) and _bands_pay(rows_up):
        return _banded(x, fu, fd, b, up, down, pads, gain, slope, clamp)
    if _OUTER_ON_CPU and x.device.type == "cpu" and clamp is None:
        fu = _outer(fu)
    if fu is not None and gain > 0:  # gain * lrelu(y) = lrelu(gain * y): fold the gain into the linear up-sampling
        fu, gain = fu * (math.sqrt(gain) if fu.ndim == 1 else gain), 1.0
    x = _add_bias(x, b)
    x = _upsample(x, fu, up, parse_padding(padding))
    return _downsample(_activate(x, gain, slope, clamp), fd, down)


def _cannot_reach(x: torch.Tensor, b, fu, up: int, gain: float, slope: float, clamp: float) -> bool:
    """True when |activation| <= clamp is guaranteed: max|x| + max|b| times the filter's L1 gain bounds the
    up-sampled signal.

    Only on the CPU, where reading max|x| (a quarter of the up-sampled size or less) costs no device sync.
    """
    if x.device.type != "cpu" or x.numel() == 0:
        return False
    l1 = 1.0 if fu is None else fu.abs().sum().item() * (up if fu.ndim == 1 else up * up)
    # A full reduction is several times faster over the tensor's memory order than over a strided (NCHW) view of
    # channels_last memory.
    low, high = torch.aminmax(x.permute(0, 2, 3, 1) if x.is_contiguous(memory_format=torch.channels_last) else x)
    peak = max(-low.item(), high.item()) + (0.0 if b is None else b.abs().max().item())
    bound = peak * (l1 * l1 if fu is not None and fu.ndim == 1 else l1)
    return bound * abs(gain) * max(1.0, abs(slope)) <= clamp


def _activate(x: torch.Tensor, gain: float, slope: float, clamp: float | None) -> torch.Tensor:
    """gain * lrelu(x), clamped; in place when autograd is off (x is a fresh tensor then)."""
    if not torch.is_grad_enabled():
        return _activate_in_place(x, gain, slope, clamp)
    x = F.leaky_relu(x, slope) * gain if slope != 1 else x * gain
    return x if clamp is None else x.clamp(-clamp, clamp)


def _outer(f: torch.Tensor | None) -> torch.Tensor | None:
    """The 2-D filter f ⊗ f [T, T] (rows along y, columns along x) of a separable filter f [T], each product
    rounded once; other filters as they are."""
    if f is None or f.ndim != 1:
        return f
    return (f.double()[:, None] * f.double()[None, :]).to(f.dtype)


def _activate_in_place(x: torch.Tensor, gain: float, slope: float, clamp: float | None) -> torch.Tensor:
    if slope != 1:
        F.leaky_relu_(x, slope)
    if gain != 1:
        x.mul_(gain)
    return x if clamp is None else x.clamp_(-clamp, clamp)


def _depthwise(f: torch.Tensor, channels: int, axis: str, dtype: torch.dtype) -> torch.Tensor:
    """A 1-D filter as a depthwise conv weight [C, 1, 1, T] (axis 'x') or [C, 1, T, 1] (axis 'y')."""
    shape = (1, 1, 1, -1) if axis == "x" else (1, 1, -1, 1)
    return f.to(dtype).reshape(shape).expand(channels, *shape[1:])


def _upsample(x: torch.Tensor, f: torch.Tensor | None, up: int, pads: tuple[int, int, int, int]) -> torch.Tensor:
    """Zero-insertion by `up`, padding and convolution with f (DC gain up per axis), as transposed convolutions."""
    px0, px1, py0, py1 = pads
    if f is None:
        return F.pad(x, [px0, px1, py0, py1]) if any(pads) else x
    c, taps = x.shape[1], f.shape[-1]  # a transposed convolution convolves: no flip, unlike _downsample
    if f.ndim == 1:  # along x, then along y: the intermediate is `up` times smaller than the result
        x = _transposed(x, _depthwise(f * up, c, "x", x.dtype), ((1, 0, 0), (up, px0, px1)))
        return _transposed(x, _depthwise(f * up, c, "y", x.dtype), ((up, py0, py1), (1, 0, 0)))
    weight = (f * up * up).to(x.dtype)[None, None].expand(c, 1, taps, taps)
    return _transposed(x, weight, ((up, py0, py1), (up, px0, px1)))


def _crops(size: int, stride: int, pad0: int, pad1: int, taps: int) -> tuple[int, int]:
    """Samples to drop at the start and end of a transposed convolution's output along one axis.

    With zero insertion, padding pad0 and a (flipped) filter of `taps` taps, output j sums padded samples
    j..j+taps-1; the transposed convolution holds the same sum at j + taps - 1 - pad0. Negative = zero padding.
    """
    full = (size - 1) * stride + taps
    out = size * stride + pad0 + pad1 - taps + 1
    start = taps - 1 - pad0
    return start, full - start - out


def _transposed(x: torch.Tensor, weight: torch.Tensor, axes) -> torch.Tensor:
    """Depthwise conv_transpose2d; axes = ((stride, pad0, pad1) along y, same along x)."""
    (sy, py0, py1), (sx, px0, px1) = axes
    (cy0, cy1), (cx0, cx1) = (
        _crops(x.shape[2], sy, py0, py1, weight.shape[2]),
        _crops(x.shape[3], sx, px0, px1, weight.shape[3]),
    )
    sym = (max(min(cy0, cy1), 0), max(min(cx0, cx1), 0))  # the part the convolution can crop by itself
    y = F.conv_transpose2d(x, weight, stride=(sy, sx), padding=sym, groups=x.shape[1])
    rest = [cx0 - sym[1], cx1 - sym[1], cy0 - sym[0], cy1 - sym[0]]
    return F.pad(y, [-r for r in rest]) if any(rest) else y


def _downsample(x: torch.Tensor, f: torch.Tensor | None, down: int) -> torch.Tensor:
    """Convolution with f (valid part only), keeping every `down`-th sample: strided depthwise convolutions."""
    if f is None:
        return x
    c = x.shape[1]
    f = f.flip(dims=tuple(range(f.ndim)))  # correlate with the flipped filter: a true convolution
    if f.ndim == 1:
        x = F.conv2d(x, _depthwise(f, c, "x", x.dtype), stride=(1, down), groups=c)
        return F.conv2d(x, _depthwise(f, c, "y", x.dtype), stride=(down, 1), groups=c)
    weight = f.to(x.dtype)[None, None].expand(c, 1, *f.shape)
    return F.conv2d(x, weight, stride=down, groups=c)


# ----------------------------------------------------------------------------------------------------------------
# CPU inference: band matrices
#
# Along one axis, zero insertion, padding, filtering and decimation form one linear map, a band matrix: output o
# reads input j with tap a = o * down + taps - 1 - pad0 - j * up (zero unless 0 <= a < taps). With the axis
# outermost in memory, a pass is a matrix product over all other dimensions at once. Cut into blocks of `rows`
# outputs (a multiple of `up`), every block has the same weights and reads `width` consecutive inputs, the next
# block `step` inputs further: one batched product over overlapping windows (a strided view, no copy) computes
# the pass, a few times the minimal multiply-adds but at matrix-product speed. The 2-D pipeline runs over stripes
# of up-sampled rows so that the up-sampled signal is only ever held a stripe at a time.

_STRIPE = 16  # up-sampled rows per stripe
_ROWS_UP, _ROWS_DOWN = 32, 16  # outputs per band block when up-sampling / down-sampling along x and y
# Each stripe costs ~9 small parallel ops, and on a loaded 2-core machine every op waits for a time slice: beyond
# this many stripes (1024² layers) the convolution path's few large ops measured faster (3x at SG3-T 1024²).
_MAX_STRIPES = 40
# Fewest up-sampled rows for which the band path pays, by thread count (absent: never). Measured per SG3 layer at
# 256², alternating with the convolution path on the shared 2-core machine (load 4-5): with one thread the bands
# won a whole SG3-T forward by 10 %; with two they won 10-25 % on layers of 300+ rows and lost on smaller ones
# (9 ms against 3 ms at 38² x 512), where the few large convolutions' parallel speed-up counts more.
_BAND_MIN_ROWS = {1: 0, 2: 256}


def _bands_pay(rows_up: int) -> bool:
    """Whether the band path is the faster one for a layer of rows_up up-sampled rows at this thread count."""
    least = _BAND_MIN_ROWS.get(torch.get_num_threads())
    return least is not None and least <= rows_up < _MAX_STRIPES * _STRIPE


def _tap_matrix(f: torch.Tensor, out_idx: torch.Tensor, in_idx: torch.Tensor, up: int, down: int, pad0: int):
    """[len(out_idx), len(in_idx)] float64 coefficients of the resampling map (the header's formula)."""
    taps = f.shape[0]
    a = out_idx[:, None] * down + (taps - 1 - pad0) - in_idx[None, :] * up
    return torch.where((a >= 0) & (a < taps), f.double()[a.clamp(0, taps - 1)], 0.0)


class _Band(NamedTuple):
    """One axis' resampling map as `blocks` equal band blocks (see above)."""

    weight: torch.Tensor  # [blocks, rows, width], the block repeated for bmm
    step: int  # input offset between consecutive blocks
    start: int  # first input read by block 0 (negative: a zero margin before the data)
    margins: tuple[int, int]  # zero rows needed before / after the in_len data rows

    @property
    def out_rows(self) -> int:
        """Rows written: a whole number of blocks, at least the output length."""
        return self.weight.shape[0] * self.weight.shape[1]


@functools.lru_cache(maxsize=256)
def _band(taps: tuple[float, ...], in_len: int, up: int, down: int, pad0: int, out_len: int, rows: int, dtype):
    """The band blocks of the map from in_len inputs to out_len outputs (rows a multiple of up)."""
    f, span = torch.tensor(taps, dtype=torch.float64), len(taps) - 1
    start = -(pad0 // up)
    width = ((rows - 1) * down + span - pad0) // up - start + 1
    block = _tap_matrix(f, torch.arange(rows), torch.arange(start, start + width), up, down, pad0)
    blocks, step = -(-out_len // rows), rows * down // up
    margins = (max(0, -start), max(0, (blocks - 1) * step + start + width - in_len))
    return _Band(block.to(dtype).expand(blocks, -1, -1).contiguous(), step, start, margins)


def _apply_band(band: _Band, src: torch.Tensor, out: torch.Tensor) -> None:
    """out[:band.out_rows] = the band map of src along dim 0; src [margin + in_len + margin, ...] with zero margins,
    out contiguous with at least out_rows rows of the same trailing shape."""
    row = src[0].numel()
    blocks, rows, width = band.weight.shape
    offset = src.storage_offset() + (band.margins[0] + band.start) * row
    windows = src.as_strided((blocks, width, row), (band.step * row, row, 1), offset)
    torch.bmm(band.weight, windows, out=out[: blocks * rows].view(blocks, rows, row))


def _fast_path(x: torch.Tensor, fu, fd, b) -> bool:
    """The band-matrix pipeline covers CPU inference with 1-D (separable) filters."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not (torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad)))
        and fu is not None
        and fu.ndim == 1
        and fd is not None
        and fd.ndim == 1
        and x.shape[0] * x.shape[1] > 0
    )


def _banded(x, fu, fd, b, up: int, down: int, pads, gain: float, slope: float, clamp: float | None):
    """filtered_lrelu by band-matrix products over stripes (CPU, no autograd, 1-D filters). Returns [N, C, H', W']
    channels_last.

    The bias enters after the y pass as (row sums of the map) x b. With a clamp the gain multiplies the activation
    as in the definition (folded into a filter, it would move the rounding of clamped outputs away from NVIDIA's);
    without one it goes into the (linear) down-sampling along x.
    """
    n, c, h, w = x.shape
    px0, px1, py0, py1 = pads
    dt = x.dtype
    fu_taps, fd_taps = tuple((fu.double() * up).tolist()), tuple(fd.double().tolist())
    hu, wu = h * up + py0 + py1 - len(fu_taps) + 1, w * up + px0 + px1 - len(fu_taps) + 1
    hd, wd = (hu - len(fd_taps)) // down + 1, (wu - len(fd_taps)) // down + 1
    stripes = -(-hu // _STRIPE)
    late_gain = gain if clamp is not None else 1.0
    rows_y, row_sums, spans = _stripe_rows(fu_taps, h, up, py0, stripes, dt)
    band_x = _band(fu_taps, w, up, 1, px0, wu, _ROWS_UP, dt)
    down_x = _band(tuple(t * (gain / late_gain) for t in fd_taps), wu, 1, down, 0, wd, _ROWS_DOWN, dt)
    down_y = _band(fd_taps, hu, 1, down, 0, hd, _ROWS_DOWN, dt)
    xs = x.permute(0, 2, 3, 1)  # [N, H, W, C]: a view when x is channels_last
    xs = xs if xs.is_contiguous() else xs.contiguous()
    across = _zero_margins(x.new_empty(sum(band_x.margins) + w, _STRIPE, c), band_x.margins)  # x outermost
    upsampled = x.new_zeros(max(band_x.out_rows, wu + down_x.margins[1]), _STRIPE, c)
    decimated = x.new_empty(down_x.out_rows, _STRIPE, c)
    grid = x.new_empty(n, stripes * _STRIPE + down_y.margins[1], wd, c)  # y outermost, x decimated
    grid[:, stripes * _STRIPE :].zero_()
    out = x.new_empty(n, down_y.out_rows, wd, c)
    bias = None if b is None else b.to(dt)
    for i in range(n):
        for s in range(stripes):
            _stripe_up(xs[i], rows_y[s], row_sums[s], spans[s], bias, band_x, across, upsampled)
            _activate_in_place(upsampled, late_gain, slope, clamp)  # the zero margins stay zero
            _apply_band(down_x, upsampled, decimated)
            grid[i, s * _STRIPE : (s + 1) * _STRIPE].copy_(decimated[:wd].transpose(0, 1))
        _apply_band(down_y, grid[i], out[i])
    return out[:, :hd].permute(0, 3, 1, 2)


def _stripe_up(xs, rows_y, row_sums, span, bias, band_x, across, upsampled) -> None:
    """One stripe of the up-sampled signal: along y (rows_y [S, hi - lo] times xs[lo:hi], xs [H, W, C]), then
    along x into `upsampled` [>= W_up, S, C] (x outermost); `across` [margins + W, S, C] is scratch with zero
    margins."""
    h, w, c = xs.shape
    lo, hi = span
    stripe = torch.mm(rows_y, xs[lo:hi].reshape(hi - lo, w * c)).view(-1, w, c)
    if bias is not None:
        stripe.add_(row_sums[:, None, None] * bias)
    left = band_x.margins[0]
    across[left : left + w].copy_(stripe.transpose(0, 1))
    _apply_band(band_x, across, upsampled)


def _zero_margins(buffer: torch.Tensor, margins: tuple[int, int]) -> torch.Tensor:
    buffer[: margins[0]].zero_()
    buffer[buffer.shape[0] - margins[1] :].zero_()
    return buffer


@functools.lru_cache(maxsize=256)
def _stripe_rows(taps: tuple[float, ...], size: int, up: int, pad0: int, stripes: int, dtype):
    """Per stripe of _STRIPE up-sampled rows: the map's rows restricted to the inputs they read [S, hi - lo], their
    row sums [S] (the response to a constant 1) and (lo, hi)."""
    rows = _tap_matrix(
        torch.tensor(taps, dtype=torch.float64), torch.arange(stripes * _STRIPE), torch.arange(size), up, 1, pad0
    )
    blocks, sums, spans = [], [], []
    for s in range(stripes):
        block = rows[s * _STRIPE : (s + 1) * _STRIPE]
        used = (block != 0).any(0).nonzero()
        lo, hi = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
        blocks.append(block[:, lo:hi].to(dtype).contiguous())
        sums.append(block.sum(1).to(dtype))
        spans.append((lo, hi))
    return tuple(blocks), tuple(sums), tuple(spans)

"""FIR resampling of images: `upfirdn2d` and its three common uses (filter, upsample, downsample).

Definition. Along each image axis independently, `upfirdn2d(x, f, up, down, padding=(p0, p1))`:
  1. upsamples by inserting `up - 1` zeros after every sample (length L -> L * up);
  2. pads p0 zeros before and p1 after (a negative amount crops);
  3. convolves with f (a true convolution; `flip_filter=True` correlates instead), keeping the outputs where f lies
     entirely inside the padded signal;
  4. keeps every `down`-th sample, starting with the first.
The output length is (L * up + p0 + p1 - taps) // down + 1. A 2-D filter [fh, fw] is applied as such; a 1-D filter
is applied along W then along H (its outer product with itself, at a fraction of the cost).

Formulation. Nothing materialises the zero-filled signal: with k the convolution kernel, steps 1-3 are the
transposed convolution t = conv_transpose(x, k, stride=up), of length (L - 1) * up + taps, read from offset
taps - 1 - p0 (derivation: output o sums x[i] * k[o + taps - 1 - p0 - i * up]); step 4 is a slice, or the stride of
an ordinary convolution when up == 1. On the CPU, without autograd, the binomial filter [1, 3, 3, 1] (StyleGAN's
only filter) takes exact shortcuts: three 2x2 box averages (its factorisation [1, 1] * [1, 1] * [1, 1]), and for 2x
upsampling bilinear interpolation (whose phases are [1, 3] / 4 and [3, 1] / 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from stylegan.nn import workspace

Padding = int | Sequence[int]

_BINOMIAL4 = torch.tensor([1.0, 3.0, 3.0, 1.0])


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    """(x, y) from an int or an (x, y) pair."""
    if isinstance(value, int):
        return value, value
    vx, vy = value
    return int(vx), int(vy)


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """(x_before, x_after, y_before, y_after) from an int, an (x, y) pair or all four."""
    if isinstance(padding, int):
        return (padding,) * 4
    values = tuple(int(p) for p in padding)
    if len(values) == 4:
        return values  # type: ignore[return-value]
    if len(values) == 2:
        return values[0], values[0], values[1], values[1]
    raise ValueError(f"padding must have 1, 2 or 4 entries, got {list(values)}")


def setup_filter(
    f: Sequence[float] | torch.Tensor | None,
    *,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1.0,
    separable: bool | None = None,
) -> torch.Tensor:
    """A float32 FIR filter: [taps] when separable, else [fh, fw].

    Args:
        f: taps (1-D, expanded to their outer product unless separable) or a 2-D filter; None: the identity.
        normalize: scale to unit sum.
        flip_filter: reverse every axis.
        gain: overall gain of the 2-D filter (a separable filter carries gain ** 0.5 per axis).
        separable: keep a 1-D filter 1-D; None: only when it has 8 or more taps.
    """
    taps = torch.atleast_1d(torch.as_tensor(1.0 if f is None else f, dtype=torch.float32))
    if taps.ndim > 2:
        raise ValueError(f"a filter has 1 or 2 dimensions, got shape {list(taps.shape)}")
    keep_1d = taps.ndim == 1 and (taps.numel() >= 8 if separable is None else separable)
    if separable and taps.ndim == 2:
        raise ValueError("only a 1-D filter can be separable")
    kernel = taps if keep_1d or taps.ndim == 2 else taps[:, None] * taps[None, :]
    if normalize:
        kernel = kernel / kernel.sum()
    if flip_filter:
        kernel = kernel.flip(tuple(range(kernel.ndim)))
    return kernel * gain ** (0.5 * kernel.ndim)


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(fw, fh): the filter's extent along W and H."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter, downsample: see the module docstring.

    Args:
        x: [N, C, H, W].
        f: [fh, fw] or separable [taps] (from `setup_filter`), or None for a single unit tap.
        up, down: int, or (x, y) factors.
        padding: int, (x, y) or (x0, x1, y0, y1), in the upsampled frame; negative values crop.
        flip_filter: correlate with f instead of convolving.
        gain: scales the filter.
    Returns:
        [N, C, (H * up_y + py0 + py1 - fh) // down_y + 1, (W * up_x + px0 + px1 - fw) // down_x + 1].
    """
    (ux, uy), (dx, dy) = _pair(up), _pair(down)
    if min(ux, uy, dx, dy) < 1:
        raise ValueError(f"up and down must be positive, got up={up}, down={down}")
    px0, px1, py0, py1 = parse_padding(padding)
    k = torch.ones([1, 1]) if f is None else f
    k = k.to(device=x.device, dtype=x.dtype)
    if flip_filter:  # correlating with f is convolving with f reversed
        k = k.flip(tuple(range(k.ndim)))
    if k.ndim == 2:
        return _upfirdn(x, k * gain, _Axis(uy, dy, py0, py1), _Axis(ux, dx, px0, px1))
    x = _upfirdn(x, k[None, :] * gain, _Axis(1, 1, 0, 0), _Axis(ux, dx, px0, px1))
    return _upfirdn(x, k[:, None], _Axis(uy, dy, py0, py1), _Axis(1, 1, 0, 0))


class _Axis(NamedTuple):
    """Resampling along one axis: factors and padding (before, after) in the upsampled frame."""

    up: int
    down: int
    before: int
    after: int


def _upfirdn(x: torch.Tensor, k: torch.Tensor, ay: _Axis, ax: _Axis) -> torch.Tensor:
    """upfirdn2d with a convolution kernel k [kh, kw] already in x's dtype, scaled and oriented."""
    binomial = binomial_gain(k, x)
    if binomial is not None and ay.up == ax.up == 1:
        return _box3(x, ay, ax, binomial)
    if binomial is not None and ay == ax == _Axis(2, 1, 2, 1):
        return _bilinear2x(x, binomial)
    depthwise = k.expand(x.shape[1], 1, *k.shape)  # [C, 1, kh, kw]
    if ay.up == ax.up == 1:
        x, conv_pad = _split_padding(x, ay, ax)
        return F.conv2d(x, depthwise.flip([2, 3]), stride=(ay.down, ax.down), padding=conv_pad, groups=x.shape[1])
    return _zero_insert_filter(x, depthwise, ay, ax)


def _zero_insert_filter(x: torch.Tensor, k: torch.Tensor, ay: _Axis, ax: _Axis) -> torch.Tensor:
    """Steps 1-4 with up > 1 as a depthwise transposed convolution with the convolution kernel k [C, 1, kh, kw]."""
    trims, fixes = [], []
    for axis, size, taps in ((ay, x.shape[2], k.shape[2]), (ax, x.shape[3], k.shape[3])):
        full = (size - 1) * axis.up + taps  # transposed-convolution length without padding
        first = taps - 1 - axis.before  # where output sample 0 sits in it
        stop = first + (size * axis.up + axis.before + axis.after - taps) // axis.down * axis.down + 1
        trim = max(0, min(first, full - stop))  # conv_transpose2d's own (symmetric) cropping
        trims.append(trim)
        fixes.append((trim - first, stop - full + trim))  # what F.pad still adds (or crops, when negative)
    y = F.conv_transpose2d(x, k, stride=(ay.up, ax.up), padding=trims, groups=x.shape[1])
    (y0, y1), (x0, x1) = fixes
    if y0 or y1 or x0 or x1:
        y = F.pad(y, [x0, x1, y0, y1])
    return y if ay.down == ax.down == 1 else y[:, :, :: ay.down, :: ax.down]


def _split_padding(x: torch.Tensor, ay: _Axis, ax: _Axis) -> tuple[torch.Tensor, tuple[int, int]]:
    """Applies the part of the padding that a convolution's symmetric zero padding cannot; returns x and (py, px)."""
    sy, sx = max(0, min(ay.before, ay.after)), max(0, min(ax.before, ax.after))
    rest = [ax.before - sx, ax.after - sx, ay.before - sy, ay.after - sy]
    return (F.pad(x, rest) if any(rest) else x), (sy, sx)


def binomial_gain(f: torch.Tensor | None, x: torch.Tensor) -> float | None:
    """s when the 2-D filter f == s * outer(b, b) / 64 with b = [1, 3, 3, 1] and x is a CPU tensor that needs no
    gradient; else None.

    The test reads 16 numbers, so it is made only where that costs nothing (no device sync) and where the
    shortcuts apply (no autograd graph wanted). b is symmetric: flipping does not matter.
    """
    if f is None or f.shape != (4, 4) or x.device.type != "cpu" or not no_grad_needed(x):
        return None
    gain = float(f.sum())
    expected = torch.outer(_BINOMIAL4, _BINOMIAL4).to(device=f.device, dtype=f.dtype) * (gain / 64)
    return gain if torch.equal(f, expected) else None


def _box3(x: torch.Tensor, ay: _Axis, ax: _Axis, scale: float) -> torch.Tensor:
    """Filtering with scale * outer(b, b) / 64 as three 2x2 box averages ([1, 3, 3, 1] = [1, 1] * [1, 1] * [1, 1]).

    The third average also decimates: a 2x2 pool of stride d keeps exactly the samples 0, d, 2d, ... of the
    valid output.
    """
    pad_in_pool = (ay.before, ay.after, ax.before, ax.after) == (1, 1, 1, 1)
    if not pad_in_pool:
        x = F.pad(x, [ax.before, ax.after, ay.before, ay.after])
    x = F.avg_pool2d(x, 2, stride=1, padding=int(pad_in_pool))  # the padded zeros count: always / 4
    x = F.avg_pool2d(x, 2, stride=1)
    x = F.avg_pool2d(x, 2, stride=(ay.down, ax.down))
    return x if scale == 1.0 else x.mul_(scale)


def binomial_filter_(x: torch.Tensor, pads: Sequence[int]) -> torch.Tensor | None:
    """Valid correlation of x, padded by pads = (x0, x1, y0, y1) in {(0, 0), (1, 1)} per axis, with the
    unnormalised binomial outer([1, 3, 3, 1], [1, 3, 3, 1]) (sum 64); None where this form does not apply.

    Six passes of [1, 1] sums (three per axis) that alternate between x's memory, which is consumed, and one
    scratch buffer: no other large tensor is allocated (on the CPU a fresh 100 MB tensor costs more in page faults
    than the sums themselves). The result is a contiguous view of x's memory. Gradient-free use only.
    """
    if any(p not in (0, 1) for p in pads) or pads[0] != pads[1] or pads[2] != pads[3] or not no_grad_needed(x):
        return None
    n, c, h, w = x.shape
    nhwc = x.is_contiguous(memory_format=torch.channels_last)
    if not (nhwc or x.is_contiguous()):
        return None
    passes = [(1, pads[0]), (1, 0), (1, 0), (0, pads[2]), (0, 0), (0, 0)]  # (axis of [h, w], starts "full")
    shapes = [[h, w]]
    for axis, full in passes:  # a full sum is one sample longer, a valid one one shorter
        shapes.append([size + (1 if full else -1) * (i == axis) for i, size in enumerate(shapes[-1])])
    if min(min(shape) for shape in shapes) < 1 or any(hh * ww > h * w for hh, ww in shapes[2::2]):
        return None  # an even pass would not fit into x's memory
    memories = [x, workspace.empty((n * c * max(hh * ww for hh, ww in shapes[1::2]),), x.dtype, x.device)]
    for i, (axis, full) in enumerate(passes):
        src = _as_image(memories[i % 2], n, c, shapes[i], nhwc)
        _pair_sum(src, _as_image(memories[1 - i % 2], n, c, shapes[i + 1], nhwc), 2 + axis, full=bool(full))
    return _as_image(memories[0], n, c, shapes[-1], nhwc)


def no_grad_needed(x: torch.Tensor) -> bool:
    return not (torch.is_grad_enabled() and x.requires_grad)


def _as_image(memory: torch.Tensor, n: int, c: int, shape: list[int], nhwc: bool) -> torch.Tensor:
    """A contiguous [n, c, *shape] view at the start of memory (NHWC or NCHW order)."""
    h, w = shape
    flat = memory.permute(0, 2, 3, 1) if memory.ndim == 4 and nhwc else memory
    flat = flat.reshape(-1)[: n * c * h * w]
    if nhwc:
        return flat.view(n, h, w, c).permute(0, 3, 1, 2)
    return flat.view(n, c, h, w)


def _pair_sum(src: torch.Tensor, out: torch.Tensor, dim: int, full: bool) -> None:
    """out = src[i] + src[i + 1] along dim; `full` also keeps the two edge samples (zero beyond them)."""
    m = src.shape[dim]
    inner = out.narrow(dim, 1, m - 1) if full else out
    torch.add(src.narrow(dim, 0, m - 1), src.narrow(dim, 1, m - 1), out=inner)
    if full:
        out.narrow(dim, 0, 1).copy_(src.narrow(dim, 0, 1))
        out.narrow(dim, m, 1).copy_(src.narrow(dim, m - 1, 1))


def _bilinear2x(x: torch.Tensor, scale: float) -> torch.Tensor:
    """2x upsampling with scale * outer(b, b) / 64 and padding (2, 1): the 4 output phases weight the two nearest
    inputs by [1, 3] / 4 and [3, 1] / 4 per axis, i.e. bilinear interpolation (half-pixel centres) for scale 4.

    Bilinear interpolation repeats the edge sample where the definition sees a zero: the first and last output rows
    and columns read 3/4 of an edge sample, so they are scaled by 3/4 afterwards.
    """
    y = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    for dim in (2, 3):
        y.narrow(dim, 0, 1).mul_(0.75)
        y.narrow(dim, y.shape[dim] - 1, 1).mul_(0.75)
    return y if scale == 4.0 else y.mul_(scale / 4)


def _resampling_pads(taps: int, up: int, down: int) -> tuple[int, int]:
    """(before, after) padding that makes the upfirdn output exactly up (or 1 / down) times the input size.

    The output length L * up + before + after - taps + 1 must be L * up, so before + after = taps - 1; when
    downsampling, (L + before + after - taps) // down + 1 = L / down gives before + after = taps - down. The odd
    sample goes before.
    """
    total = taps - 1 if down == 1 else taps - down
    after = (taps - up) // 2 if up > 1 else total // 2
    return total - after, after


def centred_padding(padding: Padding, f: torch.Tensor | None, up: int = 1, down: int = 1) -> list[int]:
    """`padding` plus the padding that keeps f centred and the size exactly up (or 1 / down) times: [x0, x1, y0, y1]."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    (ax0, ax1), (ay0, ay1) = _resampling_pads(fw, up, down), _resampling_pads(fh, up, down)
    return [px0 + ax0, px1 + ax1, py0 + ay0, py1 + ay1]


def pad_for_conv(x: torch.Tensor, padding: Padding) -> tuple[torch.Tensor, tuple[int, int]]:
    """Splits padding into what F.pad must apply to x (asymmetric or negative parts) and what a convolution's own
    symmetric zero padding can do. Returns (x, (py, px))."""
    px0, px1, py0, py1 = parse_padding(padding)
    return _split_padding(x, _Axis(1, 1, py0, py1), _Axis(1, 1, px0, px1))


def filter2d(
    x: torch.Tensor, f: torch.Tensor, padding: Padding = 0, flip_filter: bool = False, gain: float = 1.0
) -> torch.Tensor:
    """FIR filtering that keeps the size of x ([N, C, H, W] -> same, grown by any extra padding)."""
    return upfirdn2d(x, f, padding=centred_padding(padding, f), flip_filter=flip_filter, gain=gain)


def upsample2d(
    x: torch.Tensor, f: torch.Tensor, up: int = 2, padding: Padding = 0, flip_filter: bool = False, gain: float = 1.0
) -> torch.Tensor:
    """Upsampling by `up` ([N, C, H, W] -> [N, C, H * up, W * up]); the gain up² keeps the mean level."""
    pads = centred_padding(padding, f, up=up)
    return upfirdn2d(x, f, up=up, padding=pads, flip_filter=flip_filter, gain=gain * up * up)


def downsample2d(
    x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: Padding = 0, flip_filter: bool = False, gain: float = 1.0
) -> torch.Tensor:
    """Downsampling by `down` ([N, C, H, W] -> [N, C, H / down, W / down])."""
    pads = centred_padding(padding, f, down=down)
    return upfirdn2d(x, f, down=down, padding=pads, flip_filter=flip_filter, gain=gain)

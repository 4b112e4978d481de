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
down-sampling as a strided convolution (only kept samples are computed). `filtered_lrelu_reference` is the plain
zero-insertion form through `upfirdn2d`, the oracle in tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from stylegan.nn.upfirdn2d import Padding, parse_padding, upfirdn2d


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
    x = _add_bias(x, b)
    if fu is not None and gain > 0:  # gain * lrelu(y) = lrelu(gain * y): fold the gain into the linear up-sampling
        fu, gain = fu * (math.sqrt(gain) if fu.ndim == 1 else gain), 1.0
    if clamp is not None and _cannot_reach(x, fu, up, gain, slope, clamp):
        clamp = None  # provably a no-op: saves a pass over the largest tensor
    x = _upsample(x, fu, up, parse_padding(padding))
    return _downsample(_activate(x, gain, slope, clamp), fd, down)


def _cannot_reach(x: torch.Tensor, fu, up: int, gain: float, slope: float, clamp: float) -> bool:
    """True when |activation| <= clamp is guaranteed: max|x| times the filter's L1 gain bounds the up-sampled signal.

    Only on the CPU, where reading max|x| (a quarter of the up-sampled size or less) costs no device sync.
    """
    if x.device.type != "cpu" or x.numel() == 0:
        return False
    l1 = 1.0 if fu is None else fu.abs().sum().item() * (up if fu.ndim == 1 else up * up)
    bound = x.abs().max().item() * (l1 * l1 if fu is not None and fu.ndim == 1 else l1)
    return bound * abs(gain) * max(1.0, abs(slope)) <= clamp


def _activate(x: torch.Tensor, gain: float, slope: float, clamp: float | None) -> torch.Tensor:
    """gain * lrelu(x), clamped; in place when autograd is off (x is a fresh tensor then)."""
    if not torch.is_grad_enabled():
        if slope != 1:
            F.leaky_relu_(x, slope)
        if gain != 1:
            x.mul_(gain)
        return x if clamp is None else x.clamp_(-clamp, clamp)
    x = F.leaky_relu(x, slope) * gain if slope != 1 else x * gain
    return x if clamp is None else x.clamp(-clamp, clamp)


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

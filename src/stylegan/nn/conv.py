"""Convolution with FIR resampling (`conv2d_resample`) and StyleGAN2's modulated convolution.

`conv2d_resample(x, w, f, up, down, padding)` is defined, along each axis, as: fill x with `up - 1` zeros between
samples, pad it by `padding` plus the padding that centres f (that of `upsample2d` / `downsample2d`), filter the
result with w and with f (gain up²) in valid mode, and keep every `down`-th sample. w is applied as stored
(correlation, as F.conv2d) when `flip_weight`, else as a true convolution; f as a true convolution unless
`flip_filter`. Both filters see the same padded signal, so at the borders the result includes f's tails: it is not
`conv2d(upsample2d(x))`, and trained weights depend on that.

Formulations (exact; chosen by measurement, benchmarks/bench_ops.py):
- up: w and the zero filling are one transposed convolution of stride up at the input resolution (no zero-filled
  tensor), the gain up² is folded into its weights, and f follows as a same-size filter (three box averages on the
  CPU for [1, 3, 3, 1]). A 1x1 w commutes with all of it and runs first, on the small image. Gradient-free on the
  CPU with the binomial f and up = 2, the transposed convolution is four ordinary convolutions, one per output
  phase with the taps of w that reach it (oneDNN runs them up to twice as fast), and on large images the phases
  are interleaved and filtered band by band, in the caches.
- down: f as a same-size filter, then w as a strided convolution (a 1x1 w runs after the decimation).
- modulated convolution: s (styles) scales w's input channels and the demodulation d rescales its output channels;
  per sample that is one ordinary convolution with weight w[o, i] * s[i] * d[o] ("fused", used for inference and
  batch 1), or for a batch x * s -> shared-weight convolution -> * d ("batched", training).
- per-sample 3x3 'same' convolutions of 256 channels or more on images of 32² or more in gradient-free fp32 CPU
  inference: Winograd F(4x4, 3x3) on the shared weight's cached transform, s and d applied to input and output
  (`stylegan.nn.winograd`).
- other per-sample layers whose input and output are small beside the weight (the low resolutions) scale the
  activations by s and d instead of copying the weight, and the shared weight (or its phase taps) is packed into
  oneDNN's layout once per weight state (`stylegan.nn.derived`) instead of on every call.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from stylegan.nn import conv_gradfix, winograd, workspace
from stylegan.nn.bias_act import ACTIVATIONS, bias_act, no_autograd
from stylegan.nn.derived import derived
from stylegan.nn.upfirdn2d import (
    Padding,
    binomial_filter_,
    binomial_gain,
    centred_padding,
    pad_for_conv,
    parse_padding,
    upfirdn2d,
)


def _with_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if bias is None:
        return y
    b = bias.to(y.dtype).reshape(1, -1, 1, 1)
    return y.add_(b) if no_autograd(y, bias) else y + b


def conv2d(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    stride=1,
    padding=0,
    groups: int = 1,
    transpose: bool = False,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """F.conv2d or F.conv_transpose2d (w [C_in, C_out / groups, kh, kw]); through conv_gradfix when autograd will
    differentiate it there (CUDA training: fast double backward for R1 and path length)."""
    if conv_gradfix.wanted(x, w):
        op = conv_gradfix.conv_transpose2d if transpose else conv_gradfix.conv2d
        return _with_bias(op(x, w, stride=stride, padding=padding, groups=groups), bias)
    if transpose:
        return F.conv_transpose2d(x, w, bias, stride=stride, padding=padding, groups=groups)
    if stride == 1 and groups == 1 and _pooled_output(x, w, padding):
        return _pooled_conv2d(x, w, padding, bias)
    return F.conv2d(x, w, bias, stride=stride, padding=padding, groups=groups)


ONEDNN_PACKED = (
    torch.backends.mkldnn.is_available()
    and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")
)


ONEDNN_INTO = ONEDNN_PACKED and hasattr(torch.ops.mkldnn, "_convolution_pointwise_")  # in-place form


def _onednn(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether oneDNN's fused convolution ops apply: gradient-free fp32 CPU use."""
    return ONEDNN_PACKED and x.device.type == "cpu" and x.dtype == w.dtype == torch.float32 and no_autograd(x, w)


def _onednn_weight(x: torch.Tensor, w: torch.Tensor, pad: list[int], shared: bool) -> torch.Tensor:
    """w as the oneDNN convolution of x wants it: a persistent weight packed into its layout once per weight state
    and input shape (on a 512-channel 8x8 layer that is 6x faster than packing on every call), others as they are."""
    if not shared:
        return w
    ones = [1, 1]
    return derived(
        w,
        ("onednn", tuple(x.shape), tuple(pad)),
        lambda w: torch.ops.mkldnn._reorder_convolution_weight(w, pad, ones, ones, 1, list(x.shape)),
    )


def _stable_conv2d(x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """F.conv2d(x, w, padding=padding) for a weight that persists between calls (a parameter, or a tensor derived
    from one), with the weight packed once where oneDNN applies."""
    if not _onednn(x, w):
        return F.conv2d(x, w, padding=padding)
    pad, ones = list(padding), [1, 1]
    return torch.ops.mkldnn._convolution_pointwise(
        x, _onednn_weight(x, w, pad, True), None, pad, ones, ones, 1, "none", [], ""
    )


def _conv_into(
    dst: torch.Tensor, x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int], shared: bool, bias=None
) -> None:
    """dst += F.conv2d(x, w, bias, padding=padding), by oneDNN's in-place form: written straight into dst when dst
    is contiguous (channels_last), with no output tensor allocated; other views get a temporary added in. Needs
    `_onednn`."""
    pad, ones = list(padding), [1, 1]
    weight = _onednn_weight(x, w, pad, shared)
    torch.ops.mkldnn._convolution_pointwise_.binary(dst, x, weight, bias, pad, ones, ones, 1, "add", 1.0, None, [], "")


# Stride-1 CPU convolution outputs from this size on are written into pooled memory. Smaller ones come from the
# heap without page faults, where zeroing a pooled block for oneDNN's in-place form costs more than it saves.
POOLED_OUTPUT_BYTES = 32 << 20


def _stride1_output(x: torch.Tensor, w: torch.Tensor, padding) -> tuple[tuple[int, int], tuple[int, ...]]:
    """((pad_y, pad_x), output shape [N, C_out, H', W']) of F.conv2d(x, w, padding=padding) at stride 1."""
    pads = (padding, padding) if isinstance(padding, int) else tuple(padding)
    rows, cols = (size + 2 * p - k + 1 for size, p, k in zip(x.shape[2:], pads, w.shape[2:], strict=True))
    return pads, (x.shape[0], w.shape[0], rows, cols)


def _pooled_output(x: torch.Tensor, w: torch.Tensor, padding) -> bool:
    """Whether a stride-1 convolution's output is big enough to take from `workspace` (oneDNN, channels_last)."""
    if not (ONEDNN_INTO and _onednn(x, w) and x.is_contiguous(memory_format=torch.channels_last)):
        return False
    return math.prod(_stride1_output(x, w, padding)[1]) * x.element_size() >= POOLED_OUTPUT_BYTES


def _pooled_conv2d(
    x: torch.Tensor, w: torch.Tensor, padding, bias: torch.Tensor | None = None, shared: bool = False
) -> torch.Tensor:
    """F.conv2d(x, w, bias, padding=padding) into pooled memory (a fresh output of tens of MB costs its page
    faults on every call; see nn/workspace.py). Needs `_onednn`."""
    pads, shape = _stride1_output(x, w, padding)
    out = workspace.empty(shape, x.dtype, x.device, channels_last=True).zero_()
    _conv_into(out, x, w, pads, shared=shared, bias=None if bias is None else bias.to(x.dtype))
    return out


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    *,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Convolution with FIR up- or downsampling (see the module docstring for the definition).

    Args:
        x: [N, C_in, H, W].
        w: [C_out, C_in / groups, kh, kw].
        f: FIR filter from `setup_filter` (used when resampling), or None.
        up, down: integer factors (at most one of them above 1).
        padding: int, (x, y) or (x0, x1, y0, y1) added around the (upsampled) image, e.g. kh // 2.
        groups: channel groups of w.
        flip_weight: apply w as stored (correlation); False: as a true convolution.
        flip_filter: correlate with f instead of convolving.
        bias: [C_out] added to the output.
    Returns:
        [N, C_out, H * up / down, W * up / down] for padding k // 2 with odd k.
    """
    if up > 1 and down > 1:
        raise ValueError(f"conv2d_resample resamples one way, got up={up} and down={down}")
    if up > 1:
        return _conv_up(x, w, f, up, centred_padding(padding, f, up=up), groups, flip_weight, flip_filter, bias)
    k = w if flip_weight or w.shape[2:] == (1, 1) else w.flip([2, 3])  # correlation kernel
    if down > 1:
        pads = centred_padding(padding, f, down=down)
        if k.shape[2:] == (1, 1):  # a pointwise w commutes with filtering: run it on the small image
            x = upfirdn2d(x, f, down=down, padding=pads, flip_filter=flip_filter)
            return conv2d(x, k, groups=groups, bias=bias)
        x = upfirdn2d(x, f, padding=pads, flip_filter=flip_filter)
        return conv2d(x, k, stride=down, groups=groups, bias=bias)
    x, conv_pad = pad_for_conv(x, padding)
    return conv2d(x, k, padding=conv_pad, groups=groups, bias=bias)


def _conv_up(x, w, f, up, pads, groups, flip_weight, flip_filter, bias):
    """Zero filling, w and f with total padding pads = [x0, x1, y0, y1]: transposed conv, then a same-size f."""
    if w.shape[2:] == (1, 1):  # pointwise: commutes with the resampling, so run it on the small image
        x = conv2d(x, w * (up * up), groups=groups)
        return _with_bias(upfirdn2d(x, f, up=up, padding=pads, flip_filter=flip_filter), bias)
    kh, kw = w.shape[2:]
    # The transposed convolution's full output t holds sample j of the w-filtered, padded, zero-filled signal at
    # t[j + k - 1 - before]; f then needs (before - k + 1, after - k + up) around t. Where both sides are crops,
    # conv_transpose2d's padding does the smaller one; the rest stays with f's padding (negative: a crop).
    fir = [pads[0] - kw + 1, pads[1] - kw + up, pads[2] - kh + 1, pads[3] - kh + up]
    trim_x, trim_y = max(0, -max(fir[0], fir[1])), max(0, -max(fir[2], fir[3]))
    fir = [fir[0] + trim_x, fir[1] + trim_x, fir[2] + trim_y, fir[3] + trim_y]
    binomial = binomial_gain(f, x) if no_autograd(x, w) else None
    scale = up * up if binomial is None else up * up * binomial / 64  # f's gain, folded into the weights
    phased = PHASED_UP and binomial is not None and groups == 1 and up == 2 and min(kh, kw) >= 2
    if phased:
        y = _binomial_up_by_phases(x, w, (trim_y, trim_x), scale, flip_weight, fir)
        if y is not None:
            return _with_bias(y, bias)
        t = _transposed_by_phases(x, w, (trim_y, trim_x), scale, flip_weight)
    else:
        kernel = w.flip([2, 3]) if flip_weight else w  # as conv_transpose2d applies it
        kernel = (kernel * scale).unflatten(0, (groups, -1)).transpose(1, 2).flatten(0, 1)  # [C_in, C_out / g, kh, kw]
        t = conv2d(x, kernel, stride=up, padding=(trim_y, trim_x), groups=groups, transpose=True)
    y = None if binomial is None else binomial_filter_(t, fir)
    if y is None:
        y = upfirdn2d(t, f, padding=fir, flip_filter=flip_filter, gain=1 if binomial is None else 64 / binomial)
    return _with_bias(y, bias)


def _phase_taps(k: int, pad: int, size: int, phase: int) -> tuple[int, int, int, int]:
    """One axis of a stride-2 transposed convolution with a k-tap correlation kernel w, `pad` cropped from each
    side of its output, on `size` input samples: the outputs of one phase (0: even, 1: odd) and how to get them.

    Output n of the transposed convolution collects x[j] * w[r] over n = 2 j + (k - 1 - r) - pad (it applies w
    flipped), so the outputs n = 2 i + phase are a stride-1 correlation of x with the taps r = first, first + 2, ...
    where k - 1 - r - phase - pad is even, reading x from offset (phase + pad - k + 1 + first) / 2 on.
    Returns (first tap, symmetric zero padding for F.conv2d, index of the first wanted output, outputs wanted).
    """
    outputs = (2 * size + k - 2 - 2 * pad - phase + 1) // 2
    first = (k - 1 - phase - pad) % 2
    taps = (k - first + 1) // 2
    offset = (phase + pad - k + 1 + first) // 2
    conv_pad = max(0, -offset, outputs - 1 + offset + taps - size)
    return first, conv_pad, offset + conv_pad, outputs


def _phase_outputs(
    x: torch.Tensor, w: torch.Tensor, crop: tuple[int, int], scale: float, correlation: bool = True
) -> tuple[dict[tuple[int, int], torch.Tensor], tuple[int, int]]:
    """The stride-2 transposed convolution of `_transposed_by_phases` as its four phases: ({(py, px): [N, C_out,
    rows, cols] holding out[..., py::2, px::2]}, (H', W') of the whole output)."""
    kernels = _phase_kernels_of(w, crop, scale, correlation)
    shared = _shared(w)
    phases = {}
    for phase, (pads, (y0, rows), (x0, cols)) in _phase_plan(x, w, crop).items():
        k = kernels[phase].to(x.dtype)
        if _pooled_output(x, k, pads):
            y = _pooled_conv2d(x, k, pads, shared=shared)
        else:
            y = _stable_conv2d(x, k, pads) if shared else F.conv2d(x, k, padding=pads)
        phases[phase] = y[:, :, y0 : y0 + rows, x0 : x0 + cols]
    return phases, _transposed_size(x, w, crop)


def _transposed_size(x: torch.Tensor, w: torch.Tensor, crop: tuple[int, int]) -> tuple[int, int]:
    """(H', W') of the stride-2 transposed convolution of x with a kh x kw kernel, `crop` cut from each side."""
    return tuple(2 * size + k - 2 - 2 * c for size, k, c in zip(x.shape[2:], w.shape[2:], crop, strict=True))


def _phase_plan(x: torch.Tensor, w: torch.Tensor, crop: tuple[int, int]) -> dict:
    """{(py, px): ((pad_y, pad_x) of the phase's convolution, (first row, rows), (first column, columns) of its
    output that the phase keeps)}, from `_phase_taps`."""
    sizes = zip(w.shape[2:], crop, x.shape[2:], strict=True)
    axes = [[_phase_taps(k, c, size, phase) for phase in (0, 1)] for k, c, size in sizes]
    return {
        (py, px): ((axes[0][py][1], axes[1][px][1]), axes[0][py][2:], axes[1][px][2:]) for py in (0, 1) for px in (0, 1)
    }


def _phase_kernels_of(w: torch.Tensor, crop: tuple[int, int], scale: float, correlation: bool) -> dict:
    """`_phase_kernels`, once per weight state for a persistent weight."""
    if _shared(w):
        return derived(w, ("phases", crop, scale, correlation), lambda w: _phase_kernels(w, crop, scale, correlation))
    return _phase_kernels(w, crop, scale, correlation)


def _phase_kernels(w: torch.Tensor, crop: tuple[int, int], scale: float, correlation: bool) -> dict:
    """{(py, px): the taps of w * scale that reach output phase (py, px), as a correlation kernel}."""
    kh, kw = w.shape[2:]
    w = w.contiguous(memory_format=torch.channels_last)  # [C_out, kh, kw, C_in] in memory: fast tap slices
    kernels = {}
    for py in (0, 1):
        ry = _phase_taps(kh, crop[0], 1, py)[0]
        for px in (0, 1):
            rx = _phase_taps(kw, crop[1], 1, px)[0]
            if correlation:
                taps = w[:, :, ry::2, rx::2].contiguous(memory_format=torch.channels_last)
            else:  # the correlation kernel's taps r, r + 2, ... are w's taps k - 1 - r, k - 3 - r, ...
                taps = w[:, :, (kh - 1 - ry) % 2 :: 2, (kw - 1 - rx) % 2 :: 2].flip([2, 3])
            kernels[py, px] = taps.mul_(scale)
    return kernels


def _interleave(phases: dict, height: int, start: int, dst: torch.Tensor) -> None:
    """dst[:, :, k] = out[:, :, start + k] for the output `out` of height `height` whose phases these are; rows
    outside [0, height) are zeros. dst: [N, C, rows, W']."""
    stop = start + dst.shape[2]
    dst[:, :, : max(0, -start)] = 0
    dst[:, :, max(0, height - start) :] = 0
    lo, hi = max(start, 0), min(stop, height)
    for py in (0, 1):
        first = lo + (py - lo) % 2  # first output row of this parity in the slab
        count = (hi - first + 1) // 2
        if count > 0:
            rows = slice(first - start, first - start + 2 * count - 1, 2)
            for px in (0, 1):
                dst[:, :, rows, px::2] = phases[py, px][:, :, first // 2 : first // 2 + count]


def _transposed_by_phases(
    x: torch.Tensor, w: torch.Tensor, crop: tuple[int, int], scale: float, correlation: bool = True
) -> torch.Tensor:
    """F.conv_transpose2d(x, (w * scale).flip([2, 3]).transpose(0, 1), stride=2, padding=crop) for a correlation
    weight w [C_out, C_in, kh, kw] (kh, kw >= 2; correlation=False: w is a convolution kernel, applied unflipped),
    as four ordinary convolutions, one per output phase (even/odd row and column), each with the taps of w that
    reach it. No zero-filled input, and on the CPU oneDNN's convolutions run up to twice as fast as its transposed
    convolution on wide images. Returns [N, C_out, H', W'] channels_last.
    """
    height, width = _transposed_size(x, w, crop)
    out = workspace.empty((x.shape[0], w.shape[0], height, width), x.dtype, x.device, channels_last=True)
    _interleave(_phase_outputs(x, w, crop, scale, correlation)[0], height, 0, out)
    return out


SCALE_ACTIVATIONS_BELOW = 2  # (input + output elements) / weight elements below which s and d scale activations
PHASED_UP = True  # CPU 2x up-sampling convolutions as four phase convolutions (False: one transposed conv)
UP_BAND_BYTES = 8 << 20  # a band's transposed-conv rows; images up to 3 bands (config-f 128², 256 ch) go whole


def _binomial_up_by_phases(
    x: torch.Tensor,
    w: torch.Tensor,
    crop: tuple[int, int],
    scale: float,
    correlation: bool,
    fir: list[int],
    band_bytes: int = UP_BAND_BYTES,
) -> torch.Tensor | None:
    """binomial_filter_(_transposed_by_phases(x, w, crop, scale, correlation), fir), band by band of output rows:
    each band's rows of the transposed convolution are interleaved from the phases into a small buffer and filtered
    there, so the six passes of the filter stay in the caches instead of streaming the whole image six times.
    None where binomial_filter_ does not apply (fir outside {0, 1} per side or unequal sides)."""
    if any(p not in (0, 1) for p in fir) or fir[0] != fir[1] or fir[2] != fir[3]:
        return None
    n, c = x.shape[0], w.shape[0]
    height, width = _transposed_size(x, w, crop)
    out_h, out_w = height + 2 * fir[2] - 3, width + 2 * fir[0] - 3
    if min(out_h, out_w) < 1:
        return None
    if n * c * height * width * x.element_size() <= 3 * band_bytes:  # measured: banding does not pay
        return binomial_filter_(_transposed_by_phases(x, w, crop, scale, correlation), fir)
    phases, _ = _phase_outputs(x, w, crop, scale, correlation)
    y = workspace.empty((n, c, out_h, out_w), x.dtype, x.device, channels_last=True)
    band = max(1, band_bytes // (n * c * width * x.element_size()) - 3)
    memory = workspace.empty((n * (band + 3) * width * c,), x.dtype, x.device)
    for r0 in range(0, out_h, band):
        rows = min(band, out_h - r0)
        slab = memory[: n * (rows + 3) * width * c].view(n, rows + 3, width, c).permute(0, 3, 1, 2)
        _interleave(phases, height, r0 - fir[2], slab)  # output row r reads rows r - fir[2] ... r - fir[2] + 3
        filtered = binomial_filter_(slab, [fir[0], fir[1], 0, 0])
        if filtered is None:
            return None
        y[:, :, r0 : r0 + rows] = filtered
    return y


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused: bool | None = None,
    *,
    bias: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """StyleGAN2 modulated convolution, optionally followed by noise and `bias_act`.

    y[n, o] = d[n, o] * sum_i (weight[o, i] * styles[n, i]) conv x[n, i], with the demodulation
    d[n, o] = (sum_{i, k} (weight[o, i, k] * styles[n, i])² + 1e-8)^-1/2 (1 when not demodulating), resampled as
    `conv2d_resample`. Returns bias_act(y + noise, bias, act, gain, clamp).

    Args:
        x: [N, C_in, H, W] activations.
        weight: [C_out, C_in, kh, kw] shared weight.
        styles: [N, C_in] per-sample modulation.
        noise: broadcastable to the output, added after demodulation.
        fused: per-sample weights (True) or scaled activations (False); None: per-sample weights for batch 1 and
            gradient-free CPU inference.
        bias, act, gain, clamp: as `bias_act` (gain None: the activation's default).
    Returns:
        [N, C_out, H', W'].
    """
    if demodulate and x.dtype == torch.float16:
        weight, styles = _fp16_safe(weight, styles)
    gain = ACTIVATIONS[act].def_gain if gain is None else float(gain)
    out_scale = _demodulation(weight, styles) if demodulate else None  # [N, C_out] or None
    if fused is None:
        fused = x.shape[0] == 1 or (x.device.type == "cpu" and not torch.is_grad_enabled())
    fold = fused and ACTIVATIONS[act].homogeneous and gain > 0  # gain and bias go into the convolution
    if fold and gain != 1:
        out_scale = styles.new_full((styles.shape[0], 1), gain) if out_scale is None else out_scale * gain
        bias = None if bias is None else bias * gain
    resample = dict(up=up, down=down, padding=padding, f=resample_filter, flip_weight=flip_weight)
    if fused:
        y = _per_sample_conv(x, weight, styles, out_scale, resample, bias if fold else None)
    else:
        y = _batched_conv(x, weight, styles, out_scale, resample)
    if noise is not None:
        noise = noise.to(y.dtype) * gain if fold and gain != 1 else noise.to(y.dtype)
        y = y.add_(noise) if no_autograd(y, noise) else y + noise
    if fold:
        return bias_act(y, None, act=act, gain=1.0, clamp=clamp, inplace=True)
    return bias_act(y, bias, act=act, gain=gain, clamp=clamp, inplace=True)


def _fp16_safe(weight: torch.Tensor, styles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescales for half precision: unit-L2 output filters and styles of max |s| = 1 bound every modulated
    response by the input patch norm, so fp16 cannot overflow. Demodulation divides both factors out again."""
    filter_norms = weight.flatten(1).norm(dim=1).clamp_min(1e-8)  # [C_out]
    style_peaks = styles.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)  # [N, 1]
    return weight / filter_norms.reshape(-1, 1, 1, 1), styles / style_peaks


def _demodulation(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """d [N, C_out]: sum_{i,k} (w[o, i, k] s[n, i])² = sum_i s[n, i]² * |w[o, i]|², in float32 or wider. The
    energies |w[o, i]|² of a parameter are computed once per weight state in gradient-free use."""
    dtype = torch.promote_types(weight.dtype, torch.float32)
    if _shared(weight):
        energy = derived(weight, ("energy", dtype), functools.partial(_filter_energy, dtype=dtype))
    else:
        energy = _filter_energy(weight, dtype)
    return torch.rsqrt(styles.to(dtype).square() @ energy.t() + 1e-8)


def _filter_energy(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """|w[o, i]|² = sum_k w[o, i, k]² [C_out, C_in] in dtype."""
    return weight.to(dtype).square().sum(dim=(2, 3))


def _per_sample_conv(x, weight, styles, out_scale, resample, bias):
    """One ordinary convolution per sample with weight[o, i] * styles[n, i] * out_scale[n, o]."""
    bias = None if bias is None else bias.to(x.dtype)  # fp16 / bf16 activations: the folded bias in their dtype
    same = resample["up"] == resample["down"] == 1 and parse_padding(resample["padding"]) == (1, 1, 1, 1)
    if same and resample["flip_weight"] and winograd.applies(x, weight):
        return _winograd_conv(x, weight, styles, out_scale, bias)
    if _activations_smaller(x, weight, resample):
        return _scaled_activations_conv(x, weight, styles, out_scale, resample, bias)
    factors = styles.to(weight.dtype)[:, None, :]  # [N, 1, C_in]
    if out_scale is not None:
        factors = factors * out_scale.to(weight.dtype)[:, :, None]  # [N, C_out, C_in]
    pointwise = weight.shape[2:] == (1, 1) and resample["up"] == resample["down"] == 1
    outputs = []
    for n in range(x.shape[0]):
        w_n = (weight * factors[n, :, :, None, None]).to(x.dtype)  # [C_out, C_in, kh, kw]
        if pointwise and parse_padding(resample["padding"]) == (0, 0, 0, 0):
            outputs.append(_pointwise(x[n : n + 1], w_n[:, :, 0, 0], bias))
        else:
            outputs.append(conv2d_resample(x[n : n + 1], w_n, **resample, bias=bias))
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _activations_smaller(x: torch.Tensor, weight: torch.Tensor, resample: dict) -> bool:
    """Whether scaling one sample's input and output costs less than modulating the weight: low-resolution layers
    in gradient-free CPU inference (the weight, shared, then also keeps its derived tensors, e.g. its phase taps)."""
    pixels = x.shape[2] * x.shape[3] * max(resample["up"], 1) ** 2 // max(resample["down"], 1) ** 2
    in_out = x.shape[1] * x.shape[2] * x.shape[3] + weight.shape[0] * pixels
    return x.device.type == "cpu" and no_autograd(x, weight) and in_out < SCALE_ACTIVATIONS_BELOW * weight.numel()


def _scaled_activations_conv(x, weight, styles, out_scale, resample, bias):
    """The per-sample modulated convolution as the batched one ((x * s) conv w, then * d) plus the bias, for
    gradient-free use: the shared weight is not copied."""
    y = _batched_conv(x, weight, styles, out_scale, resample)
    return y if bias is None else y.add_(bias.to(y.dtype).reshape(1, -1, 1, 1))


def _winograd_conv(x, weight, styles, out_scale, bias):
    """The per-sample 3x3 'same' convolution by Winograd's algorithm: the shared weight is transformed once (and
    cached), styles scale the input and out_scale the output, which equals transforming each modulated weight."""
    u = winograd.cached_weight_transform(weight, winograd.TILE)
    outputs = [
        winograd.conv3x3(
            x[n : n + 1], u, winograd.TILE, in_scale=styles[n], out_scale=None if out_scale is None else out_scale[n],
            bias=bias,
        )
        for n in range(x.shape[0])
    ]  # fmt: skip
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _pointwise(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """1x1 convolution [1, C_in, H, W] -> [1, C_out, H, W] as one matrix product over the pixels.

    With x in channels_last the pixels are the rows of an [H * W, C_in] view; oneDNN's convolution is slow for the
    3 output channels of ToRGB, a GEMM is not.
    """
    _, c_in, h, w_ = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(h * w_, c_in)  # a view when x is channels_last
    out = pixels @ w.t() if bias is None else torch.addmm(bias.to(x.dtype), pixels, w.t())  # [H * W, C_out]
    return out.reshape(1, h, w_, -1).permute(0, 3, 1, 2)  # [1, C_out, H, W], channels_last in memory


def _batched_conv(x, weight, styles, out_scale, resample):
    """x * s, one convolution with the shared weight for the whole batch, * d (in place when nothing is recorded)."""
    n = x.shape[0]
    y = _shared_weight_conv(x * styles.to(x.dtype).reshape(n, -1, 1, 1), weight, resample)
    if out_scale is None:
        return y
    scale = out_scale.to(y.dtype).reshape(n, -1, 1, 1)
    return y.mul_(scale) if no_autograd(y) else y * scale


def _shared_weight_conv(x: torch.Tensor, weight: torch.Tensor, resample: dict) -> torch.Tensor:
    """conv2d_resample(x, weight, **resample); a plain, symmetrically padded convolution with a shared parameter in
    gradient-free use goes through `_stable_conv2d` (the weight packed once per weight state)."""
    pads = parse_padding(resample["padding"])
    plain = resample["up"] == resample["down"] == 1 and resample["flip_weight"]
    same_dtype = weight.dtype == x.dtype  # fp16 / bf16 activations take the cast weight below
    if plain and same_dtype and pads[0] == pads[1] and pads[2] == pads[3] and _shared(weight) and no_autograd(x):
        return _stable_conv2d(x, weight, (pads[2], pads[0]))
    return conv2d_resample(x, weight.to(x.dtype), **resample)


def _shared(w: torch.Tensor) -> bool:
    """Whether w is a parameter used without autograd: tensors derived from it can be cached (nn.derived)."""
    return isinstance(w, torch.nn.Parameter) and no_autograd(w)

"""Convolution with FIR resampling, and modulated convolution (StyleGAN2 weight (de)modulation).

`conv2d_resample` follows NVIDIA's conventions so that trained weights give identical images: with
``flip_weight=False`` the kernel is applied as a true convolution (synthesis layers that upsample are trained that
way), padding is given in the output frame of the resampling, and upsampling is a transposed convolution followed
by the FIR filter with gain up².

`modulated_conv2d` never builds per-sample weights: it scales the activations by the styles, runs one ordinary
convolution with the shared weight for the whole batch, and scales the outputs by the demodulation coefficients.
This is mathematically identical to the grouped-convolution ("fused") form and much faster on CPU and GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stylegan.nn import conv_gradfix
from stylegan.nn.upfirdn2d import Padding, filter_size, parse_padding, upfirdn2d


def _conv(
    x: torch.Tensor, w: torch.Tensor, *, stride=1, padding=0, groups=1, transpose=False, flip_weight=True
):
    """conv2d / conv_transpose2d; flip_weight=False flips the kernel (convolution instead of correlation)."""
    if not flip_weight and (w.shape[-1] > 1 or w.shape[-2] > 1):
        w = w.flip([2, 3])
    if conv_gradfix.wanted(x, w):  # training: fast double backward for R1 / path length
        if transpose:
            return conv_gradfix.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
        return conv_gradfix.conv2d(x, w, stride=stride, padding=padding, groups=groups)
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d(x: torch.Tensor, w: torch.Tensor, *, stride=1, padding=0, groups=1, transpose=False) -> torch.Tensor:
    """F.conv2d / F.conv_transpose2d (no bias), through conv_gradfix when autograd will differentiate it."""
    return _conv(x, w, stride=stride, padding=padding, groups=groups, transpose=transpose)


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
) -> torch.Tensor:
    """2D convolution with optional FIR up/downsampling.

    Args:
        x: [N, C_in, H, W].
        w: [C_out, C_in // groups, kh, kw].
        f: FIR filter (setup_filter) used for resampling, or None.
        up, down: integer resampling factors.
        padding: padding of the input, as for a same-size convolution.
    Returns:
        [N, C_out, H * up // down, W * up // down] (for padding = k // 2).
    """
    out_ch, _, kh, kw = w.shape
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2

    if kw == 1 and kh == 1 and down > 1 and up == 1:  # 1x1 downsampling: filter first, then conv.
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:  # 1x1 upsampling: conv first, then filter.
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up * up, flip_filter=flip_filter)
    if down > 1 and up == 1:  # filter, then strided conv.
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:  # transposed conv, then filter.
        return _conv_transpose_up(x, w, f, up, down, (px0, px1, py0, py1), groups, flip_weight, flip_filter)
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1])
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


def _conv_transpose_up(x, w, f, up, down, pads, groups, flip_weight, flip_filter):
    out_ch, in_per_group, kh, kw = w.shape
    if groups == 1:
        w = w.transpose(0, 1)  # [C_in, C_out, kh, kw]
    else:
        w = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    px0, px1, py0, py1 = pads
    px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
    pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
    x = _conv(x, w, stride=up, padding=(pyt, pxt), groups=groups, transpose=True, flip_weight=not flip_weight)
    x = upfirdn2d(
        x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up, flip_filter=flip_filter
    )
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused: bool | None = None,
) -> torch.Tensor:
    """StyleGAN2 modulated convolution.

    Two exact formulations: "batched" scales the activations by the styles, runs one shared-weight convolution for
    the whole batch and scales the outputs by the demodulation coefficients (fast for training batches);
    "fused" builds per-sample weights and runs a grouped convolution, which saves two full passes over large
    activations (fast for inference on the CPU and for batch 1).

    Args:
        x: [N, C_in, H, W] activations.
        weight: [C_out, C_in, kh, kw] shared weight.
        styles: [N, C_in] per-sample modulation.
        noise: broadcastable to the output, added after demodulation.
        fused: force a formulation; None picks fused for batch 1 or gradient-free CPU inference.
    Returns:
        [N, C_out, H', W'].
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # pre-normalise so fp16 cannot overflow; cancelled by demod
        weight = weight * (
            1 / (in_ch * kh * kw) ** 0.5 / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    dcoefs = None
    if demodulate:
        # sum_{i,k} (w[o,i,k] * s[n,i])^2 = sum_i s[n,i]^2 * (sum_k w[o,i,k]^2)
        ct = torch.promote_types(weight.dtype, torch.float32)  # fp32 at least, fp64 stays fp64
        wsq = weight.to(ct).square().sum(dim=[2, 3])  # [C_out, C_in]
        dcoefs = (styles.to(ct).square() @ wsq.t() + 1e-8).rsqrt()  # [N, C_out]
    if fused is None:
        fused = n == 1 or (x.device.type == "cpu" and not torch.is_grad_enabled())
    if fused:
        x = _fused_modconv(x, weight, styles, dcoefs, up, down, padding, resample_filter, flip_weight)
    else:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(
            x,
            weight.to(x.dtype),
            f=resample_filter,
            up=up,
            down=down,
            padding=padding,
            flip_weight=flip_weight,
        )
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    if noise is not None:
        x = x.add_(noise.to(x.dtype)) if not torch.is_grad_enabled() else x + noise.to(x.dtype)
    return x


def _fused_modconv(x, weight, styles, dcoefs, up, down, padding, resample_filter, flip_weight):
    """Per-sample weights [N * C_out, C_in, kh, kw] and one grouped convolution."""
    n, in_ch, h, w_ = x.shape
    w = weight.unsqueeze(0) * styles.to(weight.dtype).reshape(n, 1, -1, 1, 1)  # [N, C_out, C_in, kh, kw]
    if dcoefs is not None:
        w = w * dcoefs.to(w.dtype).reshape(n, -1, 1, 1, 1)
    if w.shape[-2:] == (1, 1) and up == 1 and down == 1 and padding == 0:
        # 1x1 (ToRGB): a batched matmul over channels; oneDNN is slow for 3 output channels.
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w_, in_ch)  # a view when x is NHWC
        out = torch.bmm(pixels, w[:, :, :, 0, 0].transpose(1, 2).to(x.dtype))  # [N, H*W, C_out]
        return out.reshape(n, h, w_, -1).permute(0, 3, 1, 2)  # [N, C_out, H, W], NHWC in memory
    w = w.reshape(-1, in_ch, *weight.shape[2:]).to(x.dtype)
    x = conv2d_resample(
        x.reshape(1, n * in_ch, h, w_),
        w,
        f=resample_filter,
        up=up,
        down=down,
        padding=padding,
        groups=n,
        flip_weight=flip_weight,
    )
    return x.reshape(n, -1, *x.shape[2:])

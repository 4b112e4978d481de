"""FIR resampling: upsample (zero insertion), pad, filter, downsample.

Semantics follow NVIDIA's `upfirdn2d` so that trained weights behave identically: a filter is applied as a true
convolution (flipped) unless ``flip_filter=True``; 1-D filters of 8+ taps are applied separably; ``gain`` scales the
filter so that, e.g., upsampling by 2 keeps the DC level with ``gain=up**2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Padding = int | Sequence[int]


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """Returns (pad_x0, pad_x1, pad_y0, pad_y1) from an int, (x, y) or (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    if len(padding) == 4:
        return tuple(padding)  # type: ignore[return-value]
    raise ValueError(f"padding must have 1, 2 or 4 entries, got {padding}")


def setup_filter(
    f: Sequence[float] | torch.Tensor | None,
    *,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1.0,
    separable: bool | None = None,
) -> torch.Tensor:
    """Builds a float32 FIR filter tensor: [taps] if separable, else [taps, taps]."""
    f = torch.ones([1], dtype=torch.float32) if f is None else torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)  # [taps, taps]
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter as made by setup_filter."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[-1], f.shape[-2]


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), convolve with f, then keep every `down`-th pixel.

    Args:
        x: [N, C, H, W] images.
        f: filter from `setup_filter` ([fh, fw] or separable [taps]), or None for identity.
        up, down: integer factor, or (x, y) factors.
        padding: see `parse_padding`; applied after upsampling.
        flip_filter: correlate instead of convolve.
        gain: overall scaling of the filter.
    Returns:
        [N, C, H', W'] with H' = (H * up_y + pad_y0 + pad_y1 - fh) // down_y + 1.
    """
    upx, upy = (up, up) if isinstance(up, int) else up
    downx, downy = (down, down) if isinstance(down, int) else down
    px0, px1, py0, py1 = parse_padding(padding)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    if upx > 1 or upy > 1:  # zero insertion
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)
    conv_pad = (0, 0)
    if px0 == px1 >= 0 and py0 == py1 >= 0 and f.numel() > 1:
        conv_pad = (py0, px0)  # let the convolution pad: saves a copy of x
    else:
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
        x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    x = _depthwise_fir(x, f.to(x.dtype), flip_filter=flip_filter, gain=gain, padding=conv_pad)
    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


def _depthwise_fir(
    x: torch.Tensor, f: torch.Tensor, *, flip_filter: bool, gain: float, padding: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Convolution of every channel with the same FIR filter (zero padding (py, px), then valid mode)."""
    c = x.shape[1]
    f = f * (gain ** (f.ndim / 2))
    if not flip_filter:  # conv2d correlates; flip to convolve
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 1:  # separable: rows then columns
        x = F.conv2d(x, f.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c, padding=(0, padding[1]))
        return F.conv2d(x, f.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c, padding=(padding[0], 0))
    if f.numel() == 1:
        return x * f.reshape(())
    return F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c, padding=padding)


def filter2d(
    x: torch.Tensor, f: torch.Tensor, padding: Padding = 0, flip_filter: bool = False, gain: float = 1.0
):
    """Same-size FIR filtering (plus optional extra padding)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample2d(
    x: torch.Tensor, f: torch.Tensor, up: int = 2, padding: Padding = 0, flip_filter=False, gain=1.0
):
    """Upsample by `up` with FIR filter f; output is exactly `up` times larger (plus padding)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * up * up)


def downsample2d(
    x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: Padding = 0, flip_filter=False, gain=1.0
):
    """Downsample by `down` with FIR filter f; output is exactly `down` times smaller (plus padding)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [
        px0 + (fw - down + 1) // 2,
        px1 + (fw - down) // 2,
        py0 + (fh - down + 1) // 2,
        py1 + (fh - down) // 2,
    ]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain)

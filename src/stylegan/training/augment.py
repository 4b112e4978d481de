"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training GANs with limited data", app. B).

`AugmentPipe` applies, to every image the discriminator sees, a random chain of transforms, each with the
probability `multiplier * p`: pixel blitting (x-flip, 90-degree rotations, integer translation), general
geometric transforms (isotropic scale, rotation, anisotropic scale, fractional translation), colour transforms
(brightness, contrast, luma flip, hue rotation, saturation), image-space filtering (gains on 4 frequency
bands), additive noise and cutout. Every step is differentiable w.r.t. the images, twice (R1 needs it).
Images are float [N, C, H, W] in [-1, 1], so 0 is mid-grey.

Our choices where the paper leaves room (NVIDIA's differ in these details, not in the distributions):
- Blitting is a lossless pixel gather with reflection at the borders, not a resampling.
- General geometric transforms sample the image with bicubic interpolation (reflection padding) on a 2x
  supersampled output grid, then decimate by 2 with a 24-tap Kaiser-windowed sinc; NVIDIA upsamples with
  a sym6 wavelet, samples bilinearly and downsamples with the same wavelet.
- The 4 filter bands (0-pi/8, pi/8-pi/4, pi/4-pi/2, pi/2-pi) are differences of 31-tap Kaiser-windowed sinc
  low-passes, so they add up to the identity exactly.
- On 1-channel images the colour group applies brightness and contrast only (NVIDIA also applies the luma
  flip there, which inverts a grey image; hue and saturation do nothing to grey).
- A sample that no transform of a group selects is passed through untouched (p=0 is the exact identity),
  and the resampling and filtering stages only compute the selected samples (one device sync each).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Expected power of natural images in each filter band, used to keep the filtered image's energy unchanged.
_BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
_BAND_CUTOFFS = (1 / 16, 1 / 8, 1 / 4)  # cycles per pixel between the 4 bands
_LUMA_AXIS = (1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3))


@dataclass(frozen=True)
class AugmentConfig:
    """Probability multipliers (fields without a suffix) and strengths (_std, _max, _size, _bands) of each op.

    The probability that a transform is applied to an image is `multiplier * p`. Strengths and their
    defaults follow the ADA paper's appendix B.
    """

    xflip: float = 0.0
    rotate90: float = 0.0
    xint: float = 0.0
    xint_max: float = 0.125  # largest integer translation, as a fraction of the image size
    scale: float = 0.0
    rotate: float = 0.0
    aniso: float = 0.0
    xfrac: float = 0.0
    scale_std: float = 0.2  # log2 standard deviation
    rotate_max: float = 1.0  # largest rotation, as a fraction of a half-turn
    aniso_std: float = 0.2
    xfrac_std: float = 0.125
    brightness: float = 0.0
    contrast: float = 0.0
    lumaflip: float = 0.0
    hue: float = 0.0
    saturation: float = 0.0
    brightness_std: float = 0.2
    contrast_std: float = 0.5
    hue_max: float = 1.0
    saturation_std: float = 1.0
    imgfilter: float = 0.0
    imgfilter_bands: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # per-band probability factors
    imgfilter_std: float = 1.0
    noise: float = 0.0
    cutout: float = 0.0
    noise_std: float = 0.1
    cutout_size: float = 0.5  # side of the cut square, as a fraction of the image size


_GROUPS = {
    "blit": {"xflip": 1, "rotate90": 1, "xint": 1},
    "geom": {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1},
    "color": {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1},
    "filter": {"imgfilter": 1},
    "noise": {"noise": 1},
    "cutout": {"cutout": 1},
}
# NVIDIA's --augpipe names; 'bgc' is the default.
AUGPIPE_PRESETS: dict[str, dict[str, float]] = {
    **_GROUPS,
    "bg": {**_GROUPS["blit"], **_GROUPS["geom"]},
    "bgc": {**_GROUPS["blit"], **_GROUPS["geom"], **_GROUPS["color"]},
    "bgcf": {**_GROUPS["blit"], **_GROUPS["geom"], **_GROUPS["color"], **_GROUPS["filter"]},
    "bgcfn": {
        **_GROUPS["blit"],
        **_GROUPS["geom"],
        **_GROUPS["color"],
        **_GROUPS["filter"],
        **_GROUPS["noise"],
    },
    "bgcfnc": {k: v for g in _GROUPS.values() for k, v in g.items()},
}


def augment_config(preset: str = "bgc", **overrides: float) -> AugmentConfig:
    """The AugmentConfig of one of NVIDIA's presets (AUGPIPE_PRESETS), with field overrides."""
    if preset not in AUGPIPE_PRESETS:
        raise ValueError(f"unknown augment preset {preset!r}; choose one of {', '.join(AUGPIPE_PRESETS)}")
    return AugmentConfig(**{**AUGPIPE_PRESETS[preset], **overrides})


class _Random:
    """Random draws for one batch, from an optional torch.Generator, returned on the images' device."""

    def __init__(self, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype):
        self.generator, self.device, self.dtype = generator, device, dtype
        self.source = generator.device if generator is not None else device

    def rand(self, *shape: int) -> torch.Tensor:
        x = torch.rand(shape, generator=self.generator, device=self.source, dtype=torch.float32)
        return x.to(self.device, self.dtype)

    def randn(self, *shape: int) -> torch.Tensor:
        x = torch.randn(shape, generator=self.generator, device=self.source, dtype=torch.float32)
        return x.to(self.device, self.dtype)


class AugmentPipe(nn.Module):
    """ADA augmentation with overall strength `p` (a buffer: it saves, loads and broadcasts with the module).

    Args:
        config: an AugmentConfig or the name of a preset ('blit', 'geom', 'color', 'filter', 'noise',
            'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc').
        p: initial strength in [0, 1] (ADA adjusts it; see AdaController).
    """

    def __init__(self, config: AugmentConfig | str = "bgc", p: float = 0.0):
        super().__init__()
        self.config = augment_config(config) if isinstance(config, str) else config
        self.register_buffer("p", torch.tensor(float(p)))
        # [24] 2x decimation filter; a cutoff a little above the original Nyquist (0.25) keeps detail.
        self.register_buffer("_down", _lowpass(24, 0.3, beta=6.0), persistent=False)
        self.register_buffer("_bands", _band_filters(31), persistent=False)  # [4, 31] filter bank

    def extra_repr(self) -> str:
        used = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(AugmentConfig)}
        return ", ".join(f"{k}={v}" for k, v in used.items() if v != getattr(AugmentConfig, k))

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch. images: [N, C, H, W] float in [-1, 1]; returns the same shape and dtype."""
        if images.ndim != 4:
            raise ValueError(f"images must be [N, C, H, W], got shape {list(images.shape)}")
        cfg = self.config
        work = torch.float64 if images.dtype == torch.float64 else torch.float32
        rnd = _Random(generator, images.device, work)
        p = self.p.to(images.device, work)
        x = images.to(work)
        if cfg.xflip or cfg.rotate90 or cfg.xint:
            x = self._blit(x, rnd, p)
        if cfg.scale or cfg.rotate or cfg.aniso or cfg.xfrac:
            x = self._geometric(x, rnd, p)
        if cfg.brightness or cfg.contrast or cfg.lumaflip or cfg.hue or cfg.saturation:
            x = self._color(x, rnd, p)
        if cfg.imgfilter:
            x = self._filter(x, rnd, p)
        if cfg.noise:
            x = self._noise(x, rnd, p)
        if cfg.cutout:
            x = self._cutout(x, rnd, p)
        return x.to(images.dtype)

    # ---- pixel blitting -----------------------------------------------------------------------------------
    def _blit(self, x: torch.Tensor, rnd: _Random, p: torch.Tensor) -> torch.Tensor:
        """x-flip, rotation by k*90 degrees and integer translation, as an exact gather with reflection."""
        N, C, H, W = x.shape
        cfg = self.config
        if cfg.rotate90 and H != W:
            raise ValueError(f"rotate90 needs square images, got {H}x{W}")
        flip = _chosen(rnd, N, cfg.xflip * p, torch.floor(rnd.rand(N) * 2))
        quarter = _chosen(rnd, N, cfg.rotate90 * p, torch.floor(rnd.rand(N) * 4)).long()
        shift = _chosen(rnd, N, cfg.xint * p, (rnd.rand(N, 2) * 2 - 1) * cfg.xint_max)  # [N, 2]
        shift = torch.round(shift * torch.tensor([W, H], device=x.device, dtype=x.dtype))
        cos = torch.tensor([1, 0, -1, 0], device=x.device, dtype=x.dtype)[quarter]
        sin = torch.tensor([0, 1, 0, -1], device=x.device, dtype=x.dtype)[quarter]
        u, v = _centred_grid(H, W, x)  # [H, W] each
        u = u - shift[:, 0, None, None]  # [N, H, W]
        v = v - shift[:, 1, None, None]
        su = (cos[:, None, None] * u - sin[:, None, None] * v) * (1 - 2 * flip[:, None, None])
        sv = sin[:, None, None] * u + cos[:, None, None] * v
        ix = _reflect_index(torch.round(su + (W - 1) / 2).long(), W)
        iy = _reflect_index(torch.round(sv + (H - 1) / 2).long(), H)
        index = (iy * W + ix).reshape(N, 1, H * W).expand(N, C, H * W)
        return x.reshape(N, C, H * W).gather(2, index).reshape(N, C, H, W)

    # ---- general geometric transforms ---------------------------------------------------------------------
    def _geometric(self, x: torch.Tensor, rnd: _Random, p: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        G_inv = self._geometric_matrix(rnd, N, p, H, W, x)  # [N, 3, 3], output pixel -> input pixel (centred)
        moved = (G_inv - torch.eye(3, device=x.device, dtype=x.dtype)).abs().amax(dim=(1, 2)) > 0
        return _on_subset(x, moved, lambda xs, idx: self._resample(xs, G_inv[idx]))

    def _resample(self, x: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
        """Sample x [N, C, H, W] at G_inv [N, 3, 3] @ (output pixel) on a 2x grid, then decimate to H x W."""
        N, C, H, W = x.shape
        u, v = _centred_grid(2 * H, 2 * W, x)  # 2x supersampled output grid, in output pixels of the 2x image
        pts = torch.stack([u / 2, v / 2, torch.ones_like(u)], dim=-1)  # [2H, 2W, 3] in original pixels
        src = torch.einsum("nij,hwj->nhwi", G_inv[:, :2, :], pts)  # [N, 2H, 2W, 2]
        grid = src * (2 / torch.tensor([W, H], device=x.device, dtype=x.dtype))  # align_corners=False units
        y = grid_sample(x, grid)  # bicubic, reflection padding; twice differentiable in x (R1) on every device
        return _decimate2(y, self._down.to(x.device, x.dtype))  # [N, C, H, W]

    def _geometric_matrix(self, rnd: _Random, N: int, p: torch.Tensor, H: int, W: int, like: torch.Tensor):
        cfg = self.config
        G_inv = torch.eye(3, device=like.device, dtype=like.dtype).repeat(N, 1, 1)
        s = _chosen(rnd, N, cfg.scale * p, torch.exp2(rnd.randn(N) * cfg.scale_std), 1.0)
        G_inv = G_inv @ _scale2d(1 / s, 1 / s)
        p_rot = 1 - torch.sqrt(torch.clamp(1 - cfg.rotate * p, min=0))  # two chances add up to rotate * p
        theta = _chosen(rnd, N, p_rot, (rnd.rand(N) * 2 - 1) * math.pi * cfg.rotate_max)
        G_inv = G_inv @ _rotate2d(-theta)
        a = _chosen(rnd, N, cfg.aniso * p, torch.exp2(rnd.randn(N) * cfg.aniso_std), 1.0)
        G_inv = G_inv @ _scale2d(1 / a, a)
        theta = _chosen(rnd, N, p_rot, (rnd.rand(N) * 2 - 1) * math.pi * cfg.rotate_max)
        G_inv = G_inv @ _rotate2d(-theta)
        t = _chosen(rnd, N, cfg.xfrac * p, rnd.randn(N, 2) * cfg.xfrac_std)  # [N, 2] fractions of the size
        return G_inv @ _translate2d(-t[:, 0] * W, -t[:, 1] * H)

    # ---- colour transforms --------------------------------------------------------------------------------
    def _color(self, x: torch.Tensor, rnd: _Random, p: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        if C not in (1, 3):
            raise ValueError(f"colour augmentation needs 1 or 3 channels, got {C}")
        M, active = self._color_matrix(rnd, N, p, x, rgb=C == 3)  # [N, 4, 4], [N]
        flat = x.reshape(N, C, H * W)
        if C == 3:
            y = M[:, :3, :3] @ flat + M[:, :3, 3:]
        else:  # brightness and contrast only: one gain and offset
            y = M[:, :1, :1] * flat + M[:, :1, 3:]
        return torch.where(active[:, None, None, None], y.reshape(N, C, H, W), x)

    def _color_matrix(self, rnd: _Random, N: int, p: torch.Tensor, like: torch.Tensor, rgb: bool):
        cfg = self.config
        M = torch.eye(4, device=like.device, dtype=like.dtype).repeat(N, 1, 1)
        active = torch.zeros(N, dtype=torch.bool, device=like.device)
        b, on = _chosen(rnd, N, cfg.brightness * p, rnd.randn(N) * cfg.brightness_std, flag=True)
        M, active = _translate3d(b) @ M, active | on
        c, on = _chosen(rnd, N, cfg.contrast * p, torch.exp2(rnd.randn(N) * cfg.contrast_std), 1.0, flag=True)
        M, active = _scale3d(c) @ M, active | on
        if not rgb:
            return M, active
        luma = torch.tensor(_LUMA_AXIS, device=like.device, dtype=like.dtype)
        proj = torch.outer(luma, luma)  # [3, 3] projection onto the grey axis
        i, on = _chosen(rnd, N, cfg.lumaflip * p, torch.floor(rnd.rand(N) * 2), flag=True)
        M, active = _embed3(torch.eye(3, **_kw(like)) - 2 * proj * i[:, None, None]) @ M, active | on
        theta, on = _chosen(rnd, N, cfg.hue * p, (rnd.rand(N) * 2 - 1) * math.pi * cfg.hue_max, flag=True)
        M, active = _embed3(_rotate3d(luma, theta)) @ M, active | on
        s, on = _chosen(rnd, N, cfg.saturation * p, torch.exp2(rnd.randn(N) * cfg.saturation_std), 1.0, flag=True)
        M = _embed3(proj + (torch.eye(3, **_kw(like)) - proj) * s[:, None, None]) @ M
        return M, active | on

    # ---- image-space filtering ----------------------------------------------------------------------------
    def _filter(self, x: torch.Tensor, rnd: _Random, p: torch.Tensor) -> torch.Tensor:
        """Random gain per frequency band, normalised to keep the expected image energy."""
        N, C, H, W = x.shape
        cfg = self.config
        gains = torch.ones(N, 4, device=x.device, dtype=x.dtype)
        active = torch.zeros(N, dtype=torch.bool, device=x.device)
        for band, strength in enumerate(cfg.imgfilter_bands):  # strength multiplies the band's probability
            prob = cfg.imgfilter * strength * p
            g, on = _chosen(rnd, N, prob, torch.exp2(rnd.randn(N) * cfg.imgfilter_std), 1.0, flag=True)
            gains[:, band] = g
            active = active | on
        power = torch.tensor(_BAND_POWER, device=x.device, dtype=x.dtype)
        gains = gains / torch.sqrt((gains.square() * power).sum(dim=1, keepdim=True))
        taps = gains @ self._bands.to(x.device, x.dtype)  # [N, 31] one separable filter per image
        return _on_subset(x, active, lambda xs, idx: _separable_filter(xs, taps[idx]))

    # ---- noise and cutout ---------------------------------------------------------------------------------
    def _noise(self, x: torch.Tensor, rnd: _Random, p: torch.Tensor) -> torch.Tensor:
        N = x.shape[0]
        sigma = _chosen(rnd, N, self.config.noise * p, rnd.randn(N).abs() * self.config.noise_std)
        return x + rnd.randn(*x.shape) * sigma[:, None, None, None]

    def _cutout(self, x: torch.Tensor, rnd: _Random, p: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        size = _chosen(rnd, N, self.config.cutout * p, torch.full([N], self.config.cutout_size, **_kw(x)))
        centre = rnd.rand(N, 2)  # [N, 2] in [0, 1)
        ys = (torch.arange(H, **_kw(x)) + 0.5) / H
        xs = (torch.arange(W, **_kw(x)) + 0.5) / W
        outside_x = (xs[None, :] - centre[:, :1]).abs() >= size[:, None] / 2  # [N, W]
        outside_y = (ys[None, :] - centre[:, 1:]).abs() >= size[:, None] / 2  # [N, H]
        keep = outside_x[:, None, :] | outside_y[:, :, None]  # [N, H, W]
        return x * keep[:, None].to(x.dtype)


class AdaController:
    """Adjusts `augment_pipe.p` toward a target overfitting heuristic r_t = E[sign(D(real))], as ADA does.

    Call `observe(real_logits)` for every D evaluation on real images and `step()` once per training step
    (after the D update). On every `interval`-th step (the 4th, 8th, ... as in NVIDIA's loop), the mean sign
    since the last adjustment becomes r_t, and p += sign(r_t - target) * batch_size * interval / (kimg * 1e3),
    clamped at >= 0. Under torch.distributed the sign statistics are summed over processes, so every rank
    must call `step()`. Nothing here synchronises the device with the host.

    Args:
        augment_pipe: the pipe whose `p` buffer is adjusted.
        batch_size: global batch size (images per step, all processes).
        target: the r_t target (0.6).
        interval: steps between adjustments (4).
        kimg: thousands of images for p to move by 1 (500).
    """

    def __init__(
        self,
        augment_pipe: AugmentPipe,
        *,
        batch_size: int,
        target: float = 0.6,
        interval: int = 4,
        kimg: float = 500,
    ):
        self.pipe, self.batch_size, self.target, self.interval, self.kimg = (
            augment_pipe,
            batch_size,
            target,
            interval,
            kimg,
        )
        device = augment_pipe.p.device
        self.num_steps = 0
        self._signs = torch.zeros(2, device=device)  # [sum of signs, count] since the last adjustment
        self._rt = torch.zeros([], device=device)

    @property
    def p(self) -> float:
        """The current strength (synchronises with the device)."""
        return float(self.pipe.p)

    @property
    def rt(self) -> float:
        """r_t measured at the last adjustment (synchronises with the device)."""
        return float(self._rt)

    def observe(self, real_logits: torch.Tensor) -> None:
        """Accumulate the signs of D's logits on (augmented) real images."""
        logits = real_logits.detach().float()
        self._signs, self._rt = self._signs.to(logits.device), self._rt.to(logits.device)
        self._signs += torch.stack([logits.sign().sum(), torch.tensor(float(logits.numel()), device=logits.device)])

    def step(self) -> bool:
        """Count one training step; adjust p on every `interval`-th one. Returns whether p was adjusted."""
        self.num_steps += 1
        if self.num_steps % self.interval != 0:
            return False
        signs = self._signs.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(signs)
        have = signs[1] > 0
        self._rt = torch.where(have, signs[0] / signs[1].clamp(min=1), self._rt)
        rate = self.batch_size * self.interval / (self.kimg * 1000)
        adjust = torch.sign(self._rt - self.target) * rate * have
        self.pipe.p.copy_((self.pipe.p + adjust.to(self.pipe.p)).clamp(min=0))
        self._signs.zero_()
        return True

    def state_dict(self) -> dict:
        """Everything needed to resume exactly: p, r_t, the step count and the pending sign statistics."""
        return {
            "p": self.pipe.p.detach().cpu().clone(),
            "rt": self._rt.detach().cpu().clone(),
            "signs": self._signs.detach().cpu().clone(),
            "num_steps": self.num_steps,
            "target": self.target,
            "interval": self.interval,
            "kimg": self.kimg,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()`; p goes back into the pipe."""
        self.pipe.p.copy_(state["p"])
        self._rt = state["rt"].to(self._rt.device).clone()
        self._signs = state["signs"].to(self._signs.device).clone()
        self.num_steps = int(state["num_steps"])
        self.target, self.interval = float(state["target"]), int(state["interval"])
        self.kimg, self.batch_size = float(state["kimg"]), int(state["batch_size"])


# ---- helpers -----------------------------------------------------------------------------------------------


_BICUBIC, _REFLECTION = 2, 2  # aten's interpolation_mode and padding_mode codes


def grid_sample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """F.grid_sample (bicubic, reflection, align_corners=False) with a second derivative in x.

    PyTorch's CUDA kernel has no derivative of grid_sampler_2d_backward, which R1 on augmented reals needs.
    The grid here is a constant (random transforms, no gradient), so the op is linear in x: y = A x. Its
    gradient is A^T g (aten's backward kernel) and the gradient of that, in g, is A again.
    """
    return _GridSample.apply(x, grid.detach())


class _GridSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, grid):
        ctx.save_for_backward(grid)
        ctx.x_shape = x.shape
        return F.grid_sample(x, grid, mode="bicubic", padding_mode="reflection", align_corners=False)

    @staticmethod
    def backward(ctx, grad_y):
        (grid,) = ctx.saved_tensors
        return _GridSampleTransposed.apply(grad_y, grid, ctx.x_shape), None


class _GridSampleTransposed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_y, grid, x_shape):
        ctx.save_for_backward(grid)
        like = grad_y.new_empty(x_shape)  # only its shape and dtype are read
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(
            grad_y, like, grid, _BICUBIC, _REFLECTION, False, [True, False]
        )
        return grad_x

    @staticmethod
    def backward(ctx, grad_grad_x):
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(grad_grad_x, grid), None, None


def _kw(like: torch.Tensor) -> dict:
    return {"device": like.device, "dtype": like.dtype}


def _chosen(rnd: _Random, N: int, prob, value: torch.Tensor, identity: float = 0.0, *, flag: bool = False):
    """`value` where a uniform draw < prob (per sample), else `identity`; with `flag`, also the mask [N]."""
    on = rnd.rand(N).reshape([N] + [1] * (value.ndim - 1)) < prob
    out = torch.where(on, value, torch.full_like(value, identity))
    return (out, on.reshape(N)) if flag else out


def _centred_grid(H: int, W: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates relative to the image centre, u (x) and v (y), each [H, W]."""
    v = torch.arange(H, **_kw(like)) - (H - 1) / 2
    u = torch.arange(W, **_kw(like)) - (W - 1) / 2
    return u[None, :].expand(H, W), v[:, None].expand(H, W)


def _reflect_index(i: torch.Tensor, n: int) -> torch.Tensor:
    """Reflect integer indices into [0, n) without repeating the edge pixel (numpy's 'reflect'), any reach."""
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


def _reflect_pad(x: torch.Tensor, px: int, py: int) -> torch.Tensor:
    """Pad x [N, C, H, W] by px columns and py rows on each side by reflection, even past the image size."""
    H, W = x.shape[2:]
    if px < W and py < H:
        return F.pad(x, (px, px, py, py), mode="reflect")
    rows = _reflect_index(torch.arange(-py, H + py, device=x.device), H)
    cols = _reflect_index(torch.arange(-px, W + px, device=x.device), W)
    return x.index_select(2, rows).index_select(3, cols)


def _on_subset(x: torch.Tensor, active: torch.Tensor, fn) -> torch.Tensor:
    """fn(x[idx], idx) for the active samples only; the others pass through untouched.

    Reading the mask synchronises with the device once; in exchange no work is spent on samples that the
    stage leaves alone (most of them while p is small).
    """
    idx = torch.nonzero(active).squeeze(1)
    if idx.numel() == 0:
        return x
    if idx.numel() == x.shape[0]:
        return fn(x, idx)
    return x.index_copy(0, idx, fn(x.index_select(0, idx), idx))


def _scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(sx.shape[0], 3, 3, device=sx.device, dtype=sx.dtype)
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = sx, sy, 1
    return m


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    m = _scale2d(torch.cos(theta), torch.cos(theta))
    m[:, 0, 1], m[:, 1, 0] = -torch.sin(theta), torch.sin(theta)
    return m


def _translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _scale2d(torch.ones_like(tx), torch.ones_like(tx))
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _translate3d(b: torch.Tensor) -> torch.Tensor:
    m = torch.eye(4, device=b.device, dtype=b.dtype).repeat(b.shape[0], 1, 1)
    m[:, :3, 3] = b[:, None]
    return m


def _scale3d(c: torch.Tensor) -> torch.Tensor:
    m = torch.eye(4, device=c.device, dtype=c.dtype).repeat(c.shape[0], 1, 1)
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = c, c, c
    return m


def _embed3(m3: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] (or [3, 3]) linear colour map -> [N, 4, 4] homogeneous matrix."""
    m3 = m3 if m3.ndim == 3 else m3[None]
    m = torch.eye(4, device=m3.device, dtype=m3.dtype).repeat(m3.shape[0], 1, 1)
    m[:, :3, :3] = m3
    return m


def _rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta [N] about the unit vector axis [3] (Rodrigues), [N, 3, 3]."""
    K = torch.zeros(3, 3, device=axis.device, dtype=axis.dtype)
    K[0, 1], K[0, 2], K[1, 2] = -axis[2], axis[1], -axis[0]
    K = K - K.T  # cross-product matrix of the axis
    s, c = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    return torch.eye(3, device=axis.device, dtype=axis.dtype) + s * K + (1 - c) * (K @ K)


def _lowpass(taps: int, cutoff: float, beta: float = 8.0) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass, cutoff in cycles per sample, unit DC gain, [taps] float64."""
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, beta)
    return torch.tensor(h / h.sum(), dtype=torch.float64)


def _band_filters(taps: int) -> torch.Tensor:
    """4 band filters [4, taps] (low to high) that add up to a unit impulse."""
    lows = [_lowpass(taps, fc) for fc in _BAND_CUTOFFS]
    impulse = torch.zeros(taps, dtype=torch.float64)
    impulse[taps // 2] = 1
    edges = [torch.zeros(taps, dtype=torch.float64), *lows, impulse]
    return torch.stack([edges[i + 1] - edges[i] for i in range(4)])


def _decimate2(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Low-pass with the even-length filter f [K] and keep every 2nd pixel: [N, C, 2H, 2W] -> [N, C, H, W].

    As two matrix products with banded matrices that include the reflection at the borders: BLAS runs these
    much faster than a one-channel strided convolution on CPU, and they work for any image size.
    """
    return _decimation_matrix(f, x.shape[2]) @ x @ _decimation_matrix(f, x.shape[3]).T


def _decimation_matrix(f: torch.Tensor, n: int) -> torch.Tensor:
    """[n // 2, n] matrix: output j = sum_k f[k] * input[reflect(2j - K/2 + 1 + k)]."""
    K = f.numel()
    j = torch.arange(n // 2, device=f.device)[:, None].expand(n // 2, K)
    i = _reflect_index(2 * j - (K // 2 - 1) + torch.arange(K, device=f.device)[None, :], n)
    D = torch.zeros(n // 2, n, device=f.device, dtype=f.dtype)
    return D.index_put_((j, i), f[None, :].expand(n // 2, K), accumulate=True)


def _separable_filter(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Filter image n with taps[n] (odd length) along x then y, reflection padding. [N, C, H, W] -> same."""
    N, C, H, W = x.shape
    pad = taps.shape[1] // 2
    weight = taps.repeat_interleave(C, dim=0)[:, None, None, :]  # [N*C, 1, 1, K]
    y = _reflect_pad(x, pad, 0).reshape(1, N * C, H, W + 2 * pad)
    y = F.conv2d(y, weight, groups=N * C)
    y = _reflect_pad(y.reshape(N, C, H, W), 0, pad).reshape(1, N * C, H + 2 * pad, W)
    y = F.conv2d(y, weight.transpose(2, 3), groups=N * C)
    return y.reshape(N, C, H, W)

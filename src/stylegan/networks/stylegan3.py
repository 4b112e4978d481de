"""StyleGAN3, the alias-free generator (Karras et al. 2021, "Alias-Free Generative Adversarial Networks").

The synthesis network treats every feature map as samples of a continuous, band-limited signal. It starts from
Fourier features (sinusoids of fixed frequencies inside the first layer's band limit) that w rotates and
translates, then runs `num_layers` layers that each: modulate a convolution, up-sample the result to a higher
sampling rate, apply a leaky ReLU there, low-pass filter it and down-sample it again (the filtered leaky ReLU).
Per layer, the cutoff f_c grows geometrically from `first_cutoff` to half the output resolution, the stop band
f_t from `first_stopband` to `last_stopband_rel` times that; the sampling rate is the smallest power of two at
least 2 f_t (capped at the output resolution), and the transition band (half-width) is as wide as that sampling
rate allows. The last `num_critical` layers are critically sampled (f_c = s / 2). Feature maps carry a margin of
`margin_size` pixels around the visible canvas, dropped by the last layers. ToRGB is a modulated 1x1 conv.

Config T uses 3x3 convs and separable Kaiser filters; config R (rotation equivariant) uses 1x1 convs and radially
symmetric down-sampling filters outside the critically sampled layers.

Parameter and buffer names are those of NVIDIA's stylegan3 state dicts (layers are named L{i}_{size}_{channels}),
and the call conventions match: `G(z, c, truncation_psi, truncation_cutoff)`, `G.mapping`, `G.synthesis(ws)`,
`G.synthesis.input.transform` (a 3x3 matrix applied to the input coordinates: translation and rotation).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from stylegan.device import activation_format, block_dtype
from stylegan.networks.base import StyleGenerator, check_noise_mode, check_resolution, check_ws
from stylegan.networks.stylegan2 import MappingConfig, MappingNetwork
from stylegan.nn import winograd
from stylegan.nn.conv import modulated_conv2d
from stylegan.nn.filter_design import lowpass_filter
from stylegan.nn.filtered_lrelu import filtered_lrelu
from stylegan.nn.layers import FullyConnectedLayer

LRELU_GAIN = math.sqrt(2)


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to build a StyleGAN3 generator (NVIDIA's Generator kwargs, flattened; same defaults)."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.998
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14
    num_critical: int = 2
    first_cutoff: float = 2.0
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10
    output_scale: float = 0.25
    num_fp16_res: int = 4
    conv_kernel: int = 3
    filter_size: int = 6
    lrelu_upsampling: int = 2
    use_radial_filters: bool = False
    conv_clamp: float | None = 256
    magnitude_ema_beta: float = 0.999
    family: str = field(default="stylegan3", init=False)

    def __post_init__(self):
        check_resolution(self.img_resolution)
        if min(self.w_dim, self.img_channels, self.channel_base, self.channel_max, self.num_layers) <= 0:
            raise ValueError("w_dim, img_channels, channel_base, channel_max and num_layers must be positive")
        if min(self.z_dim, self.c_dim, self.mapping_layers) < 0 or self.z_dim + self.c_dim == 0:
            raise ValueError("z_dim and c_dim must be >= 0 and not both 0; mapping_layers >= 0")
        if not 0 <= self.num_critical < self.num_layers:
            raise ValueError(f"num_critical must be in [0, num_layers), got {self.num_critical}")
        if self.conv_kernel < 1 or self.filter_size < 1 or self.lrelu_upsampling < 1 or self.margin_size < 0:
            raise ValueError("conv_kernel, filter_size and lrelu_upsampling must be >= 1; margin_size >= 0")
        if not 0 < self.first_cutoff < self.first_stopband:
            raise ValueError("need 0 < first_cutoff < first_stopband")
        if self.last_stopband_rel < 1 or not 0 <= self.magnitude_ema_beta <= 1:
            raise ValueError("last_stopband_rel must be >= 1 and magnitude_ema_beta in [0, 1]")

    @property
    def num_ws(self) -> int:
        """One w for the input, one per layer, one for ToRGB."""
        return self.num_layers + 2

    def mapping_config(self) -> MappingConfig:
        return MappingConfig(
            z_dim=self.z_dim,
            c_dim=self.c_dim,
            w_dim=self.w_dim,
            num_ws=self.num_ws,
            num_layers=self.mapping_layers,
            lr_multiplier=self.mapping_lr_multiplier,
            w_avg_beta=self.w_avg_beta,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def preset_config(name: str, img_resolution: int, *, batch: int = 32, **overrides) -> GeneratorConfig:
    """NVIDIA's train.py rules for `--cfg stylegan3-t` / `stylegan3-r` (before `--cbase/--cmax` overrides).

    Both use a 2-layer mapping and magnitude_ema_beta = 0.5 ** (batch / 20k). R uses 1x1 convs and radial filters
    and doubles channel_base and channel_max (also when they are given in overrides, as train.py does).
    """
    if name not in ("stylegan3-t", "stylegan3-r"):
        raise ValueError(f"unknown StyleGAN3 preset {name!r}; use stylegan3-t or stylegan3-r")
    kw = {"img_resolution": img_resolution, "magnitude_ema_beta": 0.5 ** (batch / 20000), **overrides}
    cfg = GeneratorConfig(**kw)
    if name == "stylegan3-r":
        cfg = replace(
            cfg,
            conv_kernel=1,
            use_radial_filters=True,
            channel_base=cfg.channel_base * 2,
            channel_max=cfg.channel_max * 2,
        )
    return cfg


# ----------------------------------------------------------------------------------------------------------------
# Layer schedule


@dataclass(frozen=True)
class LayerSpec:
    """Where a synthesis layer sits in the frequency schedule (index i of the per-layer arrays)."""

    sampling_rate: float
    cutoff: float
    half_width: float
    size: int
    channels: int


def layer_schedule(cfg: GeneratorConfig) -> list[LayerSpec]:
    """The num_layers + 1 points of the schedule: [0] is the input, [i] the output of layer i (the last is ToRGB).

    f_c and f_t go geometrically from the first to the last values over the first num_layers - num_critical
    layers and stay there; s = 2^ceil(log2(2 f_t)) capped at the resolution; half-width = max(f_t, s/2) - f_c.
    """
    last_cutoff = cfg.img_resolution / 2
    last_stopband = last_cutoff * cfg.last_stopband_rel
    t = np.minimum(np.arange(cfg.num_layers + 1) / (cfg.num_layers - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** t
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** t
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, cfg.img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + cfg.margin_size * 2
    sizes[-2:] = cfg.img_resolution  # the last layer and ToRGB run on the visible canvas only
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = cfg.img_channels
    return [
        LayerSpec(float(s), float(c), float(h), int(n), int(ch))
        for s, c, h, n, ch in zip(rates, cutoffs, half_widths, sizes, channels, strict=True)
    ]


# ----------------------------------------------------------------------------------------------------------------
# Input: Fourier features


def make_transform(translate: tuple[float, float] = (0, 0), angle: float = 0) -> torch.Tensor:
    """3x3 matrix rotating by `angle` degrees, then translating (in units of the output canvas, [-0.5, 0.5]).

    NVIDIA's gen_images.py sets `G.synthesis.input.transform` to the inverse of this matrix, so that the image
    content moves by +translate and turns by +angle.
    """
    a = math.radians(angle)
    return torch.tensor(
        [[math.cos(a), math.sin(a), translate[0]], [-math.sin(a), math.cos(a), translate[1]], [0, 0, 1]],
        dtype=torch.float32,
    )


class SynthesisInput(nn.Module):
    """w -> Fourier features [N, channels, size, size]: sinusoids of fixed frequencies, rotated and translated by w.

    Buffers: freqs [C, 2] (cycles per unit length, inside the band limit), phases [C], transform [3, 3] (applied
    to the sampling coordinates, identity by default). The affine layer maps w to (cos, sin, tx, ty); the
    rotation part is normalised to unit length. A learned [C, C] matrix mixes the features.
    """

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, size
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():  # identity transform at init: no rotation, no translation
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", _random_frequencies(channels, bandwidth))
        self.register_buffer("phases", torch.rand([channels]) - 0.5)

    def coordinates(self, device: torch.device) -> torch.Tensor:
        """Pixel-centre coordinates [size] in units of 1 / sampling_rate, centred on the canvas."""
        u = torch.arange(self.size, device=device, dtype=self.freqs.dtype)
        return (u + 0.5 - self.size / 2) / self.sampling_rate

    def per_sample_transform(self, w: torch.Tensor) -> torch.Tensor:
        """[N, 3, 3]: rotation(w) @ translation(w) @ transform."""
        t = self.affine(w)  # [N, 4]: (cos, sin, tx, ty) up to scale
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        cos, sin, tx, ty = t.unbind(1)
        zero, one = torch.zeros_like(cos), torch.ones_like(cos)
        rotation = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], 1).view(-1, 3, 3)
        translation = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], 1).view(-1, 3, 3)
        return rotation @ translation @ self.transform.unsqueeze(0)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, w_dim] -> [N, channels, size, size] float32."""
        m = self.per_sample_transform(w)
        freqs = self.freqs.unsqueeze(0) @ m[:, :2, :2]  # [N, C, 2]: frequencies in transformed coordinates
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ m[:, :2, 2:]).squeeze(2)  # [N, C]
        # Fade out frequencies that the transform pushed beyond the band the sampling rate can carry.
        reach = self.sampling_rate / 2 - self.bandwidth
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / reach).clamp(0, 1)  # [N, C]
        u = self.coordinates(w.device)
        cycles = (
            u.view(1, 1, -1, 1) * freqs[:, None, None, :, 0]  # x varies along W
            + u.view(1, -1, 1, 1) * freqs[:, None, None, :, 1]  # y varies along H
            + phases[:, None, None, :]
        )  # [N, H, W, C]
        features = torch.sin(cycles * (2 * math.pi)) * amplitudes[:, None, None, :]
        mixed = features @ (self.weight / math.sqrt(self.channels)).t()  # [N, H, W, C], NHWC in memory
        return mixed.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        rate, band = self.sampling_rate, self.bandwidth
        return f"channels={self.channels}, size={self.size}, sampling_rate={rate:g}, bandwidth={band:g}"


def _random_frequencies(channels: int, bandwidth: float) -> torch.Tensor:
    """[C, 2] random directions; radii concentrated inside `bandwidth` (radius r -> r / exp(r^2 / 4))."""
    freqs = torch.randn([channels, 2])
    radii = freqs.norm(dim=1, keepdim=True)
    return freqs / (radii * (radii.square() / 4).exp()) * bandwidth


# ----------------------------------------------------------------------------------------------------------------
# Synthesis layers


class SynthesisLayer(nn.Module):
    """Modulated conv (kernel conv_kernel, 1 for ToRGB), then the filtered leaky ReLU between two sampling rates.

    The input is divided by the running RMS of the layer's inputs (`magnitude_ema`, updated in training), so the
    modulated conv sees unit-magnitude features. ToRGB: no demodulation, a linear activation, no filtering.
    """

    def __init__(
        self, cfg: GeneratorConfig, index: int, spec_in: LayerSpec, spec_out: LayerSpec, is_torgb: bool = False
    ):
        super().__init__()
        self.is_torgb = is_torgb
        self.is_critically_sampled = index >= cfg.num_layers - cfg.num_critical
        self.use_fp16 = spec_in.sampling_rate * 2**cfg.num_fp16_res > cfg.img_resolution
        self.in_channels, self.out_channels = spec_in.channels, spec_out.channels
        self.in_size, self.out_size = spec_in.size, spec_out.size
        self.conv_kernel = 1 if is_torgb else cfg.conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = cfg.conv_clamp, cfg.magnitude_ema_beta
        self.affine = FullyConnectedLayer(cfg.w_dim, self.in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn([self.out_channels, self.in_channels, self.conv_kernel, self.conv_kernel])
        )
        self.bias = nn.Parameter(torch.zeros([self.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self._init_filters(cfg, spec_in, spec_out)

    def _init_filters(self, cfg: GeneratorConfig, spec_in: LayerSpec, spec_out: LayerSpec) -> None:
        """Up-sample from the input rate to lrelu_upsampling x the higher rate; down-sample to the output rate."""
        oversample = 1 if self.is_torgb else cfg.lrelu_upsampling
        tmp_rate = max(spec_in.sampling_rate, spec_out.sampling_rate) * oversample
        self.up_factor = round(tmp_rate / spec_in.sampling_rate)
        self.down_factor = round(tmp_rate / spec_out.sampling_rate)
        up_taps = cfg.filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        down_taps = cfg.filter_size * self.down_factor if self.down_factor > 1 and not self.is_torgb else 1
        radial = cfg.use_radial_filters and not self.is_critically_sampled
        up = lowpass_filter(up_taps, spec_in.cutoff, spec_in.half_width * 2, tmp_rate)
        down = lowpass_filter(down_taps, spec_out.cutoff, spec_out.half_width * 2, tmp_rate, radial=radial)
        self.register_buffer("up_filter", up)  # None (no buffer in the state dict) when there is no filtering
        self.register_buffer("down_filter", down)
        self.padding = self._padding(up_taps, down_taps)

    def _padding(self, up_taps: int, down_taps: int) -> list[int]:
        """Padding (x0, x1, y0, y1) of the up-sampled conv output so that down-sampling yields out_size.

        The conv output (in_size + k - 1, 'full' convolution) up-sampled and padded must hold
        (out_size - 1) * down + 1 samples after both filters; the extra samples are split with the larger part first.
        """
        needed = (self.out_size - 1) * self.down_factor + 1 + up_taps - 1 + down_taps - 1
        total = needed - (self.in_size + self.conv_kernel - 1) * self.up_factor
        first = (total + self.up_factor) // 2
        return [first, total - first, first, total - first]

    def forward(self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False, force_fp32: bool = False):
        """x [N, in_channels, in_size, in_size], w [N, w_dim] -> [N, out_channels, out_size, out_size]."""
        if update_emas:
            with torch.no_grad():
                magnitude = x.detach().float().square().mean()
                self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = torch.rsqrt(self.magnitude_ema)  # 1 / running RMS of the input
        styles = self.affine(w)  # [N, in_channels]
        dtype = block_dtype(self.use_fp16, x.device, force_fp32=force_fp32)
        dtype = dtype if dtype == torch.float16 else self.weight.dtype  # fp32, or fp64 for numerical checks
        x = x.to(dtype=dtype, memory_format=activation_format(x.device))
        if self.is_torgb:  # no demodulation: equalised lr and the input gain go into the styles
            styles = styles * (input_gain / math.sqrt(self.in_channels * self.conv_kernel**2))
            x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        elif self.conv_kernel == 1 and _onednn_pointwise_applies(x, self.weight, styles):
            x = _pointwise_modulated(x, self.weight, styles, input_gain.item(), self.bias)
        else:  # demodulation cancels any scale of the styles: the input gain scales the output (with d, in place)
            gain = input_gain.item()  # (y + bias / gain) * gain: the bias is added by the convolution too
            x = modulated_conv2d(x, self.weight, styles, padding=self.conv_kernel - 1, bias=self.bias / gain, gain=gain)
        return filtered_lrelu(
            x,
            self.up_filter,
            self.down_filter,
            self.bias if self.is_torgb else None,
            up=self.up_factor,
            down=self.down_factor,
            padding=self.padding,
            gain=1 if self.is_torgb else LRELU_GAIN,
            slope=1 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}x{self.in_size}, out={self.out_channels}x{self.out_size}, "
            f"up={self.up_factor}, down={self.down_factor}, torgb={self.is_torgb}, "
            f"critical={self.is_critically_sampled}"
        )


def _onednn_pointwise_applies(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor) -> bool:
    """Float32 CPU inference, where oneDNN's matmul runs the 1x1 convolutions of config R about twice as fast as
    torch.addmm (MKL takes a narrower vector path on AMD CPUs; measured 2x at 1024 channels on 148²)."""
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or styles.requires_grad)
    fp32_cpu = x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
    return winograd.ONEDNN_LINEAR and fp32_cpu and not needs_grad


def _pointwise_modulated(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, gain: float, bias: torch.Tensor
) -> torch.Tensor:
    """Demodulated 1x1 convolution times gain, plus bias, one image at a time as a matrix product over pixels.

    x [N, C_in, H, W], weight [C_out, C_in, 1, 1], styles [N, C_in] -> [N, C_out, H, W] channels_last. Per image,
    the weight w[o, i] * s[i] * d[o] * gain with d[o] = (sum_i (w[o, i] s[i])² + 1e-8)^-1/2 multiplies the pixels.
    """
    kernel = weight[:, :, 0, 0]  # [C_out, C_in]
    scales = torch.rsqrt(styles.square() @ kernel.square().t() + 1e-8) * gain  # [N, C_out]: d * gain
    n, c_in, height, width = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(n, height * width, c_in)  # a view when x is channels_last
    bias = (bias / gain) * gain  # rounded as modulated_conv2d rounds it
    outs = [winograd.gemm(pixels[i], kernel * (styles[i][None, :] * scales[i][:, None]), bias) for i in range(n)]
    out = outs[0][None] if n == 1 else torch.stack(outs)
    return out.view(n, height, width, -1).permute(0, 3, 1, 2)


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R]: input, num_layers layers, ToRGB, output_scale."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = cfg.w_dim, cfg.img_resolution, cfg.img_channels
        self.num_ws, self.output_scale = cfg.num_ws, cfg.output_scale
        specs = layer_schedule(cfg)
        first = specs[0]
        self.input = SynthesisInput(cfg.w_dim, first.channels, first.size, first.sampling_rate, first.cutoff)
        self.layer_names = []
        for i in range(cfg.num_layers + 1):
            spec_in, spec_out = specs[max(i - 1, 0)], specs[i]
            name = f"L{i}_{spec_out.size}_{spec_out.channels}"
            self.add_module(name, SynthesisLayer(cfg, i, spec_in, spec_out, is_torgb=i == cfg.num_layers))
            self.layer_names.append(name)

    def layers(self) -> list[SynthesisLayer]:
        return [self.get_submodule(name) for name in self.layer_names]

    def forward(
        self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool = False, update_emas: bool = False
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> img [N, img_channels, R, R] float32. noise_mode is accepted and ignored."""
        check_ws(ws, self.num_ws, self.w_dim)
        check_noise_mode(noise_mode)  # StyleGAN3 has no noise inputs; the argument is kept for the common interface
        w_each = ws.to(self.input.weight.dtype).unbind(1)
        x = self.input(w_each[0])
        for layer, w in zip(self.layers(), w_each[1:], strict=True):
            x = layer(x, w, update_emas=update_emas, force_fp32=force_fp32)
        x = x.to(torch.promote_types(x.dtype, torch.float32))
        return x * self.output_scale if self.output_scale != 1 else x


class Generator(StyleGenerator):
    """G(z, c) = synthesis(mapping(z, c)) for StyleGAN3 configs T and R."""

    def __init__(self, config: GeneratorConfig):
        super().__init__(config, SynthesisNetwork(config), MappingNetwork(config.mapping_config()))


def set_transform(G: nn.Module, translate: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> None:
    """Moves the content of every image G makes by `translate` (canvas units) and turns it by `angle` degrees.

    Sets `G.synthesis.input.transform` to the inverse of `make_transform(translate, angle)`, as NVIDIA's
    gen_images.py does. Raises ValueError for a generator without a StyleGAN3 input layer.
    """
    layer = getattr(getattr(G, "synthesis", None), "input", None)
    if not isinstance(layer, SynthesisInput):
        raise ValueError("translate/rotate need a StyleGAN3 generator (its input layer takes the transform)")
    with torch.no_grad():
        layer.transform.copy_(torch.linalg.inv(make_transform(translate, angle)))

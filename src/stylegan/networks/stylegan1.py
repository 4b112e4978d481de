"""StyleGAN (Karras, Laine, Aila 2019): the paper's style-based generator and its discriminator.

The maths follows the official TensorFlow networks (`G_style`, `G_mapping`, `G_synthesis`, `D_basic`) at their
final, fixed-resolution structure, so converted TF weights give the same images:

- equalised learning rate with the He gain inside the weight (`weight_gain = gain / sqrt(fan_in) * lr_mul`,
  gain sqrt(2) for lrelu layers, 1 for styles and ToRGB) and a plain leaky ReLU after it;
- a synthesis layer is: [conv (upsampling: nearest + conv, or fused transposed conv at >= 128², then [1,2,1]
  blur)], noise * per-channel strength, bias, lrelu, instance norm (eps 1e-8), AdaIN `x * (s + 1) + b`;
- the discriminator blurs before each downsampling conv (fused strided conv at >= 128², else conv + 2x2 box).

Call conventions are NVIDIA's, as in `stylegan2`: `G(z, c, truncation_psi, truncation_cutoff, noise_mode)`,
`G.mapping(z, c) -> ws [N, num_ws, w_dim]`, `G.synthesis(ws) -> img`, `D(img, c) -> [N, 1]`. The paper's
truncation (psi 0.7 on the first 8 ws) is the default of `G.generate`, never of `G.forward`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from stylegan.networks.base import (
    StyleGenerator,
    add_stages,
    check_noise_mode,
    check_resolution,
    check_ws,
    stages,
    track_mean,
    truncate,
)
from stylegan.nn.bias_act import bias_act
from stylegan.nn.conv import conv2d, conv2d_resample
from stylegan.nn.layers import FullyConnectedLayer, MinibatchStdLayer, normalize_2nd_moment
from stylegan.nn.upfirdn2d import filter2d, setup_filter

ACTIVATIONS = ("lrelu", "relu")
FUSED_THRESHOLD = 128  # the official 'auto': fused resampling convs for layers at >= 128²


def _check_common(img_resolution: int, fused_scale, activation: str) -> None:
    check_resolution(img_resolution)
    if fused_scale not in ("auto", True, False):
        raise ValueError(f"fused_scale must be 'auto', True or False, got {fused_scale!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def _filter_tuple(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values) if values else ()


@dataclass(frozen=True)
class GeneratorConfig:
    """The paper's generator (G_style kwargs, flattened). Channels at resolution r: nf(log2(r) - 1) with
    nf(stage) = min(fmap_base / 2^(stage * fmap_decay), fmap_max)."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_features: int = 512
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    blur_filter: tuple[float, ...] = (1, 2, 1)  # () = no blur
    fused_scale: bool | str = "auto"
    use_noise: bool = True
    activation: str = "lrelu"
    truncation_psi: float = 0.7  # defaults of G.generate (the paper's), not of G.forward
    truncation_cutoff: int | None = 8
    family: str = field(default="stylegan1", init=False)

    def __post_init__(self):
        _check_common(self.img_resolution, self.fused_scale, self.activation)
        if min(self.z_dim, self.w_dim, self.img_channels, self.mapping_layers, self.mapping_features) <= 0:
            raise ValueError("z_dim, w_dim, img_channels, mapping_layers and mapping_features must be positive")
        object.__setattr__(self, "blur_filter", _filter_tuple(self.blur_filter))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The paper's discriminator (D_basic kwargs, flattened). c_dim > 0: one output per class, picked by c."""

    c_dim: int = 0
    img_resolution: int = 1024
    img_channels: int = 3
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    mbstd_group_size: int = 4  # <= 1: no minibatch-stddev layer
    mbstd_num_channels: int = 1
    blur_filter: tuple[float, ...] = (1, 2, 1)
    fused_scale: bool | str = "auto"
    activation: str = "lrelu"
    family: str = field(default="stylegan1", init=False)

    def __post_init__(self):
        _check_common(self.img_resolution, self.fused_scale, self.activation)
        object.__setattr__(self, "blur_filter", _filter_tuple(self.blur_filter))

    def to_dict(self) -> dict:
        return asdict(self)


def nf(stage: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> int:
    """The official channel schedule: min(fmap_base / 2^(stage * fmap_decay), fmap_max)."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _res_channels(cfg, res: int) -> int:
    return nf(int(math.log2(res)) - 1, cfg.fmap_base, cfg.fmap_decay, cfg.fmap_max)


def _is_fused(fused_scale, res: int) -> bool:
    return res >= FUSED_THRESHOLD if fused_scale == "auto" else bool(fused_scale)


def _act(x: torch.Tensor, activation: str) -> torch.Tensor:
    return bias_act(x, act=activation, gain=1)  # the He gain lives in the weights, as in the TF code


def _dense(
    in_features: int, out_features: int, gain: float, lr_multiplier: float = 1.0, bias: bool = True
) -> FullyConnectedLayer:
    """Equalised-lr dense layer with TF's runtime coefficient gain / sqrt(fan_in) * lr_multiplier."""
    layer = FullyConnectedLayer(in_features, out_features, bias=bias, lr_multiplier=lr_multiplier)
    layer.weight_gain *= gain
    return layer


def _blur_buffer(module: nn.Module, blur_filter: tuple[float, ...]) -> None:
    # Normalised [1,2,1] x [1,2,1] / 16; not saved (TF files do not carry it either).
    module.register_buffer("blur", setup_filter(blur_filter) if blur_filter else None, persistent=False)


def padded_sum_kernel(w: torch.Tensor) -> torch.Tensor:
    """[O, I, k, k] -> [O, I, k+1, k+1]: zero-pad by one and add the four shifted copies: the official fused
    kernels. Down (x 1/4, stride 2) it is exactly conv then 2x2 box average; up (transposed, stride 2) it is
    nearest upscale then conv with the spatially flipped kernel, away from the border."""
    w = F.pad(w, [1, 1, 1, 1])
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample, per-channel zero mean and unit mean square over H, W (TF: eps inside the rsqrt)."""
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


class EqualConv2d(nn.Module):
    """3x3 / 1x1 conv with equalised lr and 'SAME' padding; `up`/`down` resample by 2 as the TF code does.

    up: nearest upscale then conv, or (fused) a stride-2 transposed conv with the padded-sum kernel.
    down: conv then 2x2 box average, or (fused) a stride-2 conv with the padded-sum kernel / 4.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        gain: float = math.sqrt(2),
        up: bool = False,
        down: bool = False,
        fused: bool = False,
        bias: bool = True,
    ):
        super().__init__()
        self.up, self.down, self.fused, self.padding = up, down, fused, kernel_size // 2
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)  # [O, I, k, k]
        if self.up and self.fused:  # TF conv2d_transpose, SAME, stride 2: adjoint of a stride-2 conv, pad 1
            x = conv2d(x, padded_sum_kernel(w).transpose(0, 1), stride=2, padding=1, transpose=True)
        elif self.down and self.fused:
            x = conv2d(x, padded_sum_kernel(w) * 0.25, stride=2, padding=1)
        else:
            if self.up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = conv2d_resample(x, w, padding=self.padding)
            if self.down:
                x = F.avg_pool2d(x, 2)  # TF downscale2d: 2x2 box average
        return x if self.bias is None else bias_act(x, self.bias.to(x.dtype))


# ----------------------------------------------------------------------------------------------------------
# Generator


class MappingNetwork(nn.Module):
    """w = MLP(pixel_norm([z, c @ E])) with `mapping_layers` dense + lrelu layers; tracks w_avg for truncation."""

    def __init__(self, cfg: GeneratorConfig, num_ws: int):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = cfg.z_dim, cfg.c_dim, cfg.w_dim, num_ws
        self.num_layers, self.activation, self.w_avg_beta = cfg.mapping_layers, cfg.activation, cfg.w_avg_beta
        if cfg.c_dim > 0:  # TF LabelConcat: c times a plain N(0, 1) matrix (no equalised lr), concatenated to z
            self.embed = FullyConnectedLayer(cfg.c_dim, cfg.z_dim, bias=False)
            self.embed.weight_gain = 1.0
        widths = [cfg.z_dim * (2 if cfg.c_dim else 1), *[cfg.mapping_features] * (cfg.mapping_layers - 1), cfg.w_dim]
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            self.add_module(f"fc{i}", _dense(fan_in, fan_out, math.sqrt(2), cfg.mapping_lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([cfg.w_dim]))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim]."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        w = z.float()
        if self.c_dim:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this network is conditional: c must be [N, {self.c_dim}] (one-hot labels)")
            w = torch.cat([w, self.embed(c.float())], dim=1)  # [N, 2 * z_dim]
        w = normalize_2nd_moment(w)
        for i in range(self.num_layers):
            w = _act(self.get_submodule(f"fc{i}")(w), self.activation)
        if update_emas:
            track_mean(self.w_avg, w, self.w_avg_beta)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1).contiguous()  # [N, num_ws, w_dim]
        return ws if truncation_psi == 1 else self.truncate(ws, truncation_psi, truncation_cutoff)

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi (w - w_avg) on the first `cutoff` ws (all when None)."""
        return truncate(ws, self.w_avg, psi, cutoff)


class SynthesisLayer(nn.Module):
    """[conv], noise, bias, activation, instance norm, AdaIN from w (in_channels = 0: the 4x4 constant, no conv)."""

    def __init__(self, cfg: GeneratorConfig, in_channels: int, out_channels: int, resolution: int, *, up: bool = False):
        super().__init__()
        self.resolution, self.use_noise, self.activation = resolution, cfg.use_noise, cfg.activation
        fused = up and _is_fused(cfg.fused_scale, resolution)
        self.conv = EqualConv2d(in_channels, out_channels, 3, up=up, fused=fused, bias=False) if in_channels else None
        _blur_buffer(self, cfg.blur_filter if up else ())
        if cfg.use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([out_channels]))  # TF Noise/weight, per channel
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.affine = _dense(cfg.w_dim, 2 * out_channels, gain=1)  # TF StyleMod: [scale - 1, bias]

    def _noise(self, x: torch.Tensor, noise_mode: str) -> torch.Tensor | None:
        """[N or 1, C, r, r] noise scaled per channel, or None."""
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            pixels = self.noise_const
        else:
            pixels = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
        return pixels * self.noise_strength.view(-1, 1, 1)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """x [N, C_in, r_in, r_in], w [N, w_dim] -> [N, C, r, r]."""
        if self.conv is not None:
            x = self.conv(x)
        if self.blur is not None:
            x = filter2d(x, self.blur)
        noise = self._noise(x, noise_mode)
        if noise is not None:
            x = x + noise
        x = instance_norm(_act(bias_act(x, self.bias), self.activation))
        scale, shift = self.affine(w).view(x.shape[0], 2, -1, 1, 1).unbind(1)  # 2 x [N, C, 1, 1]
        return x * (scale + 1) + shift


class SynthesisBlock(nn.Module):
    """One resolution: two layers (4x4: the constant + a conv; above: an up-sampling conv + a conv)."""

    def __init__(self, cfg: GeneratorConfig, resolution: int):
        super().__init__()
        self.resolution = resolution
        width = _res_channels(cfg, resolution)
        in_channels = 0 if resolution == 4 else _res_channels(cfg, resolution // 2)
        if in_channels == 0:
            self.const = nn.Parameter(torch.ones([width, resolution, resolution]))
        self.conv0 = SynthesisLayer(cfg, in_channels, width, resolution, up=in_channels > 0)
        self.conv1 = SynthesisLayer(cfg, width, width, resolution)

    def forward(self, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """x [N, C_in, r/2, r/2] (None at 4x4), ws [N, 2, w_dim] -> [N, C, r, r]."""
        if x is None:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)  # [N, C, 4, 4]
        return self.conv1(self.conv0(x, ws[:, 0], noise_mode), ws[:, 1], noise_mode)


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image; layer i (two per resolution) reads ws[:, i]; ToRGB at the end."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = cfg.w_dim, cfg.img_resolution, cfg.img_channels
        self.block_resolutions = [4 << i for i in range(int(math.log2(cfg.img_resolution)) - 1)]
        self.num_ws = 2 * len(self.block_resolutions)
        add_stages(self, self.block_resolutions, lambda res: SynthesisBlock(cfg, res))
        self.torgb = EqualConv2d(_res_channels(cfg, cfg.img_resolution), cfg.img_channels, 1, gain=1)

    def forward(
        self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False, update_emas: bool = False
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> img [N, img_channels, R, R] float32, roughly in [-1, 1].

        force_fp32 and update_emas are accepted for the common generator interface: this network always runs in
        fp32 and keeps no running statistics.
        """
        check_ws(ws, self.num_ws, self.w_dim)
        check_noise_mode(noise_mode)
        x = None
        for block, pair in zip(stages(self, self.block_resolutions), ws.float().split(2, dim=1), strict=True):
            x = block(x, pair, noise_mode)
        return self.torgb(x)


class Generator(StyleGenerator):
    """The paper's style-based generator: G(z, c) = synthesis(mapping(z, c)).

    The paper shows its images with truncation psi 0.7 on the first 8 ws: `config.truncation_psi` and
    `config.truncation_cutoff` record that, and the tools use them as this model's defaults; G itself, like
    NVIDIA's, does not truncate unless asked.
    """

    def __init__(self, config: GeneratorConfig | None = None, **kwargs):
        cfg = config if config is not None else GeneratorConfig(**kwargs)
        synthesis = SynthesisNetwork(cfg)
        super().__init__(cfg, synthesis, MappingNetwork(cfg, synthesis.num_ws))


# ----------------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """[fromRGB at the top], conv0, blur, downsampling conv1 (fused at >= 128²)."""

    def __init__(self, cfg: DiscriminatorConfig, resolution: int, is_top: bool):
        super().__init__()
        self.activation = cfg.activation
        ch, ch_down = _res_channels(cfg, resolution), _res_channels(cfg, resolution // 2)
        if is_top:
            self.fromrgb = EqualConv2d(cfg.img_channels, ch, 1)
        self.conv0 = EqualConv2d(ch, ch, 3)
        _blur_buffer(self, cfg.blur_filter)
        self.conv1 = EqualConv2d(ch, ch_down, 3, down=True, fused=_is_fused(cfg.fused_scale, resolution))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "fromrgb"):
            x = _act(self.fromrgb(x), self.activation)
        x = _act(self.conv0(x), self.activation)
        if self.blur is not None:
            x = filter2d(x, self.blur)
        return _act(self.conv1(x), self.activation)


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch stddev, conv, dense, output dense (one score per class when conditional)."""

    def __init__(self, cfg: DiscriminatorConfig, is_top: bool):
        super().__init__()
        self.activation = cfg.activation
        ch = _res_channels(cfg, 4)
        if is_top:
            self.fromrgb = EqualConv2d(cfg.img_channels, ch, 1)
        use_mbstd = cfg.mbstd_group_size > 1
        self.mbstd = MinibatchStdLayer(cfg.mbstd_group_size, cfg.mbstd_num_channels) if use_mbstd else None
        self.conv = EqualConv2d(ch + (cfg.mbstd_num_channels if use_mbstd else 0), ch, 3)
        features = nf(0, cfg.fmap_base, cfg.fmap_decay, cfg.fmap_max)
        self.fc = _dense(ch * 16, features, gain=math.sqrt(2))
        self.out = _dense(features, max(cfg.c_dim, 1), gain=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "fromrgb"):
            x = _act(self.fromrgb(x), self.activation)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = _act(self.conv(x), self.activation)
        x = _act(self.fc(x.flatten(1)), self.activation)  # [N, features]
        return self.out(x)  # [N, max(c_dim, 1)]


class Discriminator(nn.Module):
    """The paper's discriminator (D_basic, fixed structure): D(img, c) -> logits [N, 1]."""

    def __init__(self, config: DiscriminatorConfig | None = None, **kwargs):
        super().__init__()
        cfg = config if config is not None else DiscriminatorConfig(**kwargs)
        self.config = cfg
        self.c_dim, self.img_resolution, self.img_channels = cfg.c_dim, cfg.img_resolution, cfg.img_channels
        self.block_resolutions = [cfg.img_resolution >> i for i in range(int(math.log2(cfg.img_resolution)) - 2)]
        add_stages(self, self.block_resolutions, lambda res: DiscriminatorBlock(cfg, res, res == cfg.img_resolution))
        self.b4 = DiscriminatorEpilogue(cfg, is_top=cfg.img_resolution == 4)

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, update_emas: bool = False, force_fp32: bool = False
    ) -> torch.Tensor:
        """img [N, img_channels, R, R], c [N, c_dim] -> logits [N, 1].

        update_emas and force_fp32 are accepted for the common interface (no running statistics; always fp32).
        """
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"img must have shape [N, {', '.join(map(str, expected))}], got {list(img.shape)}")
        x = img.float()
        for block in stages(self, self.block_resolutions):
            x = block(x)
        scores = self.b4(x)  # [N, max(c_dim, 1)]
        if not self.c_dim:
            return scores
        return (scores * c.to(scores.dtype)).sum(dim=1, keepdim=True)  # TF LabelSwitch: the labelled class


# ----------------------------------------------------------------------------------------------------------
# Presets: the paper's released networks differ only in resolution (fmap_base 8192, fmap_max 512).

PRESETS: dict[str, int] = {"ffhq1024": 1024, "celebahq1024": 1024, "lsun256": 256, "lsun512": 512}


def preset_configs(
    name: str, *, img_channels: int = 3, c_dim: int = 0, **overrides
) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """Generator and discriminator configs of a paper preset.

    `overrides` may set img_resolution, fmap_base, fmap_max, z_dim, w_dim, mapping_layers, mapping_features,
    fused_scale or mbstd_group_size (e.g. for tiny test networks).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown stylegan1 preset {name!r}; choose one of {', '.join(PRESETS)}")
    shared = {k: overrides.pop(k) for k in ("img_resolution", "fmap_base", "fmap_max", "fused_scale") if k in overrides}
    shared.setdefault("img_resolution", PRESETS[name])
    d_only = {k: overrides.pop(k) for k in ("mbstd_group_size",) if k in overrides}
    g_only = {k: overrides.pop(k) for k in ("z_dim", "w_dim", "mapping_layers", "mapping_features") if k in overrides}
    if overrides:
        raise ValueError(f"unknown overrides: {sorted(overrides)}")
    common = dict(img_channels=img_channels, c_dim=c_dim, **shared)
    return GeneratorConfig(**common, **g_only), DiscriminatorConfig(**common, **d_only)

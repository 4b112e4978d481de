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

from stylegan.nn.bias_act import bias_act
from stylegan.nn.conv import conv2d, conv2d_resample
from stylegan.nn.layers import FullyConnectedLayer, MinibatchStdLayer, normalize_2nd_moment
from stylegan.nn.upfirdn2d import filter2d, setup_filter

ACTIVATIONS = ("lrelu", "relu")
FUSED_THRESHOLD = 128  # the official 'auto': fused resampling convs for layers at >= 128²


def _check_common(img_resolution: int, fused_scale, activation: str) -> None:
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
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
    """z (+ c through LabelConcat) -> pixel norm -> `num_layers` dense + lrelu -> w, tracking w_avg."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 8,
        layer_features: int = 512,
        lr_multiplier: float = 0.01,
        activation: str = "lrelu",
        w_avg_beta: float = 0.995,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.activation, self.w_avg_beta = num_layers, activation, w_avg_beta
        if c_dim > 0:  # TF LabelConcat: c times a plain N(0, 1) matrix (no equalised lr), concatenated to z
            self.embed = FullyConnectedLayer(c_dim, z_dim, bias=False)
            self.embed.weight_gain = 1.0
        features = [z_dim * (2 if c_dim > 0 else 1)] + [layer_features] * (num_layers - 1) + [w_dim]
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", _dense(features[idx], features[idx + 1], math.sqrt(2), lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim]."""
        x = z.to(torch.float32)
        if self.c_dim > 0:
            x = torch.cat([x, self.embed(c.to(torch.float32))], dim=1)  # [N, 2 * z_dim]
        x = normalize_2nd_moment(x)
        for idx in range(self.num_layers):
            x = _act(getattr(self, f"fc{idx}")(x), self.activation)  # [N, features]
        if update_emas:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, num_ws, w_dim]
        return ws if truncation_psi == 1 else self.truncate(ws, truncation_psi, truncation_cutoff)

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi * (w - w_avg) on the first `cutoff` ws (all when None)."""
        ws = ws.clone()
        ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], psi)
        return ws


class SynthesisLayer(nn.Module):
    """[conv], noise, bias, activation, instance norm, AdaIN from w (no conv in the 4x4 constant layer)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        has_conv: bool = True,
        up: bool = False,
        fused: bool = False,
        blur_filter=(1, 2, 1),
        use_noise: bool = True,
        activation: str = "lrelu",
    ):
        super().__init__()
        self.resolution, self.up, self.use_noise, self.activation = resolution, up, use_noise, activation
        self.conv = EqualConv2d(in_channels, out_channels, 3, up=up, fused=fused, bias=False) if has_conv else None
        _blur_buffer(self, blur_filter if up else ())
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([out_channels]))  # TF Noise/weight, per channel
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.affine = _dense(w_dim, 2 * out_channels, gain=1)  # TF StyleMod: [scale - 1, bias]

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """x [N, C_in, r_in, r_in], w [N, w_dim] -> [N, C, r, r]."""
        if self.conv is not None:
            x = self.conv(x)
        if self.blur is not None:
            x = filter2d(x, self.blur)
        if self.use_noise and noise_mode != "none":
            noise = (
                torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
                if noise_mode == "random"
                else self.noise_const
            )
            x = x + noise * self.noise_strength.reshape(1, -1, 1, 1)
        x = _act(bias_act(x, self.bias), self.activation)
        x = instance_norm(x)
        style = self.affine(w).reshape(x.shape[0], 2, -1, 1, 1)  # [N, 2, C, 1, 1]
        return x * (style[:, 0] + 1) + style[:, 1]


class SynthesisBlock(nn.Module):
    """One resolution: two layers (4x4: constant + conv; above: upsampling conv + conv)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        fused: bool = False,
        **layer_kwargs,
    ):
        super().__init__()
        self.resolution = resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.ones([out_channels, resolution, resolution]))
            self.conv0 = SynthesisLayer(0, out_channels, w_dim, resolution, has_conv=False, **layer_kwargs)
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim, resolution, up=True, fused=fused, **layer_kwargs
            )
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, **layer_kwargs)

    def forward(self, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """ws: [N, 2, w_dim]."""
        if x is None:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])  # [N, C, 4, 4]
        x = self.conv0(x, ws[:, 0], noise_mode=noise_mode)
        return self.conv1(x, ws[:, 1], noise_mode=noise_mode)


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image; layer i (two per resolution) reads ws[:, i]; ToRGB at the end."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = cfg.w_dim, cfg.img_resolution, cfg.img_channels
        self.block_resolutions = [2**i for i in range(2, int(math.log2(cfg.img_resolution)) + 1)]
        self.num_ws = 2 * len(self.block_resolutions)
        layer_kwargs = dict(blur_filter=cfg.blur_filter, use_noise=cfg.use_noise, activation=cfg.activation)
        for res in self.block_resolutions:
            in_channels = _res_channels(cfg, res // 2) if res > 4 else 0
            block = SynthesisBlock(
                in_channels,
                _res_channels(cfg, res),
                cfg.w_dim,
                res,
                fused=_is_fused(cfg.fused_scale, res),
                **layer_kwargs,
            )
            setattr(self, f"b{res}", block)
        self.torgb = EqualConv2d(_res_channels(cfg, cfg.img_resolution), cfg.img_channels, 1, gain=1)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", **_ignored) -> torch.Tensor:
        """ws: [N, num_ws, w_dim] -> img [N, img_channels, R, R] float32, roughly in [-1, 1]."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        ws = ws.to(torch.float32)
        x = None
        for i, res in enumerate(self.block_resolutions):
            x = getattr(self, f"b{res}")(x, ws[:, 2 * i : 2 * i + 2], noise_mode=noise_mode)
        return self.torgb(x)


class Generator(nn.Module):
    """The paper's style-based generator: G(z, c) = synthesis(mapping(z, c))."""

    def __init__(self, config: GeneratorConfig | None = None, **kwargs):
        super().__init__()
        cfg = config if config is not None else GeneratorConfig(**kwargs)
        self.config = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            cfg.z_dim,
            cfg.c_dim,
            cfg.w_dim,
            self.num_ws,
            num_layers=cfg.mapping_layers,
            layer_features=cfg.mapping_features,
            lr_multiplier=cfg.mapping_lr_multiplier,
            activation=cfg.activation,
            w_avg_beta=cfg.w_avg_beta,
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        update_emas: bool = False,
        **_ignored,
    ) -> torch.Tensor:
        """z: [N, z_dim], c: [N, c_dim] -> images [N, img_channels, R, R] in about [-1, 1]."""
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(ws, noise_mode=noise_mode)

    def generate(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float | None = None,
        truncation_cutoff: int | None = -1,
        noise_mode: str = "random",
    ) -> torch.Tensor:
        """Images with the paper's defaults: truncation psi 0.7 on the first 8 ws, fresh noise.

        Args:
            truncation_psi: None = config.truncation_psi (0.7); 1 = off.
            truncation_cutoff: -1 = config.truncation_cutoff (8); None = all ws.
        """
        psi = self.config.truncation_psi if truncation_psi is None else truncation_psi
        cutoff = self.config.truncation_cutoff if truncation_cutoff == -1 else truncation_cutoff
        return self(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode)


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
        self.block_resolutions = [2**i for i in range(int(math.log2(cfg.img_resolution)), 2, -1)]
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(cfg, res, is_top=(res == cfg.img_resolution)))
        self.b4 = DiscriminatorEpilogue(cfg, is_top=(cfg.img_resolution == 4))

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, **_ignored) -> torch.Tensor:
        """img: [N, img_channels, R, R], c: [N, c_dim] -> logits [N, 1]."""
        x = img.to(torch.float32)
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x)
        x = self.b4(x)
        if self.c_dim > 0:  # TF LabelSwitch: the score of the labelled class
            x = (x * c.to(x.dtype)).sum(dim=1, keepdim=True)
        return x


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

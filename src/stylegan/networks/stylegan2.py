"""StyleGAN2 / StyleGAN2-ADA (Karras et al. 2020): mapping, synthesis, generator and discriminator.

The generator's synthesis network starts from a learned 4x4 constant and doubles the resolution per block. Each
block has two modulated 3x3 convolutions (the first one up-samples), per-pixel noise, and, in the default `skip`
architecture, a ToRGB layer whose output is added to the up-sampled image of the block below. Every modulated layer
is driven by a style s = A(w), an affine map of one of the ws; the synthesis network computes all of them in a
single matrix product before it runs the blocks.

Parameter and buffer names are those of NVIDIA's stylegan2-ada-pytorch state dicts (so official weights load by
name), and so are the call conventions: `G(z, c, truncation_psi, truncation_cutoff, noise_mode)`,
`G.mapping(z, c) -> ws [N, num_ws, w_dim]`, `G.synthesis(ws) -> img [N, C, H, W]`, `D(img, c) -> [N, 1]`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from stylegan.device import activation_format, block_dtype
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
from stylegan.nn.bias_act import ACTIVATIONS
from stylegan.nn.conv import modulated_conv2d
from stylegan.nn.layers import Conv2dLayer, FullyConnectedLayer, MinibatchStdLayer, normalize_2nd_moment
from stylegan.nn.upfirdn2d import downsample2d, setup_filter, upsample2d

ARCHITECTURES = ("orig", "skip", "resnet")
SQRT_HALF = math.sqrt(0.5)  # residual branches are summed with this gain to keep the variance


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(sorted(choices))}, got {value!r}")


@dataclass(frozen=True)
class MappingConfig:
    """The mapping MLP: [z, embed(c)] -> w. The generator's tracks w_avg; the discriminator's maps c to cmap."""

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int | None  # None: return one w [N, w_dim] instead of ws [N, num_ws, w_dim]
    num_layers: int = 8
    embed_features: int | None = None  # None: w_dim
    layer_features: int | None = None  # None: w_dim
    activation: str = "lrelu"
    lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.995  # None: no w_avg (and no truncation)


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to build a StyleGAN2 generator (NVIDIA's Generator kwargs, flattened)."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    embed_features: int | None = None  # None: w_dim
    layer_features: int | None = None  # None: w_dim
    w_avg_beta: float | None = 0.995
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    architecture: str = "skip"
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    use_noise: bool = True
    activation: str = "lrelu"
    family: str = field(default="stylegan2", init=False)

    def __post_init__(self):
        check_resolution(self.img_resolution)
        _check_choice("architecture", self.architecture, ARCHITECTURES)
        _check_choice("activation", self.activation, ACTIVATIONS)
        if min(self.z_dim, self.c_dim, self.mapping_layers) < 0 or min(self.w_dim, self.img_channels) <= 0:
            raise ValueError("w_dim and img_channels must be positive; z_dim, c_dim, mapping_layers >= 0")
        object.__setattr__(self, "resample_filter", tuple(float(v) for v in self.resample_filter))

    def mapping_config(self, num_ws: int) -> MappingConfig:
        return MappingConfig(
            z_dim=self.z_dim,
            c_dim=self.c_dim,
            w_dim=self.w_dim,
            num_ws=num_ws,
            num_layers=self.mapping_layers,
            embed_features=self.embed_features,
            layer_features=self.layer_features,
            activation=self.activation,
            lr_multiplier=self.mapping_lr_multiplier,
            w_avg_beta=self.w_avg_beta,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Everything needed to build a StyleGAN2 discriminator (NVIDIA's Discriminator kwargs, flattened)."""

    c_dim: int = 0
    img_resolution: int = 1024
    img_channels: int = 3
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    cmap_dim: int | None = None  # None: channels at 4x4
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    mapping_layers: int = 8  # conditioning-label mapping (projection discriminator)
    mapping_lr_multiplier: float = 0.01
    mapping_embed_features: int | None = None  # None: cmap_dim
    mapping_layer_features: int | None = None  # None: cmap_dim
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    activation: str = "lrelu"
    family: str = field(default="stylegan2", init=False)

    def __post_init__(self):
        check_resolution(self.img_resolution)
        _check_choice("architecture", self.architecture, ARCHITECTURES)
        _check_choice("activation", self.activation, ACTIVATIONS)
        object.__setattr__(self, "resample_filter", tuple(float(v) for v in self.resample_filter))

    @property
    def label_map_dim(self) -> int:
        """Width of the label embedding D projects its features onto (0 when unconditional)."""
        if self.c_dim == 0:
            return 0
        return channels_at(self, 4) if self.cmap_dim is None else self.cmap_dim

    def mapping_config(self) -> MappingConfig:
        return MappingConfig(
            z_dim=0,
            c_dim=self.c_dim,
            w_dim=self.label_map_dim,
            num_ws=None,
            num_layers=self.mapping_layers,
            embed_features=self.mapping_embed_features,
            layer_features=self.mapping_layer_features,
            activation=self.activation,
            lr_multiplier=self.mapping_lr_multiplier,
            w_avg_beta=None,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def channels_at(cfg: GeneratorConfig | DiscriminatorConfig, res: int) -> int:
    """Feature maps at resolution res: channel_base / res, capped at channel_max."""
    return min(cfg.channel_base // res, cfg.channel_max)


def resolutions(img_resolution: int) -> list[int]:
    """4, 8, ..., img_resolution."""
    return [4 << i for i in range(int(math.log2(img_resolution)) - 1)]


def runs_fp16(cfg: GeneratorConfig | DiscriminatorConfig, res: int) -> bool:
    """True for the `num_fp16_res` highest resolutions (never below 8x8), which use fp16 on CUDA."""
    if cfg.num_fp16_res <= 0:
        return False
    return res >= max(cfg.img_resolution >> (cfg.num_fp16_res - 1), 8)


# ----------------------------------------------------------------------------------------------------------------
# Mapping network


class MappingNetwork(nn.Module):
    """w = MLP([normalise(z), normalise(embed(c))]); the generator's also tracks w_avg for truncation."""

    def __init__(self, cfg: MappingConfig):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = cfg.z_dim, cfg.c_dim, cfg.w_dim, cfg.num_ws
        self.num_layers, self.w_avg_beta = cfg.num_layers, cfg.w_avg_beta
        embed = (cfg.w_dim if cfg.embed_features is None else cfg.embed_features) if cfg.c_dim else 0
        hidden = cfg.w_dim if cfg.layer_features is None else cfg.layer_features
        if cfg.c_dim:
            self.embed = FullyConnectedLayer(cfg.c_dim, embed)
        widths = [cfg.z_dim + embed, *[hidden] * (cfg.num_layers - 1), cfg.w_dim]
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            fc = FullyConnectedLayer(fan_in, fan_out, activation=cfg.activation, lr_multiplier=cfg.lr_multiplier)
            self.add_module(f"fc{i}", fc)
        if cfg.num_ws is not None and cfg.w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([cfg.w_dim]))

    def _inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """[N, z_dim + embed_features]: z and the embedded label, each scaled to unit mean square."""
        parts = []
        if self.z_dim:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape [N, {self.z_dim}], got {None if z is None else list(z.shape)}")
            parts.append(normalize_2nd_moment(z.float()))
        if self.c_dim:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this network is conditional: c must be [N, {self.c_dim}] (one-hot labels)")
            parts.append(normalize_2nd_moment(self.embed(c.float())))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """Returns ws [N, num_ws, w_dim] (w [N, w_dim] when num_ws is None)."""
        w = self._inputs(z, c)
        for i in range(self.num_layers):
            w = self.get_submodule(f"fc{i}")(w)
        if update_emas and hasattr(self, "w_avg"):
            track_mean(self.w_avg, w, self.w_avg_beta)
        out = w if self.num_ws is None else w.unsqueeze(1).expand(-1, self.num_ws, -1).contiguous()
        return out if truncation_psi == 1 else self.truncate(out, truncation_psi, truncation_cutoff)

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi (w - w_avg) on the first `cutoff` ws (all when None)."""
        if not hasattr(self, "w_avg"):
            raise ValueError("this mapping network tracks no w_avg, so it cannot truncate")
        return truncate(ws, self.w_avg, psi, cutoff)


# ----------------------------------------------------------------------------------------------------------------
# Synthesis network


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (up-sampling by 2 when up=2), + noise, + bias, leaky ReLU, clamp."""

    def __init__(self, cfg: GeneratorConfig, in_channels: int, out_channels: int, resolution: int, up: int = 1):
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, cfg.use_noise
        self.activation, self.conv_clamp = cfg.activation, cfg.conv_clamp
        self.affine = FullyConnectedLayer(cfg.w_dim, in_channels, bias_init=1)
        self.style_gain = 1.0  # demodulation makes the kernel's scale irrelevant
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", setup_filter(cfg.resample_filter))
        if cfg.use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))

    def noise(self, n: int, noise_mode: str, device: torch.device) -> torch.Tensor | None:
        """Per-pixel noise scaled by the learned strength: [N, 1, r, r] (random), [r, r] (const) or None."""
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            return self.noise_const * self.noise_strength
        return torch.randn([n, 1, self.resolution, self.resolution], device=device) * self.noise_strength

    def forward(self, x: torch.Tensor, styles: torch.Tensor, noise_mode: str = "random", gain: float = 1):
        """x [N, C_in, r/up, r/up], styles [N, C_in] -> [N, C_out, r, r]."""
        return modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=self.noise(x.shape[0], noise_mode, x.device),
            up=self.up,
            padding=1,
            resample_filter=self.resample_filter,
            flip_weight=self.up == 1,
            bias=self.bias,
            act=self.activation,
            gain=ACTIVATIONS[self.activation].def_gain * gain,
            clamp=None if self.conv_clamp is None else self.conv_clamp * gain,
        )


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation, + bias, clamp."""

    def __init__(self, cfg: GeneratorConfig, in_channels: int):
        super().__init__()
        self.conv_clamp = cfg.conv_clamp
        self.affine = FullyConnectedLayer(cfg.w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([cfg.img_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([cfg.img_channels]))
        self.style_gain = 1 / math.sqrt(in_channels)  # equalised lr of the 1x1 kernel, folded into the styles

    def forward(self, x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """x [N, C, r, r], styles [N, C] (already times style_gain) -> [N, img_channels, r, r]."""
        return modulated_conv2d(x, self.weight, styles, demodulate=False, bias=self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution r: 4x4 constant (r = 4) or up-sampling conv0, then conv1; ToRGB and/or a residual path."""

    def __init__(self, cfg: GeneratorConfig, resolution: int):
        super().__init__()
        out_channels = channels_at(cfg, resolution)
        self.in_channels = 0 if resolution == 4 else channels_at(cfg, resolution // 2)
        self.resolution, self.architecture = resolution, cfg.architecture
        self.is_last = resolution == cfg.img_resolution
        self.use_fp16 = runs_fp16(cfg, resolution)
        self.register_buffer("resample_filter", setup_filter(cfg.resample_filter))
        if self.in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(cfg, self.in_channels, out_channels, resolution, up=2)
        self.conv1 = SynthesisLayer(cfg, out_channels, out_channels, resolution)
        if self.is_last or cfg.architecture == "skip":
            self.torgb = ToRGBLayer(cfg, out_channels)
        if self.in_channels and cfg.architecture == "resnet":
            self.skip = Conv2dLayer(
                self.in_channels, out_channels, 1, bias=False, up=2, resample_filter=cfg.resample_filter
            )
        self.num_conv = 1 if self.in_channels == 0 else 2
        self.num_torgb = int(hasattr(self, "torgb"))

    def modulated_layers(self) -> list[nn.Module]:
        """The layers driven by styles, in the order they read ws."""
        convs = [self.conv1] if self.in_channels == 0 else [self.conv0, self.conv1]
        return convs + ([self.torgb] if self.num_torgb else [])

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        styles: list[torch.Tensor],
        noise_mode: str = "random",
        force_fp32: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """styles: one [N, C_in] tensor per modulated layer. Returns (x [N, C, r, r], img [N, img_channels, r, r])."""
        dtype = block_dtype(self.use_fp16, styles[0].device, force_fp32=force_fp32)
        layout = activation_format(styles[0].device)
        s = iter(styles)
        if x is None:
            x = self.const.to(dtype).unsqueeze(0).expand(styles[0].shape[0], -1, -1, -1)
            x = self.conv1(x.contiguous(memory_format=layout), next(s), noise_mode)
        else:
            x = x.to(dtype=dtype, memory_format=layout)
            residual = self.skip(x, gain=SQRT_HALF) if hasattr(self, "skip") else None
            x = self.conv0(x, next(s), noise_mode)
            x = self.conv1(x, next(s), noise_mode, gain=1 if residual is None else SQRT_HALF)
            if residual is not None:
                x = x + residual
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.num_torgb:
            rgb = self.torgb(x, next(s)).float()
            if img is None:
                img = rgb
            else:  # img is a fresh up-sampled tensor: add in place unless autograd needs it
                img = img + rgb if torch.is_grad_enabled() else img.add_(rgb)
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R].

    The convolutions read ws[:, 0], ws[:, 1], ... in order; a block's ToRGB shares its w with the next block's
    first conv, and the last ToRGB reads the final w.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = cfg.w_dim, cfg.img_resolution, cfg.img_channels
        self.block_resolutions = resolutions(cfg.img_resolution)
        add_stages(self, self.block_resolutions, lambda res: SynthesisBlock(cfg, res))
        blocks = self.blocks()
        self.num_ws = sum(b.num_conv for b in blocks) + blocks[-1].num_torgb
        self._init_style_rows(blocks)

    def blocks(self) -> list[SynthesisBlock]:
        return stages(self, self.block_resolutions)

    def _init_style_rows(self, blocks: list[SynthesisBlock]) -> None:
        """For every row of the stacked affine weights: the w it reads and the gain applied to its style."""
        w_index, gains, start = [], [], 0
        for block in blocks:
            for i, layer in enumerate(block.modulated_layers()):
                width = layer.affine.out_features
                w_index += [start + i] * width
                gains += [layer.style_gain] * width
            start += block.num_conv
        self.register_buffer("_style_w_index", torch.tensor(w_index), persistent=False)  # [S]
        self.register_buffer("_style_gain", torch.tensor(gains), persistent=False)  # [S]

    def styles(self, ws: torch.Tensor) -> list[list[torch.Tensor]]:
        """All styles of one pass from a single matmul: per block, a list of [N, C_in] tensors."""
        layers = [layer for block in self.blocks() for layer in block.modulated_layers()]
        weight, bias = self._stacked_affines(layers)  # [S, w_dim], [S]
        every = ws.to(weight.dtype) @ weight.t()  # [N, num_ws, S]: each style row against every w
        index = self._style_w_index.view(1, 1, -1).expand(ws.shape[0], 1, -1)
        flat = (every.gather(1, index).squeeze(1) + bias) * self._style_gain  # [N, S]
        per_layer = iter(flat.split([layer.affine.out_features for layer in layers], dim=1))
        return [[next(per_layer) for _ in block.modulated_layers()] for block in self.blocks()]

    def _stacked_affines(self, layers: list[nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
        """Every style affine's weight [S, w_dim] and bias [S], gains applied, stacked in layer order.

        Without autograd the stack is cached until a parameter changes (in place or replaced): rebuilding it costs
        two copies of ~20 MB per pass at 1024², more than all the affines' arithmetic.
        """
        params = [p for layer in layers for p in (layer.affine.weight, layer.affine.bias)]
        recording = torch.is_grad_enabled() and any(p.requires_grad for p in params)
        uncached = recording or any(p.is_inference() for p in params)  # inference tensors have no version counter
        key = None if uncached else tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        cached = getattr(self, "_affine_cache", None)
        if not uncached and cached is not None and cached[0] == key:
            return cached[1], cached[2]
        weight = torch.cat([layer.affine.weight * layer.affine.weight_gain for layer in layers])
        bias = torch.cat([layer.affine.bias * layer.affine.bias_gain for layer in layers])
        self._affine_cache = None if uncached else (key, weight, bias)
        return weight, bias

    def forward(
        self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False, update_emas: bool = False
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> img [N, img_channels, R, R] float32, roughly in [-1, 1].

        update_emas is accepted for the common generator interface; this network keeps no running statistics.
        """
        check_ws(ws, self.num_ws, self.w_dim)
        check_noise_mode(noise_mode)
        x = img = None
        for block, styles in zip(self.blocks(), self.styles(ws), strict=True):
            x, img = block(x, img, styles, noise_mode=noise_mode, force_fp32=force_fp32)
        return img


class Generator(StyleGenerator):
    """StyleGAN2 generator: G(z, c) = synthesis(mapping(z, c))."""

    def __init__(self, config: GeneratorConfig | None = None, **kwargs):
        cfg = config if config is not None else GeneratorConfig(**kwargs)
        synthesis = SynthesisNetwork(cfg)
        super().__init__(cfg, synthesis, MappingNetwork(cfg.mapping_config(synthesis.num_ws)))


# ----------------------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """Resolution r -> r/2: [fromRGB], conv0 (3x3), conv1 (3x3, down-sampling), residual skip (resnet)."""

    def __init__(self, cfg: DiscriminatorConfig, resolution: int):
        super().__init__()
        width, out_channels = channels_at(cfg, resolution), channels_at(cfg, resolution // 2)
        self.in_channels = 0 if resolution == cfg.img_resolution else width
        self.resolution, self.architecture = resolution, cfg.architecture
        self.use_fp16 = runs_fp16(cfg, resolution)
        self.register_buffer("resample_filter", setup_filter(cfg.resample_filter))
        conv = dict(activation=cfg.activation, conv_clamp=cfg.conv_clamp)
        if self.in_channels == 0 or cfg.architecture == "skip":
            self.fromrgb = Conv2dLayer(cfg.img_channels, width, 1, **conv)
        self.conv0 = Conv2dLayer(width, width, 3, **conv)
        self.conv1 = Conv2dLayer(width, out_channels, 3, down=2, resample_filter=cfg.resample_filter, **conv)
        if cfg.architecture == "resnet":
            self.skip = Conv2dLayer(width, out_channels, 1, bias=False, down=2, resample_filter=cfg.resample_filter)

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [N, C, r, r] (None at the top), img [N, img_channels, r, r] -> (x at r/2, img at r/2 or None)."""
        device = (img if x is None else x).device
        dtype, layout = block_dtype(self.use_fp16, device, force_fp32=force_fp32), activation_format(device)
        if hasattr(self, "fromrgb"):
            from_img = self.fromrgb(img.to(dtype=dtype, memory_format=layout))
            x = from_img if x is None else x.to(dtype) + from_img
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        x = x.to(dtype=dtype, memory_format=layout)
        if self.architecture != "resnet":
            return self.conv1(self.conv0(x)), img
        residual = self.skip(x, gain=SQRT_HALF)
        return self.conv1(self.conv0(x), gain=SQRT_HALF) + residual, img


class DiscriminatorEpilogue(nn.Module):
    """At 4x4: minibatch std-dev, 3x3 conv, dense, output (a score, or a projection onto the label map)."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        width = channels_at(cfg, 4)
        self.architecture, self.cmap_dim = cfg.architecture, cfg.label_map_dim
        if cfg.architecture == "skip":
            self.fromrgb = Conv2dLayer(cfg.img_channels, width, 1, activation=cfg.activation)
        extra = cfg.mbstd_num_channels
        self.mbstd = MinibatchStdLayer(cfg.mbstd_group_size, extra) if extra > 0 else None
        self.conv = Conv2dLayer(width + extra, width, 3, activation=cfg.activation, conv_clamp=cfg.conv_clamp)
        self.fc = FullyConnectedLayer(width * 4 * 4, width, activation=cfg.activation)
        self.out = FullyConnectedLayer(width, self.cmap_dim or 1)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        """x [N, C, 4, 4], cmap [N, cmap_dim] or None -> logits [N, 1]."""
        x = x.float()
        if self.architecture == "skip":
            x = x + self.fromrgb(img.float())
        if self.mbstd is not None:
            x = self.mbstd(x)
        features = self.fc(self.conv(x).flatten(1))  # [N, C]
        score = self.out(features)  # [N, 1] or [N, cmap_dim]
        if not self.cmap_dim:
            return score
        return (score * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)


class Discriminator(nn.Module):
    """StyleGAN2 discriminator: D(img, c) -> logits [N, 1] (a projection discriminator when c_dim > 0)."""

    def __init__(self, config: DiscriminatorConfig | None = None, **kwargs):
        super().__init__()
        cfg = config if config is not None else DiscriminatorConfig(**kwargs)
        self.config = cfg
        self.c_dim, self.img_resolution, self.img_channels = cfg.c_dim, cfg.img_resolution, cfg.img_channels
        self.block_resolutions = resolutions(cfg.img_resolution)[:0:-1]  # R, R/2, ..., 8
        add_stages(self, self.block_resolutions, lambda res: DiscriminatorBlock(cfg, res))
        if cfg.c_dim:
            self.mapping = MappingNetwork(cfg.mapping_config())
        self.b4 = DiscriminatorEpilogue(cfg)

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, update_emas: bool = False, force_fp32: bool = False
    ) -> torch.Tensor:
        """img [N, img_channels, R, R], c [N, c_dim] -> logits [N, 1]. update_emas: no running statistics here."""
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"img must have shape [N, {', '.join(map(str, expected))}], got {list(img.shape)}")
        x = None
        for block in stages(self, self.block_resolutions):
            x, img = block(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim else None
        return self.b4(x, img, cmap)

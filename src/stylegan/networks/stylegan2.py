"""StyleGAN2 / StyleGAN2-ADA networks: mapping, synthesis, generator and discriminator.

Parameter and buffer names equal those of NVIDIA's stylegan2-ada-pytorch, so official weights load with
`load_state_dict` unchanged. Call conventions are NVIDIA's too: `G(z, c, truncation_psi, truncation_cutoff,
noise_mode)`, `G.mapping(z, c, ...) -> ws [N, num_ws, w_dim]`, `G.synthesis(ws) -> img [N, C, H, W]`, `D(img, c)`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from stylegan.nn.bias_act import ACTIVATIONS, bias_act
from stylegan.nn.conv import modulated_conv2d
from stylegan.nn.layers import Conv2dLayer, FullyConnectedLayer, MinibatchStdLayer, normalize_2nd_moment
from stylegan.nn.upfirdn2d import downsample2d, setup_filter, upsample2d

ARCHITECTURES = ("orig", "skip", "resnet")


def _check_resolution(img_resolution: int) -> None:
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")


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
        _check_resolution(self.img_resolution)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if min(self.z_dim, self.w_dim, self.img_channels, self.mapping_layers) < 0 or self.w_dim == 0:
            raise ValueError("z_dim, w_dim, img_channels and mapping_layers must be positive")
        object.__setattr__(self, "resample_filter", tuple(float(v) for v in self.resample_filter))

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
        _check_resolution(self.img_resolution)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        object.__setattr__(self, "resample_filter", tuple(float(v) for v in self.resample_filter))

    def to_dict(self) -> dict:
        return asdict(self)


def _channels(channel_base: int, channel_max: int, res: int) -> int:
    return min(channel_base // res, channel_max)


def _fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    return max(2 ** (int(math.log2(img_resolution)) + 1 - num_fp16_res), 8)


def _block_dtype(use_fp16: bool, force_fp32: bool, device: torch.device) -> torch.dtype:
    # fp16 only where it is fast: NVIDIA's code would run CPU fp16 at ~25x the fp32 time.
    return torch.float16 if use_fp16 and not force_fp32 and device.type == "cuda" else torch.float32


# ----------------------------------------------------------------------------------------------------------------
# Mapping network


class MappingNetwork(nn.Module):
    """z (+ embedded c) -> w, with w_avg tracking and the truncation trick."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """Returns ws [N, num_ws, w_dim] (or w [N, w_dim] when num_ws is None)."""
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))  # [N, z_dim]
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))  # [N, embed_features]
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)  # [N, w_dim]
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            x = self.truncate(x, truncation_psi, truncation_cutoff)
        return x

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi * (w - w_avg), on the first `cutoff` of num_ws (all when None)."""
        if self.w_avg_beta is None:
            raise ValueError("this mapping network tracks no w_avg, so it cannot truncate")
        if ws.ndim == 2 or cutoff is None:
            return self.w_avg.lerp(ws, psi)
        ws = ws.clone()
        ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], psi)
        return ws


# ----------------------------------------------------------------------------------------------------------------
# Synthesis network


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling), noise, bias, leaky ReLU, clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].def_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=memory_format
        )
        self.weight = nn.Parameter(weight)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", gain: float = 1.0):
        styles = self.affine(w)  # [N, C_in]
        noise = None
        if self.use_noise and noise_mode == "random":
            shape = [x.shape[0], 1, self.resolution, self.resolution]
            noise = torch.randn(shape, device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=(self.up == 1),
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(
            x,
            self.bias.to(x.dtype),
            act=self.activation,
            gain=self.act_gain * gain,
            clamp=clamp,
            inplace=True,
        )


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation, to image channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=memory_format
        )
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # [N, C_in]
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, inplace=True)


class SynthesisBlock(nn.Module):
    """One resolution: (const or upsampling conv0), conv1, and ToRGB (skip) or residual path (resnet)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        use_noise: bool = True,
        activation: str = "lrelu",
    ):
        super().__init__()
        self.in_channels, self.resolution, self.is_last = in_channels, resolution, is_last
        self.architecture, self.use_fp16 = architecture, use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = self.num_torgb = 0
        layer_kwargs = dict(use_noise=use_noise, activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim,
                resolution,
                up=2,
                resample_filter=resample_filter,
                **layer_kwargs,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2, resample_filter=resample_filter
            )

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "random",
        force_fp32: bool = False,
    ):
        """ws: [N, num_conv + num_torgb, w_dim]. Returns (x [N, C, r, r], img [N, img_channels, r, r])."""
        w_iter = iter(ws.unbind(dim=1))
        dtype = _block_dtype(self.use_fp16, force_fp32, ws.device)
        # oneDNN convolutions on the CPU are ~1.5-3x faster in NHWC; results are identical.
        fmt = torch.channels_last if ws.device.type == "cpu" else torch.contiguous_format
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1]).to(memory_format=fmt)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode)
        elif self.architecture == "resnet":
            x = x.to(dtype, memory_format=fmt)
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, gain=np.sqrt(0.5))
            x = y + x
        else:
            x = x.to(dtype, memory_format=fmt)
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter)).to(torch.float32)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws -> image. Block r consumes ws[:, i : i + num_conv + num_torgb]; consecutive blocks share one w."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs,
    ):
        super().__init__()
        _check_resolution(img_resolution)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        fp16_resolution = _fp16_resolution(img_resolution, num_fp16_res)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = _channels(channel_base, channel_max, res // 2) if res > 4 else 0
            block = SynthesisBlock(
                in_channels,
                _channels(channel_base, channel_max, res),
                w_dim,
                res,
                img_channels,
                is_last=(res == img_resolution),
                use_fp16=(res >= fp16_resolution),
                **block_kwargs,
            )
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False) -> torch.Tensor:
        """ws: [N, num_ws, w_dim] -> img [N, img_channels, R, R] float32, roughly in [-1, 1]."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, noise_mode=noise_mode, force_fp32=force_fp32)
        return img


class Generator(nn.Module):
    """StyleGAN2 generator: G(z, c) = synthesis(mapping(z, c))."""

    def __init__(self, config: GeneratorConfig | None = None, **kwargs):
        super().__init__()
        cfg = config if config is not None else GeneratorConfig(**kwargs)
        self.config = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.synthesis = SynthesisNetwork(
            cfg.w_dim,
            cfg.img_resolution,
            cfg.img_channels,
            channel_base=cfg.channel_base,
            channel_max=cfg.channel_max,
            num_fp16_res=cfg.num_fp16_res,
            architecture=cfg.architecture,
            resample_filter=cfg.resample_filter,
            conv_clamp=cfg.conv_clamp,
            use_noise=cfg.use_noise,
            activation=cfg.activation,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            cfg.z_dim,
            cfg.c_dim,
            cfg.w_dim,
            self.num_ws,
            num_layers=cfg.mapping_layers,
            embed_features=cfg.embed_features,
            layer_features=cfg.layer_features,
            activation=cfg.activation,
            lr_multiplier=cfg.mapping_lr_multiplier,
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
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """z: [N, z_dim], c: [N, c_dim] -> images [N, img_channels, R, R] in about [-1, 1]."""
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32)


# ----------------------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """fromRGB (first block or skip), two 3x3 convs with 2x downsampling, residual skip (resnet)."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
    ):
        super().__init__()
        self.in_channels, self.resolution, self.architecture, self.use_fp16 = (
            in_channels,
            resolution,
            architecture,
            use_fp16,
        )
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, kernel_size=1, activation=activation, conv_clamp=conv_clamp
            )
        self.conv0 = Conv2dLayer(
            tmp_channels, tmp_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp
        )
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            kernel_size=3,
            activation=activation,
            down=2,
            resample_filter=resample_filter,
            conv_clamp=conv_clamp,
        )
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, kernel_size=1, bias=False, down=2, resample_filter=resample_filter
            )

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False):
        dtype = _block_dtype(self.use_fp16, force_fp32, img.device if img is not None else x.device)
        if x is not None:
            x = x.to(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img.to(dtype))
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch std, conv, fc, output (projected onto the label embedding when conditional)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.cmap_dim, self.architecture = cmap_dim, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels,
            in_channels,
            kernel_size=3,
            activation=activation,
            conv_clamp=conv_clamp,
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        x = x.to(torch.float32)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)  # [N, 1] or [N, cmap_dim]
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x  # [N, 1]


class Discriminator(nn.Module):
    """StyleGAN2 discriminator: D(img, c) -> logits [N, 1]."""

    def __init__(self, config: DiscriminatorConfig | None = None, **kwargs):
        super().__init__()
        cfg = config if config is not None else DiscriminatorConfig(**kwargs)
        self.config = cfg
        self.c_dim, self.img_resolution, self.img_channels = cfg.c_dim, cfg.img_resolution, cfg.img_channels
        log2 = int(math.log2(cfg.img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        ch = {res: _channels(cfg.channel_base, cfg.channel_max, res) for res in self.block_resolutions + [4]}
        fp16_resolution = _fp16_resolution(cfg.img_resolution, cfg.num_fp16_res)
        cmap_dim = (ch[4] if cfg.cmap_dim is None else cfg.cmap_dim) if cfg.c_dim > 0 else 0
        common = dict(
            img_channels=cfg.img_channels,
            architecture=cfg.architecture,
            conv_clamp=cfg.conv_clamp,
            activation=cfg.activation,
        )
        for res in self.block_resolutions:
            in_channels = ch[res] if res < cfg.img_resolution else 0
            block = DiscriminatorBlock(
                in_channels,
                ch[res],
                ch[res // 2],
                res,
                resample_filter=cfg.resample_filter,
                use_fp16=(res >= fp16_resolution),
                **common,
            )
            setattr(self, f"b{res}", block)
        if cfg.c_dim > 0:
            self.mapping = MappingNetwork(
                0,
                cfg.c_dim,
                cmap_dim,
                num_ws=None,
                w_avg_beta=None,
                num_layers=cfg.mapping_layers,
                activation=cfg.activation,
                lr_multiplier=cfg.mapping_lr_multiplier,
                embed_features=cfg.mapping_embed_features,
                layer_features=cfg.mapping_layer_features,
            )
        self.b4 = DiscriminatorEpilogue(
            ch[4],
            cmap_dim,
            4,
            mbstd_group_size=cfg.mbstd_group_size,
            mbstd_num_channels=cfg.mbstd_num_channels,
            **common,
        )

    def forward(
        self,
        img: torch.Tensor,
        c: torch.Tensor | None = None,
        update_emas: bool = False,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """img: [N, img_channels, R, R], c: [N, c_dim] -> logits [N, 1]."""
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

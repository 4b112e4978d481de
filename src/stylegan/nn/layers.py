"""Layers with an equalised learning rate, and the small normalisation helpers every family shares.

Equalised learning rate (Karras et al. 2018): a parameter is stored as N(0, 1) / lr_multiplier and multiplied at run
time by weight_gain = lr_multiplier / sqrt(fan_in), so Adam's per-parameter steps are uniform across layers and
the effective learning rate of a layer scales with lr_multiplier; biases are multiplied by lr_multiplier.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stylegan.nn.bias_act import ACTIVATIONS, bias_act
from stylegan.nn.conv import conv2d_resample
from stylegan.nn.upfirdn2d import setup_filter


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x², dim) + eps): unit mean square along dim (the pixel norm applied to z)."""
    mean_square = x.square().mean(dim=dim, keepdim=True)
    return x * torch.rsqrt(mean_square + eps)


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (weight * weight_gain).T + bias * bias_gain) * act_gain, weight [out, in].

    `weight_gain` and `bias_gain` are plain attributes (the TF readers rescale them).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features).div_(lr_multiplier))
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier * in_features**-0.5
        self.bias_gain = float(lr_multiplier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, in_features] -> [N, out_features]."""
        weight = self.weight.to(x.dtype) * self.weight_gain
        bias = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        y = F.linear(x, weight, bias)  # one GEMM with the bias as its addend
        return y if self.activation == "linear" else bias_act(y, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalised-lr convolution with optional FIR up/downsampling, then bias, activation (with its gain) and clamp.

    forward(x, gain) multiplies the activation gain and the clamp by `gain` (resnet branches use sqrt(0.5)).
    An upsampling layer applies its weight as a true convolution, any other as a correlation (as trained).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.weight_gain = (in_channels * kernel_size * kernel_size) ** -0.5
        self.act_gain = ACTIVATIONS[activation].def_gain
        layout = torch.channels_last if channels_last else torch.contiguous_format
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(shape).contiguous(memory_format=layout))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """[N, C_in, H, W] -> [N, C_out, H * up / down, W * up / down]."""
        kernel = (self.weight * self.weight_gain).to(x.dtype)
        same = self.weight.shape[-1] // 2  # keeps the size (times up / down) for odd kernels
        resample = dict(up=self.up, down=self.down, padding=same, flip_weight=self.up == 1)
        y = conv2d_resample(x, kernel, self.resample_filter, **resample)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return bias_act(y, bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class MinibatchStdLayer(nn.Module):
    """Appends num_channels feature maps holding the standard deviation of the features across a group.

    The batch splits into groups of G = min(group_size, N) samples; sample n belongs to group n mod (N / G). Per
    group, the std over its G members is averaged over H, W and the channels of each of the num_channels slices.
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] -> [N, C + num_channels, H, W]."""
        n, c, h, w = x.shape
        members = n if self.group_size is None else min(self.group_size, n)
        if n % members:
            raise ValueError(f"batch size {n} must be divisible by the minibatch-std group size {members}")
        slices = self.num_channels
        grouped = x.reshape(members, n // members, slices, c // slices, h, w)  # member m of group g: m * N/G + g
        std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt()  # [N/G, F, C/F, H, W]
        per_group = std.mean(dim=(2, 3, 4))  # [N/G, F]
        per_sample = per_group.repeat(members, 1)  # [N, F]: sample n gets group n mod N/G
        return torch.cat([x, per_sample[:, :, None, None].expand(n, slices, h, w)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"

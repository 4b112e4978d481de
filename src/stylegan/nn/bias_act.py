"""Bias + activation + gain + clamp, with NVIDIA's `bias_act` semantics.

Order: x + b, activation, multiply by gain (default: the activation's natural gain), clamp to [-clamp, clamp].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, a: F.silu(x), 0.0, math.sqrt(2)),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    """Adds bias `b` along `dim`, applies `act`, scales by `gain` and clamps.

    Args:
        x: any tensor, e.g. [N, C, H, W] or [N, C].
        b: [x.shape[dim]] or None.
        act: a key of ACTIVATIONS.
        alpha: negative slope for lrelu (default 0.2).
        gain: output scale (default: the activation's def_gain, sqrt(2) for lrelu).
        clamp: clamp the output to [-clamp, clamp] when not None.
        inplace: overwrite x (only honoured when autograd is off; saves memory traffic in inference).
    """
    spec = ACTIVATIONS[act]
    alpha = spec.def_alpha if alpha is None else float(alpha)
    gain = spec.def_gain if gain is None else float(gain)
    if inplace and not torch.is_grad_enabled() and act in ("linear", "lrelu", "relu"):
        return _bias_act_(x, b, dim, act, alpha, gain, clamp)
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def _bias_act_(x, b, dim, act, alpha, gain, clamp):
    """In-place variant for inference: three passes over x instead of four new tensors."""
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x.add_(b.reshape(shape))
    if act == "lrelu":
        F.leaky_relu_(x, alpha)
    elif act == "relu":
        x.relu_()
    if gain != 1:
        x.mul_(gain)
    if clamp is not None and clamp >= 0:
        x.clamp_(-clamp, clamp)
    return x

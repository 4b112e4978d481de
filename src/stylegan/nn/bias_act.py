"""bias_act: add a bias, apply an activation, scale by a gain, clamp, in that order.

y = clamp(act(x + b) * gain, -clamp, clamp), where gain defaults to the activation's own gain (sqrt 2 for the
ReLU family, so that He-initialised layers keep unit variance) and lrelu's negative slope to 0.2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    """An activation with its default slope `def_alpha` and gain `def_gain`.

    homogeneous: act(g * y) == g * act(y) for every g > 0, so a gain may be applied before the activation (or
    folded into the weights that produce y).
    """

    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float = 0.0
    def_gain: float = 1.0
    homogeneous: bool = False


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, _: x, homogeneous=True),
    "relu": Activation(lambda x, _: F.relu(x), def_gain=math.sqrt(2), homogeneous=True),
    "lrelu": Activation(F.leaky_relu, def_alpha=0.2, def_gain=math.sqrt(2), homogeneous=True),
    "tanh": Activation(lambda x, _: torch.tanh(x)),
    "sigmoid": Activation(lambda x, _: torch.sigmoid(x)),
    "elu": Activation(lambda x, _: F.elu(x)),
    "selu": Activation(lambda x, _: F.selu(x)),
    "softplus": Activation(lambda x, _: F.softplus(x)),
    "swish": Activation(lambda x, _: F.silu(x), def_gain=math.sqrt(2)),
}


def no_autograd(*tensors: torch.Tensor | None) -> bool:
    """True when autograd records nothing through these tensors, so they may be overwritten in place."""
    return not torch.is_grad_enabled() or not any(t is not None and t.requires_grad for t in tensors)


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
    """clamp(act(x + b) * gain): see the module docstring.

    Args:
        x: any tensor, e.g. [N, C, H, W] or [N, C].
        b: [x.shape[dim]] or None.
        act: a key of ACTIVATIONS.
        alpha: lrelu's negative slope (None: 0.2).
        gain: output scale (None: the activation's def_gain).
        clamp: bound of the output magnitude, or None.
        inplace: may overwrite x (done only where autograd records nothing: inference).
    """
    spec = ACTIVATIONS[act]
    alpha = spec.def_alpha if alpha is None else float(alpha)
    gain = spec.def_gain if gain is None else float(gain)
    if b is not None:
        b = b.to(x.dtype).reshape([-1 if d == dim % x.ndim else 1 for d in range(x.ndim)])
    if inplace and spec.homogeneous and gain > 0 and no_autograd(x, b):
        return _scaled_act_(x, b, act, alpha, gain, clamp)
    y = spec.func(x if b is None else x + b, alpha)
    y = y * gain if gain != 1 else y
    return y if clamp is None or clamp < 0 else y.clamp(-clamp, clamp)


def _scaled_act_(x, b, act, alpha, gain, clamp):
    """In place, for a positively homogeneous act: g * (x + b) in one pass, act(that) == g * act(x + b), clamp."""
    if b is not None:
        torch.add(b * gain, x, alpha=gain, out=x)
    elif gain != 1:
        x.mul_(gain)
    if act == "lrelu":
        F.leaky_relu_(x, alpha)
    elif act == "relu":
        x.relu_()
    return x if clamp is None or clamp < 0 else x.clamp_(-clamp, clamp)

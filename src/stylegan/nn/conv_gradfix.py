"""conv2d / conv_transpose2d whose gradients of every order run as plain convolutions.

R1 (gradient of D in its input image) and path-length regularisation (gradient of G in ws) differentiate through the
backward pass of every convolution. PyTorch's own derivative of `convolution_backward` builds the weight gradient
of the second pass as a convolution whose kernel is the size of the image, which cuDNN runs very slowly; in a
measured paper256 training cycle on an H200 the two regularisation phases took 75% of the time (Greg 50%, Dreg
25%; benchmarks/profile_train.py).

Here each order is expressed with the same three operations, all linear:
  forward          y  = conv(x, w)
  input gradient   gx = conv_adjoint(gy, w)           (the transposed operation, same w)
  weight gradient  gw = wgrad(gy, x)                  (aten.convolution_backward, weight only: cuDNN's wgrad)
and wgrad's own derivatives are conv(x, ggw) for gy and conv_adjoint(gy, ggw) for x, so every further order again
runs forward/adjoint convolutions and weight-gradient kernels. The values are exactly those of F.conv2d.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# "cuda": on CUDA tensors (where PyTorch's double backward is slow); "always"; "never" (A/B benchmarks, tests).
# On the CPU PyTorch's own double backward measured as fast (benchmarks/profile_train.py), so it is kept there.
enabled = "cuda"


def wanted(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether a convolution should go through this module: only when autograd will differentiate it."""
    if enabled == "never" or (enabled == "cuda" and not x.is_cuda):
        return False
    return torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)


@dataclass(frozen=True)
class _Spec:
    transpose: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    groups: int

    def run(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.transpose:
            return F.conv_transpose2d(
                x, w, stride=self.stride, padding=self.padding, output_padding=self.output_padding, groups=self.groups
            )
        return F.conv2d(x, w, stride=self.stride, padding=self.padding, groups=self.groups)

    def adjoint(self, x_shape, w_shape) -> _Spec:
        """The operation that maps an output gradient back to the input (x_shape) with the same weight."""
        if self.transpose:  # conv_transpose2d's adjoint is conv2d; its output size is x's by construction
            return _Spec(False, self.stride, self.padding, (0, 0), self.groups)
        return _Spec(True, self.stride, self.padding, self._output_padding(x_shape, w_shape), self.groups)

    def _output_padding(self, x_shape, w_shape) -> tuple[int, int]:
        """conv_transpose2d's output_padding that recovers x's size from the conv output's."""
        out = []
        for axis in (0, 1):
            size, k, s, p = x_shape[2 + axis], w_shape[2 + axis], self.stride[axis], self.padding[axis]
            y = (size + 2 * p - k) // s + 1
            out.append(size - ((y - 1) * s - 2 * p + k))
        return out[0], out[1]


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv2d(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0, groups: int = 1) -> torch.Tensor:
    """F.conv2d (no bias, no dilation) with fast gradients of any order."""
    return _Conv.apply(x, w, _Spec(False, _pair(stride), _pair(padding), (0, 0), groups))


def conv_transpose2d(
    x: torch.Tensor, w: torch.Tensor, stride=1, padding=0, output_padding=0, groups: int = 1
) -> torch.Tensor:
    """F.conv_transpose2d (no bias, no dilation) with fast gradients of any order."""
    return _Conv.apply(x, w, _Spec(True, _pair(stride), _pair(padding), _pair(output_padding), groups))


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, spec: _Spec):
        ctx.save_for_backward(x, w)
        ctx.spec = spec
        return spec.run(x, w)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        spec = ctx.spec
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = _Conv.apply(gy, w, spec.adjoint(x.shape, w.shape))
        if ctx.needs_input_grad[1]:
            gw = _WeightGrad.apply(gy, x, w.detach(), spec)
        return gx, gw, None


class _WeightGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gy, x, w, spec: _Spec):
        ctx.save_for_backward(gy, x)
        ctx.spec = spec
        _, gw, _ = torch.ops.aten.convolution_backward(
            gy, x, w, None, list(spec.stride), list(spec.padding), [1, 1], spec.transpose,
            list(spec.output_padding), spec.groups, [False, True, False],
        )  # fmt: skip
        return gw

    @staticmethod
    def backward(ctx, ggw):
        gy, x = ctx.saved_tensors
        spec = ctx.spec
        g_gy = g_x = None
        if ctx.needs_input_grad[0]:
            g_gy = _Conv.apply(x, ggw, spec)
        if ctx.needs_input_grad[1]:
            g_x = _Conv.apply(gy, ggw, spec.adjoint(x.shape, ggw.shape))
        return g_gy, g_x, None, None

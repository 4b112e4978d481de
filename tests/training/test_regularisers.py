"""R1 and path-length regularisation against independent oracles on tiny explicit networks (float64).

Oracles: per-sample Jacobians from torch.autograd.functional.jacobian (no double backward), the formulas written
out here, and central finite differences of the penalty in parameter space for the gradient the loss backprops.
A gamma where gamma/2 belongs, a missing sqrt, a missing 1/sqrt(HW) or a wrong mean over num_ws fails these tests.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from stylegan.training import LossConfig, StyleGAN2Loss
from stylegan.training.loss import path_lengths

C, H, W, NUM_WS, W_DIM, Z_DIM = 1, 4, 4, 3, 5, 6


class TinyG(nn.Module):
    """mapping: z [N, 6] -> ws [N, 3, 5]; synthesis: ws -> img [N, 1, 4, 4], nonlinear in ws (tanh)."""

    def __init__(self):
        super().__init__()
        self.z_dim = Z_DIM
        self.map = nn.Linear(Z_DIM, NUM_WS * W_DIM)
        self.syn = nn.Linear(NUM_WS * W_DIM, C * H * W)

    def mapping(self, z, c, update_emas=False):
        return self.map(z).view(-1, NUM_WS, W_DIM)

    def synthesis(self, ws, update_emas=False):
        return torch.tanh(self.syn(ws.flatten(1))).view(-1, C, H, W)


class TinyD(nn.Module):
    """img [N, 1, 4, 4] -> logits [N, 1]; per sample (no minibatch statistics), nonlinear in the image."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(C, 3, 3, padding=1)
        self.out = nn.Linear(3 * H * W, 1)

    def forward(self, img, c, update_emas=False):
        return self.out(torch.tanh(self.conv(img)).flatten(1))


def _nets(seed=0):
    torch.manual_seed(seed)
    return TinyG().double(), TinyD().double()


def _param_grads(module) -> torch.Tensor:
    """Flat gradient; a parameter the penalty does not depend on (e.g. D's output bias for R1) counts as 0."""
    return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten() for p in module.parameters()])


def _directional_fd(module, fn, direction: torch.Tensor, h: float = 1e-6) -> float:
    """(fn(theta + h v) - fn(theta - h v)) / 2h for the module's flattened parameters theta."""
    params = list(module.parameters())
    base = [p.detach().clone() for p in params]

    def at(sign):
        offset = 0
        with torch.no_grad():
            for p, b in zip(params, base, strict=True):
                p.copy_(b + sign * h * direction[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
        return float(fn())

    plus, minus = at(1), at(-1)
    with torch.no_grad():
        for p, b in zip(params, base, strict=True):
            p.copy_(b)
    return (plus - minus) / (2 * h)


# ---- R1 -----------------------------------------------------------------------------------------------------


def _r1_oracle(D, real: torch.Tensor, gamma: float) -> torch.Tensor:
    """gamma / 2 * mean_i ||d D(x_i) / d x_i||^2 from per-sample Jacobians (first-order autograd only)."""
    norms = []
    for x in real:
        jac = torch.autograd.functional.jacobian(lambda xi: D(xi[None], None)[0, 0], x)  # [C, H, W]
        norms.append(jac.pow(2).sum())
    return gamma / 2 * torch.stack(norms).mean()


def test_r1_value_and_gradient_equal_the_explicit_formula():
    G, D = _nets()
    gamma = 3.0
    loss = StyleGAN2Loss(G, D, LossConfig(r1_gamma=gamma, pl_weight=0, style_mixing_prob=0))
    real = torch.rand([4, C, H, W], dtype=torch.float64) * 2 - 1
    c = torch.zeros([4, 0], dtype=torch.float64)
    D.requires_grad_(True)
    stats = loss.accumulate_gradients("Dreg", real, c, torch.randn([4, Z_DIM], dtype=torch.float64), c, gain=1)
    oracle = _r1_oracle(D, real, gamma)
    assert float(stats["D/r1_penalty"]) == pytest.approx(float(oracle) * 2 / gamma, rel=1e-10)
    got = _param_grads(D)
    for seed in range(3):
        v = torch.randn(got.numel(), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        expected = _directional_fd(D, lambda: _r1_oracle(D, real, gamma).detach(), v)
        assert float(got @ v) == pytest.approx(expected, rel=1e-6, abs=1e-10)


def test_r1_gain_scales_the_gradient_linearly():
    G, D = _nets()
    real = torch.rand([2, C, H, W], dtype=torch.float64)
    c = torch.zeros([2, 0], dtype=torch.float64)
    grads = []
    for gain in (1.0, 16.0):
        D.zero_grad(set_to_none=True)
        D.requires_grad_(True)
        StyleGAN2Loss(G, D, LossConfig(r1_gamma=1.0, pl_weight=0)).accumulate_gradients(
            "Dreg", real, c, torch.zeros([2, Z_DIM], dtype=torch.float64), c, gain=gain
        )
        grads.append(_param_grads(D))
    torch.testing.assert_close(grads[1], 16 * grads[0], rtol=1e-12, atol=0)


# ---- path length --------------------------------------------------------------------------------------------


def _pl_lengths_oracle(G, ws: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """a_i = sqrt(mean over the num_ws copies of ||(J_i^T y_i)_k||^2), J_i = d img_i / d ws_i (full Jacobian)."""
    out = []
    for w, yi in zip(ws, y, strict=True):
        jac = torch.autograd.functional.jacobian(lambda wi: G.synthesis(wi[None])[0], w)  # [C, H, W, NUM_WS, W_DIM]
        jty = torch.einsum("chw,chwkd->kd", yi, jac)  # [NUM_WS, W_DIM]
        out.append(jty.pow(2).sum(1).mean().sqrt())
    return torch.stack(out)


def test_path_lengths_of_a_linear_map_equal_the_closed_form():
    """img = A w: J = A for every sample, so a = sqrt(mean_k ||(A^T y)_k||^2) with y ~ N(0, I) / sqrt(HW)."""
    A = torch.randn([C * H * W, NUM_WS * W_DIM], dtype=torch.float64)
    ws = torch.randn([3, NUM_WS, W_DIM], dtype=torch.float64, requires_grad=True)
    img = (ws.flatten(1) @ A.T).view(-1, C, H, W)
    torch.manual_seed(5)
    got = path_lengths(img, ws)
    torch.manual_seed(5)
    y = torch.randn([3, C, H, W], dtype=torch.float64) / math.sqrt(H * W)
    jty = (y.flatten(1) @ A).view(3, NUM_WS, W_DIM)
    expected = jty.pow(2).sum(2).mean(1).sqrt()
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def _pl_penalty_oracle(G, z, y, pl_mean: float, decay: float, weight: float) -> torch.Tensor:
    """weight * mean_i (a_i - mu)^2, mu = pl_mean + decay * (mean_i a_i - pl_mean)."""
    a = _pl_lengths_oracle(G, G.mapping(z, None), y)
    mu = pl_mean + decay * (a.mean() - pl_mean)
    return weight * (a - mu).pow(2).mean()


def test_path_length_penalty_value_gradient_and_running_mean():
    G, D = _nets(1)
    cfg = LossConfig(pl_weight=2.0, pl_batch_shrink=2, pl_decay=0.25, style_mixing_prob=0)
    loss = StyleGAN2Loss(G, D, cfg)
    loss.pl_mean.fill_(0.3)
    z = torch.randn([6, Z_DIM], dtype=torch.float64)
    c = torch.zeros([6, 0], dtype=torch.float64)
    keep = 3  # 6 // pl_batch_shrink
    torch.manual_seed(11)
    y = torch.randn([keep, C, H, W], dtype=torch.float64) / math.sqrt(H * W)  # the loss's only random draw
    G.requires_grad_(True)
    torch.manual_seed(11)
    stats = loss.accumulate_gradients("Greg", c, c, z, c, gain=1)
    oracle = _pl_penalty_oracle(G, z[:keep], y, 0.3, 0.25, 2.0)
    assert float(stats["G/reg"]) == pytest.approx(float(oracle), rel=1e-10)
    assert float(stats["G/pl_penalty"]) == pytest.approx(float(oracle) / 2.0, rel=1e-10)
    got = _param_grads(G)
    for seed in range(3):
        v = torch.randn(got.numel(), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        expected = _directional_fd(G, lambda: _pl_penalty_oracle(G, z[:keep], y, 0.3, 0.25, 2.0).detach(), v)
        assert float(got @ v) == pytest.approx(expected, rel=1e-6, abs=1e-10)
    # pl_mean moves a quarter of the way (decay 0.25) to the phase's mean path length.
    mean_a = float(_pl_lengths_oracle(G, G.mapping(z[:keep], None), y).mean())
    total, count = loss.pop_pl_update()
    loss.update_pl_mean(total / count)
    assert float(loss.pl_mean) == pytest.approx(0.3 + 0.25 * (mean_a - 0.3), rel=1e-12)


def test_regularisers_with_weight_zero_compute_nothing():
    G, D = _nets()
    loss = StyleGAN2Loss(G, D, LossConfig(r1_gamma=0, pl_weight=0))
    x = torch.zeros([2, C, H, W], dtype=torch.float64)
    c = torch.zeros([2, 0], dtype=torch.float64)
    assert loss.active_terms("Greg") == () and loss.active_terms("Dreg") == ()
    assert loss.accumulate_gradients("Dreg", x, c, torch.zeros([2, Z_DIM], dtype=torch.float64), c, 1) == {}
    assert all(p.grad is None for p in D.parameters())

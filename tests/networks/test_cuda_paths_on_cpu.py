"""CUDA's code paths run on the CPU, where CI runs: the fp16 blocks (NVIDIA's num_fp16_res), bf16 autocast and the
NCHW activation layout GPUs use (the CPU runs channels_last).

Half precision: CUDA's paths, where
parameters stay fp32 and activations are fp16, must cast every weight and bias they meet. A GPU run found two such
casts missing after the rewrite of nn/ (a shared weight reaching its cached convolution in fp32, a bias folded into
the per-sample convolution in fp32); these tests run the same code paths here, with the CPU's fp16 kernels standing in
for CUDA's, against NVIDIA's fp32 outputs (a reduced-precision result within 2 % of their scale)."""

from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan.device
from stylegan.io import load_networks

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvlabs"


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    monkeypatch.setattr(stylegan.device, "fp16_supported", lambda device: True)


def _nets(name: str):
    nets = load_networks(FIXTURES / f"{name}.pkl")
    G, D = nets["G_ema"].requires_grad_(True), nets["D"].requires_grad_(True)
    if name.startswith("sg3"):
        for layer in G.synthesis.layers():  # every layer in fp16 (the tiny fixtures are 32 px)
            layer.use_fp16 = True
    return G, D, np.load(FIXTURES / f"{name}.npz")


def _rel_err(img: torch.Tensor, ref: np.ndarray) -> float:
    return (img.detach().double() - torch.from_numpy(ref).double()).abs().max().item() / float(np.abs(ref).max())


@pytest.mark.parametrize("name", ["sg2_tiny_fp16", "sg3t_tiny", "sg3r_tiny"])
@pytest.mark.parametrize("batch", [1, 8])  # batch 1: per-sample (fused) weights; 8: scaled activations
def test_fp16_blocks_inference(fp16_on_cpu, name, batch):
    G, D, ref = _nets(name)
    z, c = torch.from_numpy(ref["z"][:batch]).float(), torch.from_numpy(ref["c"][:batch]).float()
    with torch.no_grad():
        img = G(z, c, noise_mode="const") if name.startswith("sg2") else G(z, c)
        assert img.dtype == torch.float32
        assert _rel_err(img, ref["img_psi100"][:batch]) < 2e-2
        fp32 = G(z, c, noise_mode="const", force_fp32=True) if name.startswith("sg2") else G(z, c, force_fp32=True)
        assert _rel_err(fp32, ref["img_psi100"][:batch]) < 1e-5  # the oracle holds in fp32 on the same nets
        logits = D(torch.from_numpy(ref["img_psi100"][:batch]), c)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["sg2_tiny_fp16", "sg3t_tiny"])
def test_fp16_blocks_training_step(fp16_on_cpu, name):
    """G and D forward and backward with fp16 blocks, as a training step runs them: finite gradients everywhere."""
    G, D, ref = _nets(name)
    z, c = torch.from_numpy(ref["z"]).float(), torch.from_numpy(ref["c"]).float()
    img = G(z, c)
    assert _rel_err(img, ref["img_psi100"]) < 2e-2 if name.startswith("sg3") else torch.isfinite(img).all()
    torch.nn.functional.softplus(-D(img, c)).mean().backward()
    grads = [p.grad for p in (*G.parameters(), *D.parameters()) if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ["sg2_tiny", "sg3r_tiny"])
def test_bf16_autocast(name):
    nets = load_networks(FIXTURES / f"{name}.pkl")
    ref = np.load(FIXTURES / f"{name}.npz")
    z, c = torch.from_numpy(ref["z"]).float(), torch.from_numpy(ref["c"]).float()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        img = (nets["G_ema"](z, c, noise_mode="const") if name.startswith("sg2") else nets["G_ema"](z, c)).float()
    assert _rel_err(img, ref["img_psi100"]) < 5e-2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv_half_activations_fp32_parameters(dtype, fused):
    """The layer-level case: fp32 parameters (weight, bias), half-precision activations, no autograd (both the
    per-sample and the batched formulation CUDA picks), against the float64 definition."""
    torch.manual_seed(0)
    from stylegan.nn.conv import modulated_conv2d

    weight, bias = torch.nn.Parameter(torch.randn(8, 4, 3, 3)), torch.nn.Parameter(torch.randn(8))
    x, styles = torch.randn(3, 4, 8, 8), torch.randn(3, 4) + 1
    with torch.no_grad():
        y = modulated_conv2d(x.to(dtype), weight, styles, padding=1, fused=fused, bias=bias, act="lrelu")
        w = weight.double()[None] * styles.double()[:, None, :, None, None]  # [N, O, I, 3, 3]
        w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
        ref = torch.cat([torch.nn.functional.conv2d(x[n : n + 1].double(), w[n], padding=1) for n in range(3)])
        ref = torch.nn.functional.leaky_relu(ref + bias.double().reshape(1, -1, 1, 1), 0.2) * 2**0.5
    assert y.dtype == dtype
    assert (y.double() - ref).abs().max().item() < 3e-2 * ref.abs().max().item()


@pytest.mark.parametrize("name", ["sg2_tiny_cond", "sg2_tiny_fp16", "sg3t_tiny", "sg3r_tiny"])
@pytest.mark.parametrize("grad", [False, True])
def test_nchw_layout_keeps_parity(monkeypatch, name, grad):
    """The activation layout CUDA uses (contiguous NCHW), in inference and with autograd, at the fp32 parity bars."""
    import stylegan.networks.stylegan2 as sg2
    import stylegan.networks.stylegan3 as sg3

    for module in (sg2, sg3):
        monkeypatch.setattr(module, "activation_format", lambda device: torch.contiguous_format)
    nets = load_networks(FIXTURES / f"{name}.pkl")
    ref = np.load(FIXTURES / f"{name}.npz")
    z, c = torch.from_numpy(ref["z"]).float(), torch.from_numpy(ref["c"]).float()
    with torch.set_grad_enabled(grad):
        G = nets["G_ema"].requires_grad_(grad)
        img = G(z, c, noise_mode="const") if name.startswith("sg2") else G(z, c)
        logits = nets["D"](torch.from_numpy(ref["img_psi100"]), c)
    assert _rel_err(img, ref["img_psi100"]) * float(np.abs(ref["img_psi100"]).max()) < 1e-4
    assert (logits.detach().double() - torch.from_numpy(ref["D_logits_psi100"]).double()).abs().max() < 1e-4

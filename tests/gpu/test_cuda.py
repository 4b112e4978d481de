"""CUDA checks (`pytest -m gpu tests/gpu`): parity of the fp32 path with NVIDIA's outputs on the GPU, the fp16 and
bf16 paths close to fp32, and a short fp16 training run that stays finite and snapshots. Skipped without CUDA."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan.io import load_networks

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvlabs"
ATT = Path(__file__).parents[1] / "fixtures" / "att-faces"
NAMES = ["sg2_tiny", "sg2_tiny_cond", "sg2_tiny_fp16"]


@pytest.fixture(autouse=True)
def _exact_fp32():
    """Parity needs true fp32 matmuls/convs (no TF32)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _load(name):
    nets = load_networks(FIXTURES / f"{name}.pkl")
    ref = np.load(FIXTURES / f"{name}.npz")
    return {k: v.cuda() for k, v in nets.items()}, ref


def _diff(actual, ref) -> float:
    return (actual.detach().double().cpu() - torch.from_numpy(np.asarray(ref)).double()).abs().max().item()


@pytest.mark.parametrize("name", NAMES)
def test_fp32_parity_on_cuda(name):
    nets, ref = _load(name)
    z, c = torch.from_numpy(ref["z"]).cuda(), torch.from_numpy(ref["c"]).float().cuda()
    with torch.no_grad():
        assert _diff(nets["G_ema"].mapping(z, c, truncation_psi=0.7), ref["ws_psi070"]) < 1e-5
        img = nets["G_ema"](z, c, noise_mode="const", force_fp32=True)
        assert _diff(img, ref["img_psi100"]) < 1e-4
        logits = nets["D"](torch.from_numpy(ref["img_psi100"]).cuda(), c, force_fp32=True)
        assert _diff(logits, ref["D_logits_psi100"]) < 1e-4


def test_fp16_layers_close_to_fp32():
    """sg2_tiny_fp16 has fp16 blocks at 32/64 with conv_clamp 256: on CUDA they run in fp16 (as NVIDIA's code)."""
    nets, ref = _load("sg2_tiny_fp16")
    z, c = torch.from_numpy(ref["z"]).cuda(), torch.from_numpy(ref["c"]).float().cuda()
    with torch.no_grad():
        img16 = nets["G_ema"](z, c, noise_mode="const")
        assert img16.dtype == torch.float32  # the output is cast back, as NVIDIA's
        err = _diff(img16, ref["img_psi100"])
        scale = float(np.abs(ref["img_psi100"]).max())
        assert err < 2e-2 * scale, f"fp16 image error {err:.3g} (scale {scale:.3g})"
        logits = nets["D"](torch.from_numpy(ref["img_psi100"]).cuda(), c)
        assert _diff(logits, ref["D_logits_psi100"]) < 2e-2 * max(1.0, float(np.abs(ref["D_logits_psi100"]).max()))
        clamp = nets["G_ema"].synthesis(torch.from_numpy(ref["ws_clamp"]).cuda(), noise_mode="const")
        assert torch.isfinite(clamp).all()  # conv_clamp keeps fp16 activations finite under large styles
        rel = _diff(clamp, ref["img_clamp"]) / float(np.abs(ref["img_clamp"]).max())
        assert rel < 2e-2, f"clamped fp16 image rel error {rel:.3g}"


def test_bf16_autocast_close_to_fp32():
    nets, ref = _load("sg2_tiny")
    z, c = torch.from_numpy(ref["z"]).cuda(), torch.from_numpy(ref["c"]).float().cuda()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        img = nets["G_ema"](z, c, noise_mode="const").float()
    scale = float(np.abs(ref["img_psi100"]).max())
    assert _diff(img, ref["img_psi100"]) < 5e-2 * scale


def test_fp16_training_run_on_cuda(tmp_path):
    """`stylegan train` on CUDA with fp16 blocks (cfg auto: 4 fp16 resolutions, clamp 256): finite losses, a snapshot
    that loads, and a resume that continues the kimg counter."""
    base = [sys.executable, "-m", "stylegan", "train", "--data", str(ATT), "--outdir", str(tmp_path),
            "--cfg", "auto", "--resolution", "64", "--batch", "16", "--tick", "0.064", "--snap", "1",
            "--aug", "ada", "--device", "cuda"]  # fmt: skip
    subprocess.run([*base, "--kimg", "0.256"], check=True, timeout=300)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["resolved"]["G"]["num_fp16_res"] == 4
    rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    for row in rows:
        for key, value in row.items():
            if key.startswith("Loss/"):
                assert np.isfinite(value), (key, value)
    subprocess.run([*base, "--kimg", "0.384", "--resume", "latest"], check=True, timeout=300)
    rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["kimg"] >= 0.384
    snaps = sorted(run_dir.glob("network-*.safetensors"))
    nets = load_networks(snaps[-1])
    with torch.no_grad():
        img = nets["G_ema"].cuda()(torch.randn([2, nets["G_ema"].z_dim], device="cuda"), None)
    assert torch.isfinite(img).all()


def test_r1_through_the_augment_pipe_on_cuda():
    """R1 on augmented reals needs the second derivative of every augment op (bicubic grid_sample included)."""
    from stylegan.networks.stylegan2 import Discriminator, DiscriminatorConfig
    from stylegan.training.augment import AugmentPipe

    torch.manual_seed(0)
    D = Discriminator(DiscriminatorConfig(img_resolution=32, img_channels=3, channel_base=256, channel_max=32)).cuda()
    real = (torch.rand([8, 3, 32, 32], device="cuda") * 2 - 1).requires_grad_()
    pipe = AugmentPipe("bgcfnc", p=1.0).cuda()
    logits = D(pipe(real), None)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    (grad.square().sum() + logits.mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ["sg3t_tiny", "sg3r_tiny"])
def test_stylegan3_fp32_parity_on_cuda(name):
    """StyleGAN3 T and R on the GPU (filtered_lrelu's CUDA path: separable 1-D passes) against NVIDIA's outputs."""
    nets, ref = _load(name)
    G = nets["G_ema"]
    z = torch.from_numpy(ref["z"]).float().cuda()
    with torch.no_grad():
        errors = {
            "ws_psi070": (_diff(G.mapping(z, None, truncation_psi=0.7), ref["ws_psi070"]), 1e-5),
            "img_psi100": (_diff(G(z, None, force_fp32=True), ref["img_psi100"]), 1e-4),
            "img_psi070": (_diff(G(z, None, truncation_psi=0.7, force_fp32=True), ref["img_psi070"]), 1e-4),
        }
        assert all(err < bar for err, bar in errors.values()), errors
        clamp = G.synthesis(torch.from_numpy(ref["ws_clamp"]).cuda(), force_fp32=True)
        # styles scaled up until the clamp acts (activations ~1e3). On the CPU sg3t_tiny's clamp image sits at 2.3e-4
        # of its 3.2e-4 bar (5e-6 * max), and computed in float64 it is 4.2e-4 from NVIDIA's output: their own fp32
        # rounding exceeds that bar, so another summation order (cuDNN's) can too. The 2026-12-01 H200 run failed this
        # test for sg3t_tiny with its message lost; on CUDA the bar is 2e-5 * max (3x the float64 distance)
        err, bar = _diff(clamp, ref["img_clamp"]), 2e-5 * float(np.abs(ref["img_clamp"]).max())
        assert err < bar, f"clamp fixture: max abs diff {err:.3g} > {bar:.3g}"
        logits = nets["D"](torch.from_numpy(ref["img_psi100"]).cuda(), None, force_fp32=True)
        assert _diff(logits, ref["D_logits_psi100"]) < 1e-4


@pytest.mark.parametrize("name", ["sg3t_tiny", "sg3r_tiny"])
def test_stylegan3_fp16_close_to_fp32(name):
    """With every layer in fp16 (NVIDIA's num_fp16_res on all resolutions), within 2 % of the fp32 reference."""
    nets, ref = _load(name)
    G = nets["G_ema"]
    z = torch.from_numpy(ref["z"]).float().cuda()
    for layer in G.synthesis.layers():
        layer.use_fp16 = True
    try:
        with torch.no_grad():
            img = G(z, None)
    finally:
        for layer in G.synthesis.layers():
            layer.use_fp16 = False
    assert torch.isfinite(img).all()
    scale = float(np.abs(ref["img_psi100"]).max())
    assert _diff(img, ref["img_psi100"]) < 2e-2 * scale

"""Equivariance metrics (eqt50k_int, eqt50k_frac, eqr50k): formula, image-space operators, an exactly equivariant
toy generator, and the separation of equivariant from non-equivariant StyleGAN3 networks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from stylegan.metrics import METRICS, calc_metric, check_metrics_ready
from stylegan.metrics import equivariance as eq

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs"
EQ_NAMES = ("eqt50k_int", "eqt50k_frac", "eqr50k")


class _Input(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("transform", torch.eye(3))


class _WaveSynthesis(nn.Module):
    """An exactly equivariant toy: a band-limited sum of plane waves evaluated at the transformed coordinates.

    img(p) = sum_k a_k sin(2 pi f_k . (T p) + phase_k), with p the pixel centre in canvas units, T =
    `input.transform`, |f_k| below 0.3 cycles per pixel in every direction (so rotations stay band-limited), and
    (a, phase) from w. Content at q is seen at p = T^-1 q: setting T = A^-1 moves the content by A.
    """

    def __init__(self, res: int = 32, waves: int = 12, follow_transform: bool = True):
        super().__init__()
        self.img_resolution, self.follow_transform = res, follow_transform
        self.input = _Input()
        gen = torch.Generator().manual_seed(5)
        angle = torch.rand(waves, generator=gen) * 2 * math.pi
        radius = torch.rand(waves, generator=gen) * 0.3 * res  # cycles per canvas
        self.register_buffer("freqs", torch.stack([angle.cos(), angle.sin()], 1) * radius[:, None])

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        n, k = len(ws), len(self.freqs)
        amp, phase = ws[:, 0, :k].abs() / k, ws[:, 0, k : 2 * k]
        u = (torch.arange(self.img_resolution, dtype=torch.float64) + 0.5) / self.img_resolution - 0.5
        y, x = torch.meshgrid(u, u, indexing="ij")
        pts = torch.stack([x, y, torch.ones_like(x)], -1)  # [H, W, 3]
        if self.follow_transform:
            pts = pts @ self.input.transform.double().T
        arg = 2 * math.pi * (pts[..., :2] @ self.freqs.double().T)  # [H, W, K]
        img = (amp[:, None, None, :] * torch.sin(arg[None] + phase[:, None, None, :])).sum(-1)
        return img[:, None].expand(n, 3, -1, -1).float()


class _WaveGenerator(nn.Module):
    z_dim, c_dim = 24, 0

    def __init__(self, **kwargs):
        super().__init__()
        self.synthesis = _WaveSynthesis(**kwargs)

    def mapping(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return z[:, None, :].double()


def _metric(G, name: str, num: int = 16) -> float:
    return calc_metric(name, G=G, num_gen=num, batch_size=8, progress=False)["results"][name]


def _sg3(name: str):
    from stylegan.io import load_generator

    return load_generator(FIXTURES / f"{name}.pkl").eval()


def _ignore_transform(G) -> None:
    """Makes G's input layer forget its transform before every call: the output no longer moves."""

    def reset(module, args):
        module.transform.copy_(torch.eye(3))

    G.synthesis.input.register_forward_pre_hook(reset)


# ---- formula and operators ----


def test_psnr_of_a_known_pair():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.full((2, 3, 4, 4), 0.2, dtype=torch.float64)
    b[..., 0, :] = 5.0  # outside the mask: ignored
    mask = torch.ones(4, 4)
    mask[0] = 0
    sse, count = eq.masked_sse(a, b, mask)
    assert count == 2 * 3 * 12
    assert eq.psnr(sse, count) == pytest.approx(10 * math.log10(4 / 0.04), abs=1e-9)  # I_max = 2: 20 dB
    assert eq.psnr(0.0, count) == math.inf


def test_shift_integer_matches_numpy():
    img = torch.randn(2, 3, 7, 9)
    out, mask = eq.shift_integer(img, dx=2, dy=-3)
    ref = np.zeros((2, 3, 7, 9), np.float32)
    ref_mask = np.zeros((7, 9), np.float32)
    for i in range(7):
        for j in range(9):
            if 0 <= i + 3 < 7 and 0 <= j - 2 < 9:
                ref[..., i, j] = img[..., i + 3, j - 2].numpy()
                ref_mask[i, j] = 1
    np.testing.assert_array_equal(out.numpy(), ref)
    np.testing.assert_array_equal(mask.numpy(), ref_mask)
    assert eq.shift_integer(img, 9, 0)[1].sum() == 0


def test_warp_identity_and_fractional_shift_of_a_sinusoid():
    res = 32
    img = torch.randn(1, 2, res, res, dtype=torch.float64)
    out, mask = eq.warp(img, eq.content_matrix())
    inner = mask.bool()
    assert inner.sum() == (res - 2 * eq.LANCZOS_A + 1) ** 2
    torch.testing.assert_close(out[..., inner], img[..., inner], atol=1e-12, rtol=0)
    # A band-limited wave moved by 0.3 px right and 1.7 px down, against its analytic value.
    f = torch.tensor([0.11, -0.07], dtype=torch.float64)  # cycles per pixel
    idx = torch.arange(res, dtype=torch.float64)
    y, x = torch.meshgrid(idx, idx, indexing="ij")
    wave = torch.cos(2 * math.pi * (f[0] * x + f[1] * y))[None, None]
    moved, mask = eq.warp(wave, eq.content_matrix((0.3 / res, 1.7 / res)))
    expected = torch.cos(2 * math.pi * (f[0] * (x - 0.3) + f[1] * (y - 1.7)))
    assert (moved[0, 0] - expected)[mask.bool()].abs().max() < 5e-3


def test_content_moves_the_documented_way():
    """A bright pixel at (row 10, col 20), turned by +90 degrees about the centre, lands at (row 11, col 10)."""
    img = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    img[..., 10, 20] = 1
    out, _ = eq.warp(img, eq.content_matrix(angle=90))
    # centre at 15.5: (x, y) = (20, 10) -> offset (4.5, -5.5); counter-clockwise on screen -> (-5.5, -4.5)
    assert tuple(divmod(int(out.flatten().argmax()), 32)) == (11, 10)
    out, _ = eq.warp(img, eq.content_matrix((2 / 32, -3 / 32)))
    assert tuple(divmod(int(out.flatten().argmax()), 32)) == (7, 22)


# ---- the metrics ----


def test_registry_and_readiness():
    for name in EQ_NAMES:
        assert METRICS[name].num_gen == 50000 and not METRICS[name].needs_data
    check_metrics_ready(list(EQ_NAMES))  # no weights files, no data


@pytest.mark.parametrize("name", EQ_NAMES)
def test_exactly_equivariant_toy_scores_very_high(name):
    good = _metric(_WaveGenerator(), name)
    bad = _metric(_WaveGenerator(follow_transform=False), name)
    floor = 100 if name == "eqt50k_int" else 50  # integer shifts are exact; resampling has a small error
    assert good > floor, good
    assert bad < 30, bad


def test_sg3_networks_are_separated_from_non_equivariant_ones():
    r = {name: _metric(_sg3("sg3r_tiny"), name) for name in EQ_NAMES}
    t_rot = _metric(_sg3("sg3t_tiny"), "eqr50k")
    broken = _sg3("sg3r_tiny")
    _ignore_transform(broken)
    ignored = {name: _metric(broken, name) for name in EQ_NAMES}
    for name in EQ_NAMES:
        assert r[name] > 60 and ignored[name] < 40, (name, r[name], ignored[name])
    assert t_rot < r["eqr50k"] - 20  # config T is not built for rotations, config R is


def test_transform_restored_and_deterministic():
    G = _sg3("sg3t_tiny")
    G.synthesis.input.transform.copy_(eq.content_matrix((0.1, 0.0)).float())
    before = G.synthesis.input.transform.clone()
    first, second = _metric(G, "eqt50k_frac", 8), _metric(G, "eqt50k_frac", 8)
    assert first == second
    torch.testing.assert_close(G.synthesis.input.transform, before, atol=0, rtol=0)


def test_non_stylegan3_generator_refused_in_one_line():
    from stylegan.networks.stylegan2 import Generator, GeneratorConfig

    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=1, channel_base=64))
    with pytest.raises(ValueError, match="need a StyleGAN3 generator") as info:
        calc_metric("eqt50k_int", G=G, num_gen=2, progress=False)
    assert "\n" not in str(info.value)


def test_cli_runs_an_equivariance_metric(tmp_path):
    from click.testing import CliRunner

    from stylegan.cli.main import main

    args = ["metrics", "--network", str(FIXTURES / "sg3r_tiny.pkl"), "--metrics", "eqr50k", "--num-gen", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert '"eqr50k"' in result.output

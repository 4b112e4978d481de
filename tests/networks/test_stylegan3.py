"""StyleGAN3 (configs T and R) against NVIDIA's official outputs on the tiny fixtures, plus the properties the
paper promises: translation (T, R) and 90-degree rotation (R) equivariance through the input transform.

Bars from tests/fixtures/nvlabs/README.md: ws 1e-5, images 1e-4, img_clamp 5e-6 * max|ref|, magnitude_ema equal.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan.compat.nvidia_pickle import read_ada_pickle
from stylegan.networks import stylegan3
from stylegan.networks.stylegan3 import Generator, GeneratorConfig, layer_schedule, make_transform, preset_config
from stylegan.nn import filtered_lrelu

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvlabs"
NAMES = ["sg3t_tiny", "sg3r_tiny"]
_SYNTHESIS_KEYS = {"conv_kernel", "use_radial_filters", "channel_base", "channel_max", "magnitude_ema_beta"}


def _config(kwargs: dict) -> GeneratorConfig:
    """NVIDIA's Generator init_kwargs -> our config (absent keys keep NVIDIA's class defaults, as ours do)."""
    kw = dict(kwargs)
    mapping = kw.pop("mapping_kwargs", {})
    assert set(kw) - {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"} <= _SYNTHESIS_KEYS
    return GeneratorConfig(**kw, mapping_layers=mapping.get("num_layers", 2))


_CACHE: dict = {}


def _load(name: str, which: str = "G_ema") -> Generator:
    if (name, which) not in _CACHE:
        record = read_ada_pickle(FIXTURES / f"{name}.pkl")[which]
        G = Generator(_config(record.init_kwargs))
        G.load_state_dict(record.state_dict)
        _CACHE[name, which] = G.eval().requires_grad_(False)
    return _CACHE[name, which]


def _ref(name: str):
    return np.load(FIXTURES / f"{name}.npz")


def _objects(name: str) -> dict:
    return {o["path"]: o for o in json.loads((FIXTURES / f"{name}.json").read_text())["G_ema_objects"]}


def _close(actual, ref, atol):
    diff = (actual.detach().double() - torch.from_numpy(np.asarray(ref)).double()).abs().max().item()
    assert diff <= atol, f"max abs diff {diff:.3g} > {atol:.3g}"


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_official_outputs(name):
    G, ref = _load(name), _ref(name)
    z = torch.from_numpy(ref["z"]).float()
    _close(G.mapping.w_avg, ref["w_avg"], 0)
    _close(G.mapping(z, None), ref["ws_psi100"], 1e-5)
    _close(G.mapping(z, None, truncation_psi=0.7), ref["ws_psi070"], 1e-5)
    _close(G(z, None), ref["img_psi100"], 1e-4)
    _close(G(z, None, truncation_psi=0.7), ref["img_psi070"], 1e-4)
    _close(G(z, None, noise_mode="none"), ref["img_psi100_noise_none"], 1e-4)
    _close(G.synthesis(torch.from_numpy(ref["ws_psi100"])), ref["img_psi100"], 1e-4)
    _close(_load(name, "G")(z, None), ref["img_psi100_G"], 1e-4)
    img = G.synthesis(torch.from_numpy(ref["ws_clamp"]))
    _close(img, ref["img_clamp"], 5e-6 * np.abs(ref["img_clamp"]).max())
    _close(torch.stack([layer.magnitude_ema for layer in G.synthesis.layers()]), ref["magnitude_ema"], 0)


CPU_PATHS = {  # filtered_lrelu's CPU formulations: (_BAND_MIN_ROWS, _OUTER_ON_CPU, threads)
    "bands-1-thread": ({1: 0}, True, 1),
    "convolutions-2-threads": ({}, True, 2),  # the benchmark's path for layers under 256 up-sampled rows
    "bands-2-threads": ({2: 0}, True, 2),  # ... and for larger ones
    "separable": ({}, False, 1),  # the 1-D passes other devices run
}


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("name", NAMES)
def test_parity_on_every_cpu_path(name, path, monkeypatch):
    """Every formulation keeps the image and clamp-fixture bars in inference, whichever the layer sizes pick."""
    bands, outer, threads = CPU_PATHS[path]
    monkeypatch.setattr(filtered_lrelu, "_BAND_MIN_ROWS", bands)
    monkeypatch.setattr(filtered_lrelu, "_OUTER_ON_CPU", outer)
    torch.set_num_threads(threads)  # the autouse fixture restores the count
    G, ref = _load(name), _ref(name)
    with torch.no_grad():
        _close(G(torch.from_numpy(ref["z"]).float(), None), ref["img_psi100"], 1e-4)
        img = G.synthesis(torch.from_numpy(ref["ws_clamp"]))
    _close(img, ref["img_clamp"], 5e-6 * np.abs(ref["img_clamp"]).max())


@pytest.mark.parametrize("name", NAMES)
def test_layers_match_official_schedule(name):
    """Names, sampling rates, sizes, channels, factors, taps and padding as the official objects record them."""
    G, objects = _load(name), _objects(name)
    synthesis = objects["G_ema.synthesis"]["attrs"]
    assert G.synthesis.layer_names == synthesis["layer_names"]
    assert G.num_ws == synthesis["num_ws"]
    specs = layer_schedule(G.config)
    for i, layer in enumerate(G.synthesis.layers()):
        attrs = objects[f"G_ema.synthesis.{G.synthesis.layer_names[i]}"]["attrs"]
        spec_in, spec_out = specs[max(i - 1, 0)], specs[i]
        assert (spec_in.sampling_rate, spec_out.sampling_rate) == (
            attrs["in_sampling_rate"],
            attrs["out_sampling_rate"],
        )
        assert spec_in.cutoff == pytest.approx(attrs["in_cutoff"], rel=1e-12)
        assert spec_out.half_width == pytest.approx(attrs["out_half_width"], rel=1e-12)
        assert [layer.in_size, layer.out_size] == [attrs["in_size"][0], attrs["out_size"][0]]
        assert (layer.up_factor, layer.down_factor, layer.padding) == (
            attrs["up_factor"],
            attrs["down_factor"],
            attrs["padding"],
        )
        assert (layer.is_critically_sampled, layer.use_fp16) == (attrs["is_critically_sampled"], attrs["use_fp16"])
        assert layer.conv_kernel == attrs["conv_kernel"]


@pytest.mark.parametrize("name", NAMES)
def test_designed_filters_equal_stored_ones(name):
    """Our Kaiser designs reproduce the up_filter / down_filter buffers of the official pickle."""
    record = read_ada_pickle(FIXTURES / f"{name}.pkl")["G_ema"]
    fresh = Generator(_config(record.init_kwargs)).state_dict()
    assert list(fresh) == list(record.state_dict)
    assert {k: tuple(v.shape) for k, v in fresh.items()} == {k: tuple(v.shape) for k, v in record.state_dict.items()}
    for key in (k for k in fresh if k.endswith("_filter")):
        torch.testing.assert_close(fresh[key], record.state_dict[key], atol=1e-7, rtol=0)


def test_gradients_reach_every_parameter():
    cfg = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8, num_layers=4)
    G = Generator(cfg).train()
    img = G(torch.randn([2, 8]), None)
    (img * torch.randn_like(img)).sum().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("preset", ["stylegan3-t", "stylegan3-r"])
def test_update_emas_tracks_input_magnitude(preset):
    cfg = preset_config(preset, 16, z_dim=8, w_dim=8, channel_base=64, channel_max=8, num_layers=4)
    G = Generator(cfg).train()
    seen = {}
    for layer in G.synthesis.layers():
        layer.register_forward_pre_hook(lambda m, args: seen.__setitem__(m, args[0].double().square().mean().item()))
    before = {layer: layer.magnitude_ema.item() for layer in G.synthesis.layers()}
    G(torch.randn([3, 8]), None, update_emas=True)
    beta = cfg.magnitude_ema_beta
    for layer in G.synthesis.layers():
        want = beta * before[layer] + (1 - beta) * seen[layer]
        assert layer.magnitude_ema.item() == pytest.approx(want, rel=1e-5)
    frozen = {layer: layer.magnitude_ema.clone() for layer in G.synthesis.layers()}
    G(torch.randn([3, 8]), None)  # without update_emas nothing moves
    assert all(torch.equal(layer.magnitude_ema, frozen[layer]) for layer in G.synthesis.layers())


def _with_transform(G: Generator, ws: torch.Tensor, translate=(0.0, 0.0), angle=0.0) -> torch.Tensor:
    """NVIDIA's gen_images.py convention: the input transform is the inverse of the wanted image motion."""
    transform = G.synthesis.input.transform
    saved = transform.clone()
    transform.copy_(torch.linalg.inv(make_transform(translate, angle)))
    try:
        return G.synthesis(ws)
    finally:
        transform.copy_(saved)


@pytest.mark.parametrize("name, atol", [("sg3t_tiny", 2e-3), ("sg3r_tiny", 1e-4)])
def test_integer_translation_shifts_the_image(name, atol):
    """Moving the input by 2 output pixels (one pixel at the lowest sampling rate) shifts the image by 2 pixels,
    up to boundary effects that the margin keeps out of the centre."""
    G = _load(name)
    ws = torch.from_numpy(_ref(name)["ws_psi100"][:4])
    base = G.synthesis(ws)
    k, c = 2, 8  # shift, border left out
    right = _with_transform(G, ws, translate=(k / G.img_resolution, 0))
    down = _with_transform(G, ws, translate=(0, k / G.img_resolution))
    centre = (..., slice(c, -c), slice(c, -c))
    err_right = (right[..., c:-c, c + k : -c] - base[..., c:-c, c : -c - k]).abs().max()
    err_down = (down[..., c + k : -c, c:-c] - base[..., c : -c - k, c:-c]).abs().max()
    assert max(err_right, err_down) < atol
    assert (right[centre] - base[centre]).abs().max() > 20 * max(err_right, err_down)  # the image did move


def test_config_r_is_equivariant_to_quarter_turns():
    G = _load("sg3r_tiny")
    ws = torch.from_numpy(_ref("sg3r_tiny")["ws_psi100"][:4])
    turned = _with_transform(G, ws, angle=90)
    torch.testing.assert_close(turned, torch.rot90(G.synthesis(ws), 1, dims=(2, 3)), atol=1e-4, rtol=0)


def test_make_transform_rotates_and_translates():
    m = make_transform((0.25, -0.5), 90)
    point = m @ torch.tensor([1.0, 0.0, 1.0])
    torch.testing.assert_close(point, torch.tensor([0.25 + math.cos(math.pi / 2), -0.5 - 1.0, 1.0]), atol=1e-6, rtol=0)


def test_presets_follow_train_py():
    t = preset_config("stylegan3-t", 256, batch=32)
    r = preset_config("stylegan3-r", 256, batch=32, channel_base=16384)
    assert (t.conv_kernel, t.use_radial_filters, t.channel_base, t.channel_max) == (3, False, 32768, 512)
    assert (r.conv_kernel, r.use_radial_filters, r.channel_base, r.channel_max) == (1, True, 32768, 1024)
    assert t.mapping_layers == 2 and t.magnitude_ema_beta == 0.5 ** (32 / 20000)
    with pytest.raises(ValueError, match="preset"):
        preset_config("stylegan3-x", 256)


def test_config_round_trip_and_validation():
    cfg = preset_config("stylegan3-r", 64)
    values = {k: v for k, v in cfg.to_dict().items() if k != "family"}
    assert GeneratorConfig(**values) == cfg and cfg.to_dict()["family"] == "stylegan3"
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(img_resolution=48)
    with pytest.raises(ValueError, match="num_critical"):
        GeneratorConfig(num_layers=2, num_critical=2)


def test_full_size_parameter_counts():
    """REFERENCE.md section 5: NVIDIA's 1024 px generators have 22,313,167 (T) and 15,093,151 (R) parameters."""
    for preset, want in (("stylegan3-t", 22_313_167), ("stylegan3-r", 15_093_151)):
        with torch.device("meta"):
            G = Generator(preset_config(preset, 1024))
        assert sum(p.numel() for p in G.parameters()) == want


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_pointwise_modulated_conv_is_the_definition(layout):
    """Config R's oneDNN 1x1 path against the modulated conv written out in float64 (two images, own styles)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn([2, 6, 5, 7], generator=gen)
    weight, styles, bias = torch.randn([4, 6, 1, 1], generator=gen), torch.randn([2, 6], generator=gen), torch.randn(4)
    w = weight[:, :, 0, 0].double()[None] * styles.double()[:, None, :]  # [N, C_out, C_in]
    w = w * (w.square().sum(2, keepdim=True) + 1e-8).rsqrt() * 1.7
    want = torch.einsum("noi,nihw->nohw", w, x.double()) + bias.double()[None, :, None, None]
    if not stylegan3._onednn_pointwise_applies(x, weight, styles):
        pytest.skip("no oneDNN linear in this torch build")
    got = stylegan3._pointwise_modulated(x.contiguous(memory_format=layout), weight, styles, 1.7, bias)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)

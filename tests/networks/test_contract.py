"""Contract tests over every preset at tiny size (the same checks every network family must pass)."""

import pytest
import torch

from stylegan.networks import PRESETS, build_configs
from stylegan.networks.registry import build_network

TINY = dict(channel_base=128, channel_max=16, z_dim=16, w_dim=16)


def _tiny(name, c_dim=0, architecture=None):
    g, d = build_configs(name, 16, img_channels=3, c_dim=c_dim, **TINY)
    if architecture:
        from dataclasses import replace

        g, d = replace(g, architecture=architecture), replace(d, architecture=architecture)
    return build_network(g), build_network(d)


CASES = (
    [(name, 0, None) for name in PRESETS]
    + [("stylegan2", 3, None)]
    + [("stylegan2", 0, arch) for arch in ("orig", "skip", "resnet")]
)


@pytest.fixture(params=CASES, ids=lambda p: f"{p[0]}-c{p[1]}-{p[2] or 'default'}")
def nets(request):
    name, c_dim, arch = request.param
    return _tiny(name, c_dim, arch)


def _inputs(G, n=4):
    z = torch.randn(n, G.z_dim)
    c = torch.nn.functional.one_hot(torch.arange(n) % max(G.c_dim, 1), max(G.c_dim, 1)).float()[:, : G.c_dim]
    return z, c


def test_shapes_and_finite(nets):
    G, D = nets
    z, c = _inputs(G)
    ws = G.mapping(z, c)
    img = G.synthesis(ws)
    assert ws.shape == (4, G.num_ws, G.w_dim)
    assert img.shape == (4, G.img_channels, G.img_resolution, G.img_resolution)
    logits = D(img, c)
    assert logits.shape == (4, 1)
    assert torch.isfinite(img).all() and torch.isfinite(logits).all()


def test_every_parameter_gets_a_gradient(nets):
    G, D = nets
    z, c = _inputs(G)
    D(G(z, c, noise_mode="random"), c).sum().backward()
    missing = [
        n
        for n, p in list(G.named_parameters()) + list(D.named_parameters())
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert not missing


def test_generator_is_synthesis_of_mapping_and_psi_one_is_identity(nets):
    G, _ = nets
    G.eval()
    z, c = _inputs(G)
    G.mapping.w_avg.copy_(torch.randn(G.w_dim))
    with torch.no_grad():
        ws = G.mapping(z, c)
        assert torch.equal(G(z, c, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
        assert torch.equal(G.mapping(z, c, truncation_psi=1), ws)
        assert torch.allclose(G.mapping(z, c, truncation_psi=0), G.mapping.w_avg.expand_as(ws))
        cut = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2)
        assert torch.equal(cut[:, 2:], ws[:, 2:]) and not torch.equal(cut[:, :2], ws[:, :2])


def test_mixing_at_cutoff_num_ws_changes_nothing(nets):
    from stylegan.editing.generate import mix_ws

    G, _ = nets
    z, c = _inputs(G)
    with torch.no_grad():
        ws = G.mapping(z, c)
        img = G.synthesis(ws[:2], noise_mode="const")

        def mixed_image(cutoff):  # layers [cutoff, num_ws) from the other sources
            return G.synthesis(mix_ws(ws[:2], ws[2:], range(cutoff, G.num_ws))[:, 0], noise_mode="const")

        assert torch.equal(mixed_image(G.num_ws), img)
        assert not torch.allclose(mixed_image(1), img)


def test_noise_modes(nets):
    G, _ = nets
    z, c = _inputs(G)
    with torch.no_grad():
        noisy = [layer for layer in G.modules() if hasattr(layer, "noise_strength")]
        for layer in noisy:
            layer.noise_strength.fill_(0.5)
        ws = G.mapping(z, c)
        assert torch.equal(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
        if not noisy:  # StyleGAN3 has no noise inputs: every mode gives the same image
            assert torch.equal(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="none"))
            return
        assert not torch.equal(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
        assert not torch.equal(G.synthesis(ws, noise_mode="none"), G.synthesis(ws, noise_mode="const"))


def test_config_validation_says_what_to_change():
    from stylegan.networks import GeneratorConfig

    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(img_resolution=48)
    with pytest.raises(ValueError, match="architecture"):
        GeneratorConfig(img_resolution=16, architecture="unet")
    with pytest.raises(ValueError, match="unknown --cfg"):
        build_configs("config-z", 16)


def test_native_round_trip(tmp_path):
    from stylegan.io import load_networks, read_native_metadata, save_networks

    G, D = _tiny("stylegan2", c_dim=3)
    save_networks(tmp_path / "m.safetensors", {"G_ema": G, "D": D}, extra={"note": "tiny"})
    nets = load_networks(tmp_path / "m.safetensors")
    assert read_native_metadata(tmp_path / "m.safetensors")["note"] == "tiny"
    z, c = _inputs(G)
    with torch.no_grad():
        assert torch.equal(nets["G_ema"](z, c), G.eval()(z, c))
        img = G(z, c)
        assert torch.equal(nets["D"](img, c), D.eval()(img, c))
    assert nets["G_ema"].config == G.config


def test_cached_style_affines_follow_parameter_changes():
    """Inference caches the stacked style affines; changing a weight in place (optimizer, load_state_dict) or
    replacing it must be seen by the next pass."""
    G, _ = _tiny("stylegan2")
    G.eval()
    z, c = _inputs(G)
    with torch.no_grad():
        before = G(z, c, noise_mode="const")
        assert torch.equal(G(z, c, noise_mode="const"), before)  # cached path, same result
        G.synthesis.b8.conv1.affine.weight.mul_(2)
        changed = G(z, c, noise_mode="const")
        assert not torch.allclose(changed, before)
        fresh = type(G)(G.config)
        fresh.load_state_dict(G.state_dict())
        torch.testing.assert_close(fresh(z, c, noise_mode="const"), changed)
        G.synthesis.b8.conv1.affine.weight = torch.nn.Parameter(G.synthesis.b8.conv1.affine.weight / 2)
        torch.testing.assert_close(G(z, c, noise_mode="const"), before)

"""Parity with NVIDIA: official tiny stylegan2-ada and stylegan3 pickles, read safely, reproduce the official outputs
(CPU fp32), directly and after conversion to our native format.

Bars from tests/fixtures/nvlabs/README.md: ws 1e-5, images and logits 1e-4, clamp arrays 5e-6 * max|ref|.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan.io import convert_model, load_networks

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvlabs"
NAMES = ["sg2_tiny", "sg2_tiny_cond", "sg2_tiny_fp16", "sg3t_tiny", "sg3r_tiny"]


@pytest.fixture(scope="module", params=["pickle", "native"])
def source(request, tmp_path_factory):
    return request.param, tmp_path_factory.mktemp("converted")


_CACHE: dict = {}


def _networks(name, source):
    kind, tmp = source
    if (name, kind) in _CACHE:
        return _CACHE[name, kind]
    path = FIXTURES / f"{name}.pkl"
    if kind == "native":
        dest = tmp / f"{name}.safetensors"
        if not dest.exists():
            convert_model(path, dest, which="all")
        path = dest
    _CACHE[name, kind] = load_networks(path)
    return _CACHE[name, kind]


def _close(actual, ref, atol):
    diff = (actual.detach().double() - torch.from_numpy(np.asarray(ref)).double()).abs().max().item()
    assert diff <= atol, f"max abs diff {diff:.3g} > {atol:.3g}"


@pytest.mark.parametrize("name", NAMES)
def test_generator_parity(name, source):
    nets, ref = _networks(name, source), np.load(FIXTURES / f"{name}.npz")
    z, c = torch.from_numpy(ref["z"]).float(), torch.from_numpy(ref["c"]).float()
    G = nets["G_ema"]
    with torch.no_grad():
        _close(G.mapping.w_avg, ref["w_avg"], 0)
        _close(G.mapping(z, c), ref["ws_psi100"], 1e-5)
        _close(G.mapping(z, c, truncation_psi=0.7), ref["ws_psi070"], 1e-5)
        if "ws_psi070_cut2" in ref:
            _close(G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=2), ref["ws_psi070_cut2"], 1e-5)
        _close(G(z, c, noise_mode="const"), ref["img_psi100"], 1e-4)
        _close(G(z, c, truncation_psi=0.7, noise_mode="const"), ref["img_psi070"], 1e-4)
        _close(G(z, c, noise_mode="none"), ref["img_psi100_noise_none"], 1e-4)
        _close(nets["G"](z, c, noise_mode="const"), ref["img_psi100_G"], 1e-4)
        if "ws_mix" in ref:
            _close(G.synthesis(torch.from_numpy(ref["ws_mix"]), noise_mode="const"), ref["img_mix"], 1e-4)
        if "ws_clamp" in ref:
            img = G.synthesis(torch.from_numpy(ref["ws_clamp"]), noise_mode="const")
            _close(img, ref["img_clamp"], 5e-6 * np.abs(ref["img_clamp"]).max())


@pytest.mark.parametrize("name", NAMES)
def test_discriminator_parity(name, source):
    nets, ref = _networks(name, source), np.load(FIXTURES / f"{name}.npz")
    c = torch.from_numpy(ref["c"]).float()
    D = nets["D"]
    with torch.no_grad():
        for key in ("100", "070"):
            _close(D(torch.from_numpy(ref[f"img_psi{key}"]), c), ref[f"D_logits_psi{key}"], 1e-4)
        _close(D(torch.from_numpy(ref["img_psi100"][:4]), c[:4]), ref["D_logits_psi100_first4"], 1e-4)
        if "D_logits_clamp" in ref:
            logits = D(torch.from_numpy(ref["img_psi100"][:4]) * float(ref["clamp_test_scale"]), c[:4])
            _close(logits, ref["D_logits_clamp"], 5e-6 * np.abs(ref["D_logits_clamp"]).max())


def test_mixing_matches_reference_layout():
    """Our style-mixing helper builds exactly the official ws_mix (layers [0, mix_cut) from A, the rest from B)."""
    from stylegan.editing.generate import mix_ws

    ref = np.load(FIXTURES / "sg2_tiny.npz")
    ws = torch.from_numpy(ref["ws_psi100"])
    cut = int(ref["mix_cut"])
    mixed = torch.stack([mix_ws(ws[i : i + 1], ws[4 + i : 5 + i], range(cut, ws.shape[1]))[0, 0] for i in range(4)])
    assert torch.equal(mixed, torch.from_numpy(ref["ws_mix"]))


def test_stylegan3_keeps_its_magnitude_emas_and_family(tmp_path):
    """SG3 snapshots carry per-layer magnitude EMAs (buffers) and convert to the stylegan3 family."""
    ref = np.load(FIXTURES / "sg3t_tiny.npz")
    dest = tmp_path / "sg3t.safetensors"
    convert_model(FIXTURES / "sg3t_tiny.pkl", dest, which="all")
    nets = load_networks(dest)
    G = nets["G_ema"]
    assert G.config.family == "stylegan3" and nets["D"].config.family == "stylegan2"
    assert (nets["D"].config.num_fp16_res, nets["D"].config.conv_clamp) == (4, 256)  # stylegan3's class defaults
    emas = [b for name, b in G.named_buffers() if name.endswith("magnitude_ema")]
    assert len(emas) == ref["magnitude_ema"].size
    np.testing.assert_array_equal(np.array([float(b) for b in emas]), ref["magnitude_ema"].ravel())

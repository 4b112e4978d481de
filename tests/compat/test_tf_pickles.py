"""NVIDIA TensorFlow pickles (StyleGAN1 v3, StyleGAN2 / ADA-TF v4) -> our networks.

Fixtures are written here: a network built directly is exported to NVIDIA's TF names and layouts, written as a
(G, D, Gs) tuple of dnnlib Network states (placeholder build source), read back safely and converted. The
converted networks must reproduce the direct ones exactly.
"""

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tf_writer import NamedGlobal, Reduce, to_tf_records, write_tf_pickle

from stylegan.cli.main import main
from stylegan.compat.errors import IgnoredSettingWarning, ModelFormatError, UnsafePickleError
from stylegan.compat.nvidia_pickle import read_tf_pickle
from stylegan.compat.tf_networks import convert_tf_pickle
from stylegan.io import load_generator, load_networks
from stylegan.networks import stylegan1, stylegan2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is fastest, and far faster than two on a loaded machine (no spin-waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomize(module):
    """Random values in every parameter and buffer that TF stores (not the fixed resampling filters)."""
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if "resample_filter" not in key:
                value.copy_(torch.randn_like(value) * 0.5 + (1.0 if key.endswith("const") else 0.0))
    return module.eval()


def sg1(res=16, c_dim=0, fused=True):
    g, d = stylegan1.preset_configs(
        "ffhq1024",
        img_resolution=res,
        c_dim=c_dim,
        fmap_base=64,
        fmap_max=16,
        z_dim=8,
        w_dim=8,
        mapping_layers=2,
        mapping_features=8,
        fused_scale=fused,
    )
    return stylegan1.Generator(g), stylegan1.Discriminator(d), stylegan1.Generator(g)


def sg2(res=16, c_dim=0, architecture="skip"):
    g = stylegan2.GeneratorConfig(
        z_dim=8,
        w_dim=8,
        c_dim=c_dim,
        img_resolution=res,
        channel_base=128,
        channel_max=16,
        mapping_layers=2,
        architecture=architecture,
    )
    d = stylegan2.DiscriminatorConfig(
        c_dim=c_dim,
        img_resolution=res,
        channel_base=128,
        channel_max=16,
        mapping_layers=2 if c_dim else 8,
        mapping_lr_multiplier=0.1,  # D_main's default, so files without the kwarg agree
        architecture="resnet",
    )
    return stylegan2.Generator(g), stylegan2.Discriminator(d), stylegan2.Generator(g)


CASES = {
    "sg1-16-fused": lambda: sg1(16, fused=True),
    "sg1-32-auto": lambda: sg1(32, fused="auto"),
    "sg1-8-cond": lambda: sg1(8, c_dim=3, fused=False),
    "sg2-16-skip": lambda: sg2(16),
    "sg2-32-resnet": lambda: sg2(32, architecture="resnet"),
    "sg2-16-ada-cond-orig": lambda: sg2(16, c_dim=3, architecture="orig"),
}


def _write(tmp_path, nets, name="net.pkl", **kwargs):
    path = tmp_path / name
    write_tf_pickle(path, *to_tf_records(*nets, **kwargs))
    return path


def _assert_same(ours, ref):
    G, D, Gs = ref
    z = torch.randn(4, G.z_dim)
    c = torch.eye(max(G.c_dim, 1))[torch.arange(4) % max(G.c_dim, 1)][:, : G.c_dim]
    img = torch.randn(4, G.img_channels, G.img_resolution, G.img_resolution)
    for name, net in (("G", G), ("G_ema", Gs)):
        for psi in (1.0, 0.5):
            torch.testing.assert_close(
                ours[name](z, c, truncation_psi=psi, noise_mode="const"),
                net(z, c, truncation_psi=psi, noise_mode="const"),
                rtol=1e-5,
                atol=1e-5,
            )
    torch.testing.assert_close(ours["D"](img, c), D(img, c), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_tf_pickle_round_trip(case, tmp_path):
    ref = [_randomize(m) for m in CASES[case]()]
    nets = convert_tf_pickle(_write(tmp_path, ref))
    assert set(nets) == {"G", "D", "G_ema"}
    assert nets["G_ema"].config == ref[2].config and nets["D"].config == ref[1].config
    _assert_same(nets, ref)


def _set_version(rec, version):
    rec.version = version
    for comp in rec.components.values():
        _set_version(comp, version)


def test_stylegan2_ada_tf_version_5_state(tmp_path):
    """StyleGAN2-ADA-TF writes tflib state version 5 (version 4 plus input/output shapes and names)."""
    ref = [_randomize(m) for m in CASES["sg2-16-ada-cond-orig"]()]
    records = to_tf_records(*ref)
    for rec in records:
        _set_version(rec, 5)
    path = tmp_path / "ada-tf.pkl"
    write_tf_pickle(path, *records)
    _assert_same(convert_tf_pickle(path), ref)


@pytest.mark.parametrize("case", ["sg1-32-auto", "sg2-16-skip", "sg2-16-ada-cond-orig"])
def test_sizes_come_from_the_variables(case, tmp_path):
    """Only NVIDIA's training-loop kwargs (resolution, channels, labels): the rest is read from the shapes."""
    ref = [_randomize(m) for m in CASES[case]()]
    nets = convert_tf_pickle(_write(tmp_path, ref, g_kwargs={}, d_kwargs={}))
    _assert_same(nets, ref)


def test_sg1_names_and_layouts_are_nvidias(tmp_path):
    G, D, Gs = read_tf_pickle(_write(tmp_path, [_randomize(m) for m in sg1(16, c_dim=2)]))
    assert (G.version, G.build_func_name, D.build_func_name) == (3, "G_style", "D_basic")
    assert set(Gs.components) == {"mapping", "synthesis"}
    v = Gs.flat_variables()
    shapes = {
        "dlatent_avg": (8,),
        "lod": (),
        "synthesis/lod": (),
        "mapping/LabelConcat/weight": (2, 8),
        "mapping/Dense0/weight": (16, 8),
        "mapping/Dense1/bias": (8,),
        "synthesis/4x4/Const/const": (1, 16, 4, 4),
        "synthesis/4x4/Const/Noise/weight": (16,),
        "synthesis/4x4/Const/StyleMod/weight": (8, 32),
        "synthesis/4x4/Conv/weight": (3, 3, 16, 16),
        "synthesis/16x16/Conv0_up/weight": (3, 3, 16, 8),
        "synthesis/16x16/Conv1/StyleMod/bias": (16,),
        "synthesis/noise0": (1, 1, 4, 4),
        "synthesis/noise5": (1, 1, 16, 16),
        "synthesis/ToRGB_lod0/weight": (1, 1, 8, 3),
    }
    assert {k: v[k].shape for k in shapes} == shapes
    assert sum(k.startswith("synthesis/noise") for k in v) == 6
    d = D.flat_variables()
    assert d["FromRGB_lod0/weight"].shape == (1, 1, 3, 8) and d["16x16/Conv1_down/weight"].shape == (
        3,
        3,
        8,
        16,
    )
    assert d["4x4/Conv/weight"].shape == (3, 3, 17, 16) and d["4x4/Dense1/weight"].shape == (16, 2)


def test_sg2_names_and_layouts_are_nvidias(tmp_path):
    G, D, Gs = read_tf_pickle(_write(tmp_path, [_randomize(m) for m in sg2(16, c_dim=3, architecture="resnet")]))
    funcs = (G.build_func_name, Gs.components["synthesis"].build_func_name, D.build_func_name)
    assert G.version == 4 and funcs == ("G_main", "G_synthesis", "D_main")  # conditional: ADA-TF's names
    v = Gs.flat_variables()
    shapes = {
        "mapping/LabelEmbed/weight": (3, 8),
        "synthesis/4x4/Conv/noise_strength": (),
        "synthesis/8x8/Conv0_up/weight": (3, 3, 16, 16),
        "synthesis/8x8/Conv0_up/mod_weight": (8, 16),
        "synthesis/16x16/Skip/weight": (1, 1, 16, 8),
        "synthesis/16x16/ToRGB/weight": (1, 1, 8, 3),
        "synthesis/noise4": (1, 1, 16, 16),
    }
    assert {k: v[k].shape for k in shapes} == shapes
    assert "synthesis/noise5" not in v
    d = D.flat_variables()
    assert {
        "LabelEmbed/weight",
        "Mapping0/weight",
        "Mapping1/bias",
        "Output/weight",
        "16x16/Skip/weight",
    } <= set(d)


def test_mod_bias_and_flips(tmp_path):
    """StyleGAN2 conventions: mod_bias stored without the +1; Conv0_up kernels flipped (legacy.py)."""
    G = _randomize(sg2(8)[0])
    records = to_tf_records(G, _randomize(sg2(8)[1]), G)
    v = records[2].flat_variables()
    np.testing.assert_allclose(
        v["synthesis/8x8/Conv0_up/mod_bias"] + 1, G.synthesis.b8.conv0.affine.bias.detach().numpy(), atol=1e-6
    )
    np.testing.assert_array_equal(
        v["synthesis/8x8/Conv0_up/weight"][::-1, ::-1].transpose(3, 2, 0, 1),
        G.synthesis.b8.conv0.weight.detach().numpy(),
    )


def test_load_generator_and_convert_command(tmp_path):
    ref = [_randomize(m) for m in sg1(16)]
    path = _write(tmp_path, ref)
    G = load_generator(path)
    z = torch.randn(2, 8)
    torch.testing.assert_close(G(z, noise_mode="const"), ref[2](z, noise_mode="const"))
    assert set(load_networks(path)) == {"G", "D", "G_ema"}
    out = tmp_path / "sg1.safetensors"
    res = CliRunner().invoke(main, ["convert", str(path), str(out), "--which", "all"])
    assert res.exit_code == 0, res.output
    torch.testing.assert_close(load_generator(out)(z, noise_mode="const"), ref[2](z, noise_mode="const"))


def test_progressive_growing_leftovers_are_ignored(tmp_path):
    """Released StyleGAN1 pickles keep ToRGB/FromRGB of every level of detail; the final net uses lod 0."""
    ref = [_randomize(m) for m in sg1(16)]
    G, D, Gs = to_tf_records(*ref)
    for rec in (G, Gs):
        rec.components["synthesis"].variables["ToRGB_lod1/weight"] = np.zeros([1, 1, 16, 3], np.float32)
        rec.components["synthesis"].variables["ToRGB_lod1/bias"] = np.zeros([3], np.float32)
    D.variables["FromRGB_lod2/weight"] = np.zeros([1, 1, 3, 16], np.float32)
    path = tmp_path / "grown.pkl"
    write_tf_pickle(path, G, D, Gs)
    _assert_same(convert_tf_pickle(path), ref)


def _broken(tmp_path, nets, edit):
    G, D, Gs = to_tf_records(*[_randomize(m) for m in nets])
    edit(G, D, Gs)
    path = tmp_path / "broken.pkl"
    write_tf_pickle(path, G, D, Gs)
    return path


def _set(rec, key, value):
    rec.variables[key] = value


ERRORS = {
    "unknown variable": (
        sg1,
        lambda G, D, Gs: _set(Gs.components["synthesis"], "8x8/Extra/weight", np.zeros(3)),
        r"unknown TF variables synthesis/8x8/Extra/weight",
    ),
    "unknown kwarg": (
        sg2,
        lambda G, D, Gs: Gs.static_kwargs.update(magic_flag=True),
        r"unknown TensorFlow kwargs magic_flag",
    ),
    "unsupported kwarg value": (
        sg1,
        lambda G, D, Gs: G.static_kwargs.update(use_instance_norm=False),
        r"use_instance_norm=False is not supported",
    ),
    "missing variable": (
        sg1,
        lambda G, D, Gs: Gs.components["mapping"].variables.pop("Dense1/bias"),
        r"missing TF variable mapping/Dense1/bias",
    ),
    "wrong shape": (
        sg2,
        lambda G, D, Gs: _set(D, "4x4/Dense0/bias", np.zeros(5, np.float32)),
        r"4x4/Dense0/bias has shape \[5\]",
    ),
    "growing snapshot": (
        sg1,
        lambda G, D, Gs: _set(Gs, "lod", np.float32(1.5)),
        r"while growing \(lod=1.5\)",
    ),
    "config a-d": (
        sg2,
        lambda G, D, Gs: _set(Gs.components["synthesis"], "ToRGB_lod0/weight", np.zeros(3)),
        r"configs a-d",
    ),
    "label concat": (
        sg2,
        lambda G, D, Gs: _set(Gs.components["mapping"], "LabelConcat/weight", np.zeros([2, 8])),
        r"LabelConcat",
    ),
    "unknown generator": (sg2, lambda G, D, Gs: setattr(Gs, "build_func_name", "G_paper"), r"'G_paper'"),
    "old version": (sg2, lambda G, D, Gs: setattr(Gs, "version", 3), r"version 3 is not supported"),
    "comparison method": (
        sg2,
        lambda G, D, Gs: D.static_kwargs.update(use_spectral_norm=True),
        r"use_spectral_norm=True is not supported",
    ),
    "sg1 D: kwarg no NVIDIA network knows": (
        sg1,
        lambda G, D, Gs: D.static_kwargs.update(latent_size=8, minibatch_magic=2),
        r"unknown TensorFlow kwargs minibatch_magic \(a modified network\?\)",
    ),
    "sg1 D: kwarg that changes the maths": (
        sg1,
        lambda G, D, Gs: D.static_kwargs.update(use_wscale=False),
        r"kwarg use_wscale=False is not supported",
    ),
    "wrong discriminator": (
        sg1,
        lambda G, D, Gs: setattr(D, "build_func_name", "D_stylegan2"),
        r"expected D_basic",
    ),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_one_line_errors(name, tmp_path):
    make, edit, message = ERRORS[name]
    path = _broken(tmp_path, make(8), edit)
    with pytest.raises(ModelFormatError, match=message) as info:
        convert_tf_pickle(path)
    assert "\n" not in str(info.value) and str(info.value).startswith("broken.pkl: ")


@pytest.mark.parametrize("make", [sg1, sg2])
def test_kwargs_of_other_build_functions_are_ignored_with_a_warning(make, tmp_path):
    """NVIDIA's D takes **_kwargs: G-only settings in a D's static kwargs change nothing, so they load."""
    ref = [_randomize(m) for m in make(8)]
    G, D, Gs = to_tf_records(*ref)
    D.static_kwargs.update(latent_size=8, dlatent_size=8, use_instance_norm=False, truncation_psi=0.5)
    path = tmp_path / "extra.pkl"
    write_tf_pickle(path, G, D, Gs)
    with pytest.warns(IgnoredSettingWarning) as record:
        nets = convert_tf_pickle(path)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1, messages
    assert messages[0].startswith("extra.pkl: D (")
    assert "ignoring TensorFlow kwargs dlatent_size, latent_size, truncation_psi, use_instance_norm" in messages[0]
    _assert_same(nets, ref)


def test_payload_tf_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = Reduce(NamedGlobal("os", "system"), (f"touch {marker}",))
    G, D, Gs = to_tf_records(*[_randomize(m) for m in sg1(8)])
    Gs = dataclasses.replace(Gs, static_kwargs={**Gs.static_kwargs, "resolution": payload})
    path = tmp_path / "payload.pkl"
    write_tf_pickle(path, G, D, Gs)
    with pytest.raises(UnsafePickleError, match="os.system"):
        convert_tf_pickle(path)
    with pytest.raises(ModelFormatError):
        load_networks(path)
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["lsun256", "ffhq1024"])
def test_full_size_stylegan1_pickle(preset, tmp_path):
    """Paper-sized files (0.3-0.4 GB) with only the training loop's kwargs: configs equal the preset's."""
    g, d = stylegan1.preset_configs(preset)
    ref = [stylegan1.Generator(g).eval(), stylegan1.Discriminator(d).eval()]
    ref.append(ref[0])
    nets = convert_tf_pickle(_write(tmp_path, ref, g_kwargs={}, d_kwargs={}))
    assert nets["G_ema"].config == g and nets["D"].config == d
    z = torch.randn(1, 512)
    torch.testing.assert_close(nets["G_ema"](z, noise_mode="const"), ref[0](z, noise_mode="const"))

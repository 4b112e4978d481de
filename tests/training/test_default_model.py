"""The packaged default model (trained with this code): small, self-describing, quick on the CPU."""

import time

import pytest
import torch

from stylegan.io import default_model_path, load_generator, read_native_metadata

pytestmark = pytest.mark.skipif(not default_model_path().is_file(), reason="no packaged default model")


def test_cpu_recipe_hint_is_the_built_in_models_recipe():
    from stylegan.training.loop import CPU_RECIPE

    opts = read_native_metadata(default_model_path())["training_options"]
    hinted = CPU_RECIPE.split()
    flags = dict(zip(hinted[::2], hinted[1::2], strict=True))
    assert flags == {"--cfg": opts["cfg"], "--batch": str(opts["batch"]), "--cbase": str(opts["cbase"]),
                     "--cmax": str(opts["cmax"]), "--z-dim": str(opts["z_dim"]), "--w-dim": str(opts["w_dim"]),
                     "--map-depth": str(opts["map_depth"]), "--aug": opts["aug"]}  # fmt: skip


def test_default_model_is_small_and_records_its_training():
    path = default_model_path()
    assert path.stat().st_size <= 25 * 2**20
    meta = read_native_metadata(path)
    assert "G_ema" in meta["networks"]
    assert meta["kimg"] == 100 and "Fashion-MNIST" in meta["dataset"]
    opts = meta["training_options"]
    # The README's recipe for the built-in model (and the CPU recipe `stylegan train` suggests).
    recipe = dict(cfg="cifar", batch=32, cbase=1024, cmax=64, z_dim=64, w_dim=64, map_depth=2, aug="noaug", kimg=100)
    assert {k: opts[k] for k in recipe} == recipe


def test_default_model_generates_quickly_on_cpu():
    G = load_generator()
    start = time.time()
    with torch.no_grad():
        img = G(torch.randn([16, G.z_dim]), None, noise_mode="const")  # [16, C, R, R]
    assert img.shape == (16, G.img_channels, G.img_resolution, G.img_resolution)
    assert torch.isfinite(img).all() and img.std() > 0.05
    assert time.time() - start < 10

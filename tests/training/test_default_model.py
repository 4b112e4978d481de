"""The packaged default model (trained with this code): small, self-describing, quick on the CPU."""

import time

import pytest
import torch

from stylegan.io import default_model_path, load_generator, read_native_metadata

pytestmark = pytest.mark.skipif(not default_model_path().is_file(), reason="no packaged default model")


def test_default_model_is_small_and_records_its_training():
    path = default_model_path()
    assert path.stat().st_size <= 25 * 2**20
    meta = read_native_metadata(path)
    assert "G_ema" in meta["networks"]
    assert meta["kimg"] > 0 and "Fashion-MNIST" in meta["dataset"]
    assert meta["training_options"]["cfg"]


def test_default_model_generates_quickly_on_cpu():
    G = load_generator()
    start = time.time()
    with torch.no_grad():
        img = G(torch.randn([16, G.z_dim]), None, noise_mode="const")  # [16, C, R, R]
    assert img.shape == (16, G.img_channels, G.img_resolution, G.img_resolution)
    assert torch.isfinite(img).all() and img.std() > 0.05
    assert time.time() - start < 10

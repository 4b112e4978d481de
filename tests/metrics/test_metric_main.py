"""calc_metric end to end on a tiny StyleGAN2 generator, the feature cache, and the `metrics` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan.metrics import METRICS, MissingWeightsError, calc_metric, calc_metrics
from stylegan.metrics.fmnist import default_fmnist_weights
from stylegan.metrics.inception import FIDInception
from stylegan.metrics.lpips import LPIPSVGG16

pytest.importorskip("scipy")
needs_classifier = pytest.mark.skipif(not default_fmnist_weights().is_file(), reason="classifier asset missing")


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """FID via eigen-decompositions (no scipy.linalg.sqrtm): Tr (S1 S2)^(1/2) = sum sqrt eig(S1^1/2 S2 S1^1/2)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a.T), np.cov(b.T)
    vals, vecs = np.linalg.eigh(s1)
    root1 = vecs @ np.diag(np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(middle, 0, None)).sum())


@torch.no_grad()
def _fid_fmnist_oracle(G, real: torch.Tensor, num_gen: int) -> float:
    """fid_fmnist written out: the classifier's pooled features of uint8 reals [N, 1, H, W] and of G's images for
    the metric's latents (one torch.Generator seeded 0, z drawn batch after batch; const noise)."""
    from stylegan.metrics.fmnist import load_fmnist_classifier

    net = load_fmnist_classifier()
    z = torch.randn(num_gen, G.z_dim, generator=torch.Generator().manual_seed(0))
    fake = (G(z, torch.zeros(num_gen, 0), noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    feats = [net.features(x.float() / 127.5 - 1).double().numpy() for x in (real, fake)]
    return _fid_reference(*feats)


def _tiny_G(seed: int = 0):
    from stylegan.networks.stylegan2 import Generator, GeneratorConfig

    torch.manual_seed(seed)
    cfg = GeneratorConfig(
        z_dim=16,
        w_dim=16,
        img_resolution=16,
        img_channels=1,
        mapping_layers=2,
        channel_base=128,
        channel_max=16,
    )
    return Generator(cfg).eval()


def _real_batches(n: int = 48, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (n, 1, 16, 16), generator=gen, dtype=torch.uint8)
    return list(img.split(16))


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("STYLEGAN_OFFLINE", "1")


def test_registry_has_nvidia_names_and_counts():
    for name in (
        "fid50k_full",
        "kid50k_full",
        "pr50k3_full",
        "is50k",
        "ppl2_wend",
        "ppl_zfull",
        "ppl_wfull",
        "ppl_zend",
        "ppl_wend",
        "ls",
        "fid_fmnist",
    ):
        assert name in METRICS
    assert METRICS["fid50k_full"].num_gen == 50000 and METRICS["fid50k_full"].max_real is None
    assert METRICS["kid50k_full"].options == dict(num_subsets=100, max_subset_size=1000)
    assert METRICS["pr50k3_full"].max_real == 200_000 and METRICS["pr50k3_full"].options == dict(k=3)
    assert METRICS["ppl_zfull"].options == dict(space="z", sampling="full", crop=True, epsilon=1e-4)
    assert METRICS["ppl2_wend"].options["crop"] is False


@needs_classifier
def test_fmnist_metrics_run_and_report():
    G = _tiny_G()
    results = calc_metrics(
        ["fid_fmnist", "kid_fmnist", "pr3_fmnist"],
        G=G,
        dataset=iter(_real_batches()),
        num_gen=48,
        batch_size=16,
        progress=False,
    )
    assert [r["metric"] for r in results] == ["fid_fmnist", "kid_fmnist", "pr3_fmnist"]
    assert results[0]["num_gen"] == 48
    oracle = _fid_fmnist_oracle(G, torch.cat(_real_batches()), 48)
    assert results[0]["results"]["fid_fmnist"] == pytest.approx(oracle, rel=1e-3)
    assert set(results[2]["results"]) == {"pr3_fmnist_precision", "pr3_fmnist_recall"}


@needs_classifier
def test_real_features_are_cached_by_dataset_hash(tmp_path):
    from PIL import Image

    from stylegan.metrics.weights import cache_dir

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(torch.cat(_real_batches(32))):
        Image.fromarray(img[0].numpy()).save(folder / f"{i:03d}.png")
    G = _tiny_G()
    first = calc_metric("fid_fmnist", G=G, dataset=folder, num_gen=32, batch_size=16, progress=False)
    cached = list((cache_dir() / "features").glob("fmnist-*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (32, 256)
    second = calc_metric("fid_fmnist", G=G, dataset=folder, num_gen=32, batch_size=16, progress=False)
    assert second["results"] == first["results"]
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "zzz.png")  # the dataset changed: a new entry
    calc_metric("fid_fmnist", G=G, dataset=folder, num_gen=32, batch_size=16, progress=False)
    assert len(list((cache_dir() / "features").glob("fmnist-*.npy"))) == 2


@needs_classifier
def test_linear_separability_known_values():
    """A G whose images do not depend on z gives every attribute one class: H(Y|X) = 0, so ls = exp(0) = 1
    exactly; any G stays within [1, 2^10] (10 binary attributes, each H <= ln 2)."""
    G = _tiny_G()
    out = calc_metric("ls", G=G, num_gen=64, batch_size=32, progress=False)["results"]
    assert set(out) == {"ls_z", "ls_w"} and all(1.0 <= v <= 2.0**10 for v in out.values())
    with torch.no_grad():
        for p in G.mapping.parameters():
            p.zero_()  # w = 0 for every z: one image, one set of class probabilities
    const = calc_metric("ls", G=G, num_gen=64, batch_size=32, progress=False)["results"]
    assert const == {"ls_z": 1.0, "ls_w": 1.0}


def test_ppl_with_given_lpips_weights(tmp_path):
    torch.manual_seed(0)
    net = LPIPSVGG16()
    for k in range(5):  # LPIPS heads are non-negative (trained with clamping), so distances are too
        getattr(net, f"lin{k}").model[1].weight.data.abs_()
    torch.save(net.state_dict(), tmp_path / "lpips_vgg.pth")
    G = _tiny_G()
    out = calc_metric("ppl2_wend", G=G, num_gen=6, batch_size=3, lpips=tmp_path / "lpips_vgg.pth", progress=False)
    value = out["results"]["ppl2_wend"]
    assert math.isfinite(value) and value >= 0


def test_is_with_given_inception_weights(tmp_path):
    torch.manual_seed(0)
    torch.save(FIDInception().state_dict(), tmp_path / "inception.pth")
    out = calc_metric(
        "is50k", G=_tiny_G(), num_gen=1, batch_size=1, inception=tmp_path / "inception.pth", progress=False
    )
    assert out["results"]["is50k_mean"] == pytest.approx(1.0)  # one image: p(y|x) = p(y), KL = 0


def test_missing_weights_and_data_errors(monkeypatch):
    monkeypatch.delenv("STYLEGAN_OFFLINE")  # even online, nothing is downloaded unless asked
    with pytest.raises(MissingWeightsError, match="pt_inception-2015-12-05-6726825d.pth.*not downloaded by default"):
        calc_metric("fid50k_full", G=_tiny_G(), dataset=_real_batches(), num_gen=4, progress=False)
    with pytest.raises(ValueError, match="needs a dataset"):
        calc_metric("kid50k_full", G=_tiny_G(), num_gen=4)
    with pytest.raises(ValueError, match="unknown metric"):
        calc_metric("fid1k", G=_tiny_G())


@needs_classifier
def test_cli_metrics(tmp_path):
    from PIL import Image

    from stylegan.cli.main import main
    from stylegan.io import save_networks

    G = _tiny_G()
    save_networks(tmp_path / "G.safetensors", {"G_ema": G})
    folder = tmp_path / "data"
    folder.mkdir()
    for i, img in enumerate(torch.cat(_real_batches(16))):
        Image.fromarray(img[0].numpy()).save(folder / f"{i:03d}.png")
    runner = CliRunner()
    args = [
        "metrics",
        "--network",
        str(tmp_path / "G.safetensors"),
        "--data",
        str(folder),
        "--metrics",
        "fid_fmnist",
        "--num-gen",
        "16",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "metric.jsonl"),
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    oracle = _fid_fmnist_oracle(G, torch.cat(_real_batches(16)), 16)
    assert line["metric"] == "fid_fmnist" and line["results"]["fid_fmnist"] == pytest.approx(oracle, rel=1e-3)
    assert (tmp_path / "metric.jsonl").read_text().count("\n") == 1
    bad = runner.invoke(main, args[:5] + ["--metrics", "fid1k"])
    assert bad.exit_code == 1 and "unknown metric(s) fid1k" in bad.output
    missing = runner.invoke(main, args[:5] + ["--metrics", "fid50k_full"])
    assert missing.exit_code == 1 and "pt_inception-2015-12-05-6726825d.pth" in missing.output
    assert "Traceback" not in missing.output and len(missing.output.strip().splitlines()) == 1
    assert "--download" in missing.output and str(tmp_path / "cache") in missing.output  # where to put it


def test_missing_scipy_is_one_line_before_any_work(tmp_path, monkeypatch):
    """A plain install (no [metrics] extra) is refused up front, by `metrics` and by `train --metrics`."""
    import importlib.util

    from stylegan.cli.main import main

    real_find_spec = importlib.util.find_spec
    no_scipy = lambda name, *a: None if name == "scipy" else real_find_spec(name, *a)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", no_scipy)
    monkeypatch.setattr("stylegan.cli.metrics.load_G", lambda *a, **k: pytest.fail("G loaded before the check"))
    result = CliRunner().invoke(main, ["metrics", "--metrics", "fid_fmnist", "--data", str(tmp_path)])
    assert result.exit_code == 1 and "pip install 'stylegan[metrics]'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    train = CliRunner().invoke(main, ["train", "--data", str(tmp_path), "--metrics", "fid_fmnist", "--dry-run"])
    assert train.exit_code == 1 and "pip install 'stylegan[metrics]'" in train.output


def test_dataset_fingerprint_sees_dataset_options(tmp_path):
    from PIL import Image

    from stylegan.data import ImageFolderDataset
    from stylegan.metrics.features import dataset_fingerprint, iterate_real

    for i, img in enumerate(torch.cat(_real_batches(8))):
        Image.fromarray(img[0].numpy()).save(tmp_path / f"{i}.png")
    plain, flipped = ImageFolderDataset(tmp_path), ImageFolderDataset(tmp_path, xflip=True)
    assert dataset_fingerprint(plain) == dataset_fingerprint(ImageFolderDataset(tmp_path))
    assert dataset_fingerprint(plain) != dataset_fingerprint(flipped)
    assert dataset_fingerprint(_real_batches()) is None  # plain iterables are not cached
    batches = list(iterate_real(flipped, batch_size=5))
    assert [len(b) for b in batches] == [5, 5, 5, 1] and batches[0].dtype == torch.uint8

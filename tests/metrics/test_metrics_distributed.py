"""`stylegan metrics --gpus N`: sharded images, features gathered in global order, the same values as one process.

Each spawned run costs a few seconds of imports per process; the torchrun variant is marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan.metrics.features import (
    Detector,
    generated_features,
    iterate_real,
    latent_batches,
    real_features,
    shard,
)
from stylegan.metrics.fmnist import default_fmnist_weights

pytest.importorskip("scipy")
needs_classifier = pytest.mark.skipif(not default_fmnist_weights().is_file(), reason="classifier asset missing")


def _tiny_G():
    from stylegan.networks.stylegan2 import Generator, GeneratorConfig

    torch.manual_seed(0)
    cfg = GeneratorConfig(
        z_dim=16, w_dim=16, img_resolution=16, img_channels=1, mapping_layers=2, channel_base=128, channel_max=16
    )
    return Generator(cfg).eval()


class _Images(torch.utils.data.Dataset):
    """A map-style dataset of uint8 [1, 16, 16] images."""

    def __init__(self, n: int):
        gen = torch.Generator().manual_seed(1)
        self.img = torch.randint(0, 256, (n, 1, 16, 16), generator=gen, dtype=torch.uint8)

    def __len__(self) -> int:
        return len(self.img)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.img[i]


def _pixels() -> Detector:
    """A detector whose features are the pixels themselves: any reordering shows."""
    return Detector("pixels", lambda x: x.flatten(1).float(), torch.device("cpu"))


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("STYLEGAN_OFFLINE", "1")


@pytest.fixture
def model_and_data(tmp_path) -> tuple[Path, Path]:
    from PIL import Image

    from stylegan.io import save_networks

    save_networks(tmp_path / "G.safetensors", {"G_ema": _tiny_G()})
    folder = tmp_path / "data"
    folder.mkdir()
    for i, img in enumerate(_Images(40).img):
        Image.fromarray(img[0].numpy()).save(folder / f"{i:03d}.png")
    return tmp_path / "G.safetensors", folder


def test_shards_cover_the_indices_in_order():
    assert [list(shard(7, r, 3)) for r in range(3)] == [[0, 1], [2, 3], [4, 5, 6]]
    assert [len(shard(1, r, 2)) for r in range(2)] == [0, 1]
    G = _tiny_G()
    one = torch.cat([z for z, _ in latent_batches(G, 10, 4, seed=3)])
    two = torch.cat([z for r in range(2) for z, _ in latent_batches(G, 10, 4, seed=3, rank=r, world=2)])
    assert torch.equal(one, two)  # latents of global image i do not depend on the number of processes
    real = torch.cat([b for r in range(3) for b in iterate_real(_Images(10), 4, max_items=9, rank=r, world=3)])
    assert torch.equal(real, _Images(10).img[:9])


def _gather_worker(info, out_dir: str) -> None:
    """Rank r: uneven and empty shares gathered; generated and real features of its shard gathered."""
    from stylegan.metrics.features import gather_rows

    torch.set_num_threads(1)
    rows = np.arange(6, dtype=np.float32).reshape(3, 2) + 10 * info.rank  # rank 0: 3 rows, rank 1: 3 rows
    uneven = gather_rows(rows[: 1 + info.rank], info.rank, info.world_size, torch.device("cpu"))
    empty = np.zeros((0,), np.float32) if info.rank == 0 else rows
    gathered_empty = gather_rows(empty, info.rank, info.world_size, torch.device("cpu"))
    shard_kw = dict(rank=info.rank, world=info.world_size)
    gen = generated_features(_pixels(), _tiny_G(), num=10, batch_size=4, device=torch.device("cpu"), **shard_kw)
    real = real_features(_pixels(), _Images(9), max_items=None, batch_size=2, use_cache=False, **shard_kw)
    np.savez(Path(out_dir) / f"rank{info.rank}.npz", uneven=uneven, empty=gathered_empty, gen=gen, real=real)


def test_gathered_features_are_in_global_order(tmp_path):
    from stylegan.distributed import spawn

    spawn(_gather_worker, (str(tmp_path),), 2, "cpu")
    one_gen = generated_features(_pixels(), _tiny_G(), num=10, batch_size=4, device=torch.device("cpu"))
    one_real = real_features(_pixels(), _Images(9), max_items=None, batch_size=2, use_cache=False)
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)
    for rank in range(2):
        out = np.load(tmp_path / f"rank{rank}.npz")
        np.testing.assert_array_equal(out["uneven"], np.concatenate([rows[:1], rows[:2] + 10]))
        np.testing.assert_array_equal(out["empty"], rows + 10)
        np.testing.assert_allclose(out["gen"], one_gen, rtol=1e-5, atol=1e-4)  # [10, 256] pixels 0..255
        np.testing.assert_array_equal(out["real"], one_real)


def _cli_args(network: Path, data: Path, out: Path, gpus: int) -> list[str]:
    return [
        "metrics", "--network", str(network), "--data", str(data), "--metrics", "fid_fmnist,kid_fmnist",
        "--num-gen", "64", "--batch", "16", "--device", "cpu", "--out", str(out), "--gpus", str(gpus),
    ]  # fmt: skip


def _results(out: Path) -> dict:
    return {k: v for line in out.read_text().splitlines() for k, v in json.loads(line)["results"].items()}


@needs_classifier
def test_two_processes_give_the_values_of_one(tmp_path, model_and_data):
    from stylegan.cli.main import main
    from stylegan.metrics.weights import cache_dir

    network, data = model_and_data
    runner = CliRunner()
    two = runner.invoke(main, _cli_args(network, data, tmp_path / "two.jsonl", 2))  # rank 0 writes the cache
    assert two.exit_code == 0, two.output
    (cached,) = (cache_dir() / "features").glob("fmnist-*.npy")
    assert np.load(cached).shape == (40, 256)
    one = runner.invoke(main, [*_cli_args(network, data, tmp_path / "one.jsonl", 1), "--no-cache"])
    assert one.exit_code == 0, one.output
    r1, r2 = _results(tmp_path / "one.jsonl"), _results(tmp_path / "two.jsonl")
    assert r1.keys() == r2.keys() == {"fid_fmnist", "kid_fmnist"}
    for key in r1:
        assert r2[key] == pytest.approx(r1[key], rel=1e-4), key


def test_bad_gpus_and_rank_errors_are_one_line(tmp_path, model_and_data):
    import click

    from stylegan.cli.main import main
    from stylegan.cli.metrics import _check_gpus

    network, data = model_and_data
    runner = CliRunner()
    bad = runner.invoke(main, _cli_args(network, data, tmp_path / "m.jsonl", 0))
    assert bad.exit_code == 1 and bad.output.strip() == "Error: --gpus 0: use 1 or more processes"
    if torch.cuda.device_count() < 64:
        with pytest.raises(click.ClickException, match="CUDA GPU\\(s\\) are visible; use --gpus"):
            _check_gpus(64, torch.device("cuda"))
    args = _cli_args(network, data, tmp_path / "m.jsonl", 2)
    failed = runner.invoke(main, [*args[:5], "--metrics", "fid50k_full", *args[7:]])  # no Inception offline
    assert failed.exit_code == 1 and "Traceback" not in failed.output, failed.output
    assert failed.output.startswith("Error: pt_inception-2015-12-05-6726825d.pth is needed and not downloaded")
    assert len(failed.output.strip().splitlines()) == 1


@pytest.mark.slow
@needs_classifier
def test_torchrun_gives_the_values_of_one(tmp_path, model_and_data):
    from stylegan.cli.main import main

    network, data = model_and_data
    args = _cli_args(network, data, tmp_path / "tr.jsonl", 1)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "stylegan"]
    done = subprocess.run([*cmd, *args], env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    one = CliRunner().invoke(main, _cli_args(network, data, tmp_path / "one.jsonl", 1))
    assert one.exit_code == 0, one.output
    r1, r2 = _results(tmp_path / "one.jsonl"), _results(tmp_path / "tr.jsonl")
    assert r1.keys() == r2.keys() and all(r2[k] == pytest.approx(r1[k], rel=1e-4) for k in r1)

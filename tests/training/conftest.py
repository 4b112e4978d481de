"""Tiny training configurations shared by the training tests."""

import shutil
from pathlib import Path

import pytest
import torch

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "att-faces"

# 16x16 grayscale, channels 32, z/w 32, 2 mapping layers, batch 4: a step takes a fraction of a second.
TINY_ARGS = [
    "--resolution",
    "16",
    "--cfg",
    "auto",
    "--batch",
    "4",
    "--cbase",
    "256",
    "--cmax",
    "32",
    "--z-dim",
    "32",
    "--w-dim",
    "32",
    "--map-depth",
    "2",
    "--mbstd-group",
    "2",
    "--device",
    "cpu",
]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is fastest, and far faster than two on a loaded machine (no spin-waits).

    Subprocesses get OMP_NUM_THREADS=1, so in-process and subprocess runs compute the same floats."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_args() -> list[str]:
    """CLI flags of the tiny configuration."""
    return list(TINY_ARGS)


@pytest.fixture
def tiny_options():
    """A factory of TrainingOptions matching TINY_ARGS, with overrides."""
    from stylegan.training import TrainingOptions

    def make(**overrides):
        kw = dict(
            resolution=16,
            cfg="auto",
            batch=4,
            cbase=256,
            cmax=32,
            z_dim=32,
            w_dim=32,
            map_depth=2,
            mbstd_group=2,
            device="cpu",
        )
        kw.update(overrides)
        return TrainingOptions(**kw)

    return make


@pytest.fixture
def faces(tmp_path) -> Path:
    """A copy of the 12 AT&T faces fixture (92x112 PGM)."""
    dest = tmp_path / "faces"
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("*.md"))
    return dest

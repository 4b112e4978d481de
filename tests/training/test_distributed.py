"""One process accumulating 2 chunks equals 2 processes (gloo, CPU) with the same global batch.

About 10 s each on an idle 2-core machine; the torchrun variant repeats the check through the launcher (slow).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STEPS = 4  # includes the lazy R1 and path-length steps (step 0)


def _losses(run_dir: Path) -> list[dict]:
    lines = [json.loads(ln) for ln in (run_dir / "stats.jsonl").read_text().splitlines()]
    return [{k: v for k, v in d.items() if k.startswith(("Loss/", "Progress/")) or k == "kimg"} for d in lines]


def _assert_close(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) == STEPS
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            if x[key] is None:
                assert y[key] is None
            else:
                # Different thread counts and reduction orders give ~1e-6 differences that a few GAN steps
                # (Adam normalises tiny gradients) grow to ~1e-4.
                assert y[key] == pytest.approx(x[key], rel=2e-3, abs=1e-4), key


def _run_one_process(faces, tmp_path, tiny_options):
    from stylegan.training import train_run

    opts = tiny_options(
        data=str(faces),
        outdir=str(tmp_path / "one"),
        kimg=STEPS * 4 / 1000,
        tick=0.004,
        snap=1000,
        batch_gpu=2,
        aug="ada",
        target=0.5,
        ada_kimg=0.1,
    )
    return train_run(opts, progress=False)


def test_one_vs_two_spawned_processes(faces, tmp_path, tiny_options):
    from stylegan.training import train_run

    one = _run_one_process(faces, tmp_path, tiny_options)
    opts = tiny_options(
        data=str(faces),
        outdir=str(tmp_path / "two"),
        kimg=STEPS * 4 / 1000,
        tick=0.004,
        snap=1000,
        batch_gpu=2,
        gpus=2,
        aug="ada",
        target=0.5,
        ada_kimg=0.1,
    )
    two = train_run(opts, progress=False)
    _assert_close(_losses(one), _losses(two))


@pytest.mark.slow
def test_one_vs_two_processes_under_torchrun(faces, tmp_path, tiny_options, tiny_args):
    one = _run_one_process(faces, tmp_path, tiny_options)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "stylegan",
        "train",
        *tiny_args,
        "--data",
        str(faces),
        "--outdir",
        str(tmp_path / "tr"),
        "--kimg",
        str(STEPS * 4 / 1000),
        "--tick",
        "0.004",
        "--snap",
        "1000",
        "--batch-gpu",
        "2",
        "--aug",
        "ada",
        "--target",
        "0.5",
        "--ada-kimg",
        "0.1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = list((tmp_path / "tr").iterdir())
    _assert_close(_losses(one), _losses(run_dir))

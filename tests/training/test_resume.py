"""Exact resume: a run killed with SIGKILL and resumed with --resume latest equals an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

STEPS = 10  # batch 4 -> 0.040 kimg
ADA = ["--aug", "ada", "--ada-kimg", "0.1", "--target", "0.5"]  # p moves by 0.16 per adjustment


def _cli(tiny_args, *args):
    return [sys.executable, "-m", "stylegan", "train", *tiny_args, *ADA, "--tick", "0.004", *args]


def _env():
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


def _kill_after_snapshot(cmd, outdir: Path, min_kimg: float, timeout: float = 300) -> float:
    """Starts training, SIGKILLs it once a training state >= min_kimg exists; returns that kimg."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            states = [float(p.name[len("training-state-") : -3]) for p in outdir.glob("*/training-state-*.pt")]
            if states and max(states) >= min_kimg:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return max(states)
            if proc.poll() is not None:
                raise AssertionError(f"training ended before it was killed: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
        raise AssertionError("no snapshot appeared in time")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stats(run_dir: Path) -> list[dict]:
    lines = [json.loads(ln) for ln in (run_dir / "stats.jsonl").read_text().splitlines()]
    return [{k: v for k, v in d.items() if not k.startswith("Timing") and k != "timestamp"} for d in lines]


def test_sigkill_and_resume_latest_equals_uninterrupted_run(faces, tmp_path, tiny_args, tiny_options):
    from stylegan.training import train_run

    kimg = STEPS * 4 / 1000
    ref = tiny_options(data=str(faces), outdir=str(tmp_path / "ref"), kimg=kimg, tick=0.004, snap=1000)
    ref_dir = train_run(replace(ref, aug="ada", ada_kimg=0.1, target=0.5), progress=False)
    killed_out = tmp_path / "killed"
    killed_at = _kill_after_snapshot(
        _cli(tiny_args, "--data", str(faces), "--outdir", str(killed_out), "--kimg", "1", "--snap", "3"),
        killed_out,
        min_kimg=0.012,
    )
    assert killed_at < kimg, f"the process ran to {killed_at} kimg before it was killed; the test needs < {kimg}"
    done = subprocess.run(
        _cli(tiny_args, "--outdir", str(killed_out), "--resume", "latest", "--kimg", str(kimg)),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = list(killed_out.iterdir())

    ref, resumed = _stats(ref_dir), _stats(run_dir)
    assert [d["step"] for d in resumed] == list(range(1, STEPS + 1))
    assert resumed == ref  # losses, kimg, augment p, r_t, pl_mean: step for step
    assert ref[-1]["Progress/augment_p"] > 0  # ADA moved p, and resume kept it
    name = f"network-{kimg:010.3f}.safetensors"
    a, b = load_file(str(ref_dir / name)), load_file(str(run_dir / name))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_resume_path_that_is_not_a_run_is_a_one_line_error(tmp_path):
    from click.testing import CliRunner

    from stylegan.cli.train import train

    result = CliRunner().invoke(train, ["--resume", str(tmp_path), "--outdir", str(tmp_path)])
    assert result.exit_code != 0
    assert "not a run folder" in result.output and "Traceback" not in result.output


def _wait_for_stats_lines(proc, run_glob, count: int, timeout: float = 300) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for stats in run_glob():
            if stats.read_text().count("\n") >= count:
                return stats.parent
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    raise AssertionError("no stats appeared in time")


def test_sigint_saves_a_snapshot_says_so_and_resume_equals_uninterrupted(faces, tmp_path, tiny_args, tiny_options):
    """Ctrl-C with the default snapshot interval: the run stops at a step boundary with a snapshot; resuming from
    it ends with the networks of an uninterrupted run. The run folder and the resume point are printed."""
    from stylegan.training import train_run

    kimg = STEPS * 4 / 1000
    ref = tiny_options(data=str(faces), outdir=str(tmp_path / "ref"), kimg=kimg, tick=0.004, snap=1000)
    ref_dir = train_run(replace(ref, aug="ada", ada_kimg=0.1, target=0.5), progress=False)
    out = tmp_path / "stopped"
    cmd = _cli(tiny_args, "--data", str(faces), "--outdir", str(out), "--kimg", "1")  # default --snap 50
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        run_dir = _wait_for_stats_lines(proc, lambda: list(out.glob("*/stats.jsonl")), 3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err.decode()
    assert proc.returncode == 130, err[-2000:]
    assert f"run folder: {run_dir}" in err
    states = sorted(run_dir.glob("training-state-*.pt"))  # tick 0's, and the one written on SIGINT
    assert len(states) == 2, states
    state = states[-1]
    stopped_kimg = float(state.name[len("training-state-") : -3])
    assert 0.012 <= stopped_kimg < kimg, f"stopped at {stopped_kimg}; the test needs < {kimg}"
    assert f"stopped by SIGINT at kimg {stopped_kimg:.3f}" in err and state.name in err and "--resume latest" in err
    done = subprocess.run(
        _cli(tiny_args, "--outdir", str(out), "--resume", "latest", "--kimg", str(kimg)),
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    steps = round(stopped_kimg * 1000 / 4)
    assert f"resuming {run_dir} from {state.name} (kimg {stopped_kimg:.3f}, step {steps}," in done.stderr
    name = f"network-{kimg:010.3f}.safetensors"
    a, b = load_file(str(ref_dir / name)), load_file(str(run_dir / name))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)

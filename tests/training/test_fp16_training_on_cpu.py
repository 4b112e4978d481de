"""A training run with CUDA's fp16 blocks, on the CPU (its fp16 kernels standing in for CUDA's; CI has no GPU): the
D step's gradient-free generation, the main and lazily regularised steps (R1, path length), ADA and the EMA all meet
half-precision activations with fp32 parameters, where the 2026-11-30 rewrite of nn/ had broken two casts."""

import json
import math
from dataclasses import replace

import pytest

import stylegan.device
from stylegan.io import load_networks
from stylegan.training import train_run


@pytest.mark.parametrize("cfg", ["auto", "stylegan3-t"])
def test_fp16_training_steps_stay_finite(faces, tmp_path, tiny_options, monkeypatch, cfg):
    monkeypatch.setattr(stylegan.device, "fp16_supported", lambda device: True)
    extra = {"num_layers": 4} if cfg == "stylegan3-t" else {}
    opts = tiny_options(data=str(faces), cfg=cfg, aug="ada", tick=0.016, snap=1000, **extra)
    run = train_run(replace(opts, outdir=str(tmp_path), kimg=17 * 0.004), progress=False)  # 17 steps: D reg at 16
    resolved = json.loads((run / "config.json").read_text())["resolved"]
    assert resolved["G"]["num_fp16_res"] > 0
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    losses = {k: v for row in rows for k, v in row.items() if k.startswith("Loss/")}
    assert {"Loss/G/loss", "Loss/D/loss_real", "Loss/D/r1_penalty"} <= set(losses), sorted(losses)
    assert all(math.isfinite(v) for row in rows for k, v in row.items() if k.startswith("Loss/"))
    G = load_networks(sorted(run.glob("network-*.safetensors"))[-1])["G_ema"]
    assert all(math.isfinite(float(p.abs().sum())) for p in G.parameters())

"""Where a training step spends its time: per-phase milliseconds over lazy-regularisation cycles, and (--profile)
the top operators by self device time. Uses the real training loop (stylegan.training.loop) on a real dataset.

    python benchmarks/profile_train.py --data att256.zip --cfg paper256 --batch 32 --device cuda --profile
    python benchmarks/profile_train.py --data tests/fixtures/att-faces --resolution 32 --cbase 1024 --device cpu

One cycle is 16 steps (R1 every 16, path length every 4), as NVIDIA's measurement of its training speed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict

import torch

from stylegan.distributed import ProcessInfo
from stylegan.nn import conv_gradfix
from stylegan.training import loop
from stylegan.training.options import TrainingOptions


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_cycles(run, cycles: int) -> dict[str, float]:
    """Milliseconds per cycle spent in each phase and in the rest of the step (data, EMA, ADA)."""
    totals: dict[str, float] = defaultdict(float)
    inner = loop.run_phase

    def phase_timer(run_, phase_idx, phase, *args):
        _sync(run_.device)
        start = time.perf_counter()
        inner(run_, phase_idx, phase, *args)
        _sync(run_.device)
        totals[phase.name] += time.perf_counter() - start

    loop.run_phase = phase_timer
    try:
        _sync(run.device)
        start = time.perf_counter()
        for _ in range(16 * cycles):
            loop.train_step(run)
        _sync(run.device)
        totals["step total"] = time.perf_counter() - start
    finally:
        loop.run_phase = inner
    totals["other (data, EMA, ADA)"] = totals["step total"] - sum(v for k, v in totals.items() if k != "step total")
    return {k: v * 1000 / cycles for k, v in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--cfg", default="auto")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--cbase", type=int, default=None)
    ap.add_argument("--aug", default="noaug")
    ap.add_argument("--p", type=float, default=None, help="fixed augment p (with --aug fixed)")
    ap.add_argument("--pl-weight", type=float, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--warmup-cycles", type=int, default=1)
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="also print the top operators of one cycle")
    ap.add_argument("--gradfix", choices=["cuda", "always", "never"], default="cuda", help="conv_gradfix.enabled (A/B)")
    args = ap.parse_args()
    conv_gradfix.enabled = args.gradfix

    with tempfile.TemporaryDirectory() as outdir:
        opts = TrainingOptions(
            data=args.data, outdir=outdir, cfg=args.cfg, batch=args.batch, resolution=args.resolution,
            cbase=args.cbase, aug=args.aug, p=args.p, pl_weight=args.pl_weight, device=args.device, kimg=1e6,
        )  # fmt: skip
        run = loop.setup_run(opts, ProcessInfo())
        start = time.perf_counter()
        for _ in range(16 * args.warmup_cycles):
            loop.train_step(run)
        _sync(run.device)
        print(f"{args.cfg} {run.dataset.resolution}², batch {args.batch}, device {run.device}; "
              f"warm-up {args.warmup_cycles} cycle(s): {time.perf_counter() - start:.1f} s")  # fmt: skip
        ms = timed_cycles(run, args.cycles)
        cycle_ms = ms["step total"]
        print("| part | ms per 16-step cycle | share |")
        print("|---|---|---|")
        for name, value in sorted(ms.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {value:.0f} | {value / cycle_ms:.0%} |")
        print(f"=> {cycle_ms / 16 / args.batch:.2f} s/kimg (conv_gradfix {args.gradfix})")
        if args.profile:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if run.device.type == "cuda":
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            with torch.profiler.profile(activities=activities) as prof:
                for _ in range(16):
                    loop.train_step(run)
                _sync(run.device)
            key = "self_cuda_time_total" if run.device.type == "cuda" else "self_cpu_time_total"
            print(prof.key_averages().table(sort_by=key, row_limit=30, max_name_column_width=60))


if __name__ == "__main__":
    main()

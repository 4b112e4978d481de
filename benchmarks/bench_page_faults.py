"""Why the CPU path pools its large tensors: first-touch cost of fresh memory, and page faults per generator forward.

1. Writing a fresh tensor of N MB (torch.empty + fill_) against writing the same memory again: the difference is
   the kernel mapping and zeroing its pages, paid on every call by a tensor allocated per call.
2. Minor page faults (getrusage) per steady-state config-f forward (batch 1, fp32, noise_mode="const", after
   warm-up), with stylegan.nn.workspace's pool and oneDNN's in-place convolution on and off, and the time.

    python benchmarks/bench_page_faults.py [--res 256] [--rounds 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_generate import config_f  # noqa: E402

from stylegan.networks import Generator  # noqa: E402
from stylegan.nn import conv, workspace  # noqa: E402

DEFAULTS = (conv.ONEDNN_INTO, workspace.ENABLED)


def pooling(on: bool) -> None:
    """The pool and oneDNN's in-place convolution as shipped (on) or both off."""
    conv.ONEDNN_INTO, workspace.ENABLED = (DEFAULTS[0] and on, DEFAULTS[1] and on)


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def median_ms(fn, repeats: int = 15) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def first_touch_table() -> None:
    print("| tensor | fresh: empty + fill_ (ms) | same memory again: fill_ (ms) |")
    print("|---|---|---|")
    for mb in (4, 16, 32, 128):
        numel = mb * (1 << 20) // 4
        kept = torch.empty(numel)
        fresh = median_ms(lambda n=numel: torch.empty(n).fill_(1.0))
        again = median_ms(lambda k=kept: k.fill_(1.0))
        print(f"| {mb} MB float32 | {fresh:.2f} | {again:.2f} |")


def forward_table(res: int, rounds: int) -> None:
    G = Generator(config_f(res)).eval().requires_grad_(False)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0))
    variants = {"pooled (default)": True, "no pool, no in-place conv": False}
    faults: dict[str, list[int]] = {name: [] for name in variants}
    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.no_grad():
        for on in variants.values():  # warm-up: caches, oneDNN primitives, the pool
            pooling(on)
            G(z, None, noise_mode="const")
        for _ in range(rounds):
            for name, on in variants.items():
                pooling(on)
                before, t0 = minor_faults(), time.perf_counter()
                G(z, None, noise_mode="const")
                times[name].append(time.perf_counter() - t0)
                faults[name].append(minor_faults() - before)
    pooling(True)
    threads = torch.get_num_threads()
    print(f"\nconfig-f {res}², batch 1, fp32, {threads} threads, {rounds} alternating rounds (medians)\n")
    print("| variant | minor page faults per forward | MB faulted in | s/img |")
    print("|---|---|---|---|")
    for name in variants:
        f = statistics.median(faults[name])
        print(f"| {name} | {f:.0f} | {f * 4096 / 2**20:.1f} | {statistics.median(times[name]):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {args.threads} threads\n")
    first_touch_table()
    forward_table(args.res, args.rounds)


if __name__ == "__main__":
    main()

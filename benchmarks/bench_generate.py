"""Generator forward throughput: images/s, achieved GFLOP/s and peak memory, as a table.

CPU: fp32. CUDA: fp32, fp16 (NVIDIA's layout: the 4 highest-resolution blocks in fp16 with conv_clamp 256, or all
blocks with --all-fp16) and bf16 autocast. Random weights: speed does not depend on them.

    python benchmarks/bench_generate.py                      # config-f 256² and 1024² + a small preset
    python benchmarks/bench_generate.py --res 256 --batch 32 --device cuda
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from stylegan.networks import Generator, build_configs


def count_gflop(G, ws) -> float:
    """Forward GFLOP per image (matmul/conv FLOPs as torch counts them)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G.synthesis(ws[:1], noise_mode="const", force_fp32=True)
    return counter.get_total_flops() / 1e9


def time_forward(G, ws, mode: str, repeats: int) -> tuple[float, float]:
    """Seconds per batch (median) and peak memory in GiB (CUDA only)."""
    dev = ws.device
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if mode == "bf16" else contextlib.nullcontext()
    force_fp32 = mode != "fp16"
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.no_grad(), ctx:
        for i in range(repeats + 1):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            G.synthesis(ws, noise_mode="const", force_fp32=force_fp32)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i > 0:  # first call is warm-up
                times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
    return sorted(times)[len(times) // 2], peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--res", type=int, nargs="*", default=None, help="config-f resolutions (default 256 1024)"
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="default: 1 on CPU, 32 (256²) / 8 (1024²) on CUDA"
    )
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--all-fp16", action="store_true", help="fp16 in every block (CUDA)")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()

    from stylegan.device import select_device

    dev = select_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    modes = ["fp32"] if dev.type != "cuda" else ["fp32", "fp16", "bf16"]
    cases = [("stylegan2 (config-f)", r, {}) for r in (args.res or [256, 1024])]
    cases.append(("cifar", 32, {}))
    print(
        f"device: {dev} ({torch.cuda.get_device_name(0) if dev.type == 'cuda' else torch.get_num_threads()} "
        f"{'' if dev.type == 'cuda' else 'threads'}), torch {torch.__version__}"
    )
    print("| config | res | batch | mode | ms/batch | img/s | GFLOP/img | GFLOP/s | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, res, overrides in cases:
        cfg = name.split()[0]
        g, _ = build_configs(cfg, res, num_fp16_res=(99 if args.all_fp16 else 4), conv_clamp=256, **overrides)
        G = Generator(g).eval().to(dev)
        if args.channels_last:
            G = G.to(memory_format=torch.channels_last)
        batch = args.batch or (1 if dev.type != "cuda" else (32 if res <= 256 else 8))
        repeats = args.repeats or (3 if dev.type != "cuda" else 20)
        with torch.no_grad():
            ws = G.mapping(torch.randn(batch, g.z_dim, device=dev), None)
        gflop = count_gflop(G, ws)
        for mode in modes:
            sec, peak = time_forward(G, ws, mode, repeats)
            print(
                f"| {name} | {res} | {batch} | {mode} | {sec * 1e3:.1f} | {batch / sec:.2f} | {gflop:.1f} | "
                f"{gflop * batch / sec:.1f} | {peak:.2f} |"
            )


if __name__ == "__main__":
    main()

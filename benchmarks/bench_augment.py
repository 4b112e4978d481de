"""Time AugmentPipe (forward, and forward + backward) per preset and size; prints a markdown table.

python benchmarks/bench_augment.py [--device cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from stylegan.training.augment import AugmentPipe

CASES = [
    ("bgc", 1, 32, 32),
    ("bgc", 1, 64, 32),
    ("bgc", 3, 64, 32),
    ("bgcfnc", 3, 64, 32),
    ("bgc", 3, 256, 32),
]


def _time(fn, device: str, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-res", type=int, default=256)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"device {args.device}, torch {torch.__version__}, threads {threads}, p=1 (every op on every image)")
    print("| preset | C | res | batch | forward ms | forward+backward ms | img/s (fwd) |")
    print("|---|---|---|---|---|---|---|")
    for preset, channels, res, batch in CASES:
        if res > args.max_res:
            continue
        pipe = AugmentPipe(preset, p=1.0).to(args.device)
        x = torch.rand(batch, channels, res, res, device=args.device) * 2 - 1
        xg = x.clone().requires_grad_()
        fwd = _time(lambda pipe=pipe, x=x: pipe(x), args.device, args.repeats)
        both = _time(lambda pipe=pipe, xg=xg: pipe(xg).square().sum().backward(), args.device, args.repeats)
        row = [preset, channels, res, batch, f"{fwd * 1e3:.1f}", f"{both * 1e3:.1f}", f"{batch / fwd:.0f}"]
        print("| " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()

"""Winograd F(m x m, 3 x 3) against the direct convolution, per config-f layer shape and for the whole generator.

Layer table: the modulated 3x3 'same' convolution of every config-f resolution (512 channels at 4²..64², 256 at 128²,
128 at 256², 64 at 512², 32 at 1024²), batch 1, fp32, channels_last, as conv.py runs it: direct = modulate the
weight, then F.conv2d; F(m) = winograd.conv3x3 on the cached transform of the shared weight. Times are the minimum
over repeats of the CPU time this process used (1 thread; robust on a shared, loaded machine) and of the wall time
with --threads (default 2). The error column is max |y - y64| / max |y64| against a float64 F.conv2d on rectified
Gaussian activations. These numbers set winograd.MIN_CHANNELS.

    python benchmarks/bench_winograd.py                      # layer table
    python benchmarks/bench_winograd.py --generator --res 256 1024 [--compare-nvidia PATH] [--repeats 5]

--generator times the config-f G (eval, fp32, batch 1, noise const) with the fast path off and with each tile size,
alternating the variants round by round in one process (and NVIDIA's reference path with --compare-nvidia, through
bench_generate's loader), and prints each variant's largest difference from the path-off output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from stylegan.nn import winograd

sys.path.insert(0, str(Path(__file__).parent))  # bench_generate's config and NVIDIA loader

LAYERS = [(512, 4), (512, 8), (512, 16), (512, 32), (512, 64), (256, 128), (128, 256), (64, 512), (32, 1024)]
TILES = (2, 4)


def best_time(fn, repeats: int, clock) -> float:
    """Minimum seconds of fn() over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)


def layer_inputs(c: int, res: int) -> tuple:
    """(x, weight, styles, demodulation, bias) in float64 for one layer shape; x channels_last."""
    gen = torch.Generator().manual_seed(c * res)
    x = torch.randn(1, c, res, res, generator=gen, dtype=torch.float64).mul(2).relu()
    weight = torch.randn(c, c, 3, 3, generator=gen, dtype=torch.float64)
    styles = torch.randn(c, generator=gen, dtype=torch.float64)
    demod = torch.rsqrt((weight * styles[None, :, None, None]).square().sum((1, 2, 3)))
    bias = torch.randn(c, generator=gen, dtype=torch.float64)
    return x.contiguous(memory_format=torch.channels_last), weight, styles, demod, bias


def layer_variants(x, weight, styles, demod, bias) -> dict:
    """name -> zero-argument callable computing the layer in float32."""
    x, weight, styles, demod, bias = (t.float() for t in (x, weight, styles, demod, bias))

    def direct():
        w_n = weight * styles[None, :, None, None] * demod[:, None, None, None]
        return F.conv2d(x, w_n, bias, padding=1)

    variants = {"direct": direct}
    for m in TILES:
        u = winograd.weight_transform(weight, m)
        variants[f"F({m})"] = lambda u=u, m=m: winograd.conv3x3(
            x, u, m, in_scale=styles, out_scale=demod, bias=bias
        )  # fmt: skip
    return variants


def layer_table(repeats: int, threads: int) -> None:
    """Prints CPU ms (1 thread), wall ms (`threads`) and relative error per layer shape and variant."""
    names = ["direct"] + [f"F({m})" for m in TILES]
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    head = " | ".join(f"{n} cpu ms | {n} wall ms" for n in names)
    print(f"| C@res | {head} | " + " | ".join(f"{n} rel err" for n in names) + " |")
    print("|---" * (1 + 3 * len(names)) + "|")
    with torch.no_grad():
        for c, res in LAYERS:
            inputs = layer_inputs(c, res)
            ref = F.conv2d(inputs[0] * inputs[2][:, None, None], inputs[1], padding=1)
            ref = ref * inputs[3][:, None, None] + inputs[4][:, None, None]
            variants = layer_variants(*inputs)
            reps = repeats if res >= 64 else 4 * repeats
            cells, errs = [], []
            for fn in variants.values():
                torch.set_num_threads(1)
                cpu = best_time(fn, reps, time.process_time)
                torch.set_num_threads(threads)
                wall = best_time(fn, reps, time.perf_counter)
                cells.append(f"{cpu * 1e3:.1f} | {wall * 1e3:.1f}")
                errs.append(f"{((fn().double() - ref).abs().max() / ref.abs().max()).item():.1e}")
            print(f"| {c}@{res}² | " + " | ".join(cells) + " | " + " | ".join(errs) + " |", flush=True)


def generator_table(resolutions: list[int], repeats: int, nvidia: Path | None) -> None:
    """Alternating whole-G timings: fast path off, each tile size, and NVIDIA's reference path when given."""
    import bench_generate as bg

    from stylegan.networks import Generator

    networks = bg.import_nvidia(nvidia) if nvidia else None
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for res in resolutions:
        if networks is not None:
            ours, theirs = bg.paired_generators(networks, res)
        else:
            torch.manual_seed(0)
            ours, theirs = Generator(bg.config_f(res)).eval(), None
        z = torch.randn(1, 512, generator=torch.Generator().manual_seed(res))
        variants = {"direct": None, **{f"F({m})": m for m in TILES}}
        times, images = _alternate(ours, theirs, z, variants, repeats)
        _report(res, times, images)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def _alternate(ours, theirs, z, variants: dict, repeats: int) -> tuple[dict, dict]:
    """Round-robin timing of every variant (and theirs); returns (name -> seconds list, name -> image)."""
    import bench_generate as bg

    saved, times, images = winograd.TILE, {}, {}
    try:
        with torch.no_grad():
            for round_ in range(repeats + 1):  # round 0 warms up (and fills the weight-transform cache)
                for name, tile in variants.items():
                    winograd.TILE = tile
                    t0 = time.perf_counter()
                    images[name] = bg.forward_image(ours, z)
                    if round_:
                        times.setdefault(name, []).append(time.perf_counter() - t0)
                if theirs is not None:
                    t0 = time.perf_counter()
                    images["NVIDIA"] = bg.forward_image(theirs, z)
                    if round_:
                        times.setdefault("NVIDIA", []).append(time.perf_counter() - t0)
                if round_:
                    times.setdefault("load", []).append(os.getloadavg()[0])
    finally:
        winograd.TILE = saved
    return times, images


def _report(res: int, times: dict, images: dict) -> None:
    """One markdown table per resolution: min/median s/img, speed-up vs NVIDIA, max difference."""
    base = images.get("NVIDIA", images["direct"])
    against = "NVIDIA" if "NVIDIA" in images else "direct"
    print(f"\n{res}²: rounds' 1-min load {' '.join(f'{v:.2f}' for v in times.pop('load'))}")
    print(f"| variant | min s/img | median s/img | NVIDIA min ÷ min | max abs diff vs {against} |")
    print("|---|---|---|---|---|")
    theirs = min(times["NVIDIA"]) if "NVIDIA" in times else float("nan")
    for name, ts in times.items():
        diff = (images[name] - base).abs().max().item()
        print(f"| {name} | {min(ts):.3f} | {statistics.median(ts):.3f} | {theirs / min(ts):.2f}× | {diff:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", action="store_true", help="whole-G table instead of the layer table")
    parser.add_argument("--res", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare-nvidia", type=Path, default=None, metavar="PATH")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.generator:
        generator_table(args.res, args.repeats, args.compare_nvidia)
    else:
        layer_table(args.repeats, args.threads)


if __name__ == "__main__":
    main()

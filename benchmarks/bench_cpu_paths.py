"""What each CPU inference formulation buys: the config-f generator with each one switched off in turn, as a table.

The formulations (gradient-free fp32 CPU inference only; see the module docstring of stylegan.nn.conv):
phase up-sampling (conv.PHASED_UP), the scaled-activation path with oneDNN-packed weights for low resolutions
(conv.SCALE_ACTIVATIONS_BELOW, conv.ONEDNN_PACKED), Winograd F(4, 3) (winograd.TILE) and its packed GEMM weights
(winograd.ONEDNN_PACKED), and pooled memory for large outputs and temporaries (conv.ONEDNN_INTO, nn/workspace.py:
no page faults for fresh 32 MB tensors on every call). Every variant runs in the same process on the same weights,
alternating round by round (so a shared machine's load hits all alike); G_ema-style eval forward, batch 1,
noise_mode="const". Times are medians over the rounds, whole G and per synthesis block (forward hooks); the last
column is each variant's largest difference from the all-on image.

    python benchmarks/bench_cpu_paths.py [--res 256] [--rounds 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_generate import _cpu_name, _git_head, _load, config_f  # noqa: E402

from stylegan.networks import Generator  # noqa: E402
from stylegan.nn import conv, winograd, workspace  # noqa: E402

DEFAULTS = {
    (conv, "PHASED_UP"): conv.PHASED_UP,
    (conv, "SCALE_ACTIVATIONS_BELOW"): conv.SCALE_ACTIVATIONS_BELOW,
    (conv, "ONEDNN_PACKED"): conv.ONEDNN_PACKED,
    (winograd, "TILE"): winograd.TILE,
    (winograd, "ONEDNN_PACKED"): winograd.ONEDNN_PACKED,
    (conv, "ONEDNN_INTO"): conv.ONEDNN_INTO,
    (workspace, "ENABLED"): workspace.ENABLED,
}
VARIANTS = {  # name -> the settings that differ from the defaults
    "all on": {},
    "no phase up-sampling": {(conv, "PHASED_UP"): False},
    "no low-res scaling/packing": {(conv, "SCALE_ACTIVATIONS_BELOW"): 0, (conv, "ONEDNN_PACKED"): False},
    "no packed Winograd GEMMs": {(winograd, "ONEDNN_PACKED"): False},
    "no Winograd": {(winograd, "TILE"): None},
    "no pooled memory": {(conv, "ONEDNN_INTO"): False, (workspace, "ENABLED"): False},
    "all off": {
        (conv, "PHASED_UP"): False,
        (conv, "SCALE_ACTIVATIONS_BELOW"): 0,
        (conv, "ONEDNN_PACKED"): False,
        (winograd, "TILE"): None,
        (conv, "ONEDNN_INTO"): False,
        (workspace, "ENABLED"): False,
    },
}


def apply(settings: dict) -> None:
    for (module, name), default in DEFAULTS.items():
        setattr(module, name, settings.get((module, name), default))


def block_timer(G: torch.nn.Module) -> dict[str, float]:
    """Forward hooks that record each synthesis block's last duration (seconds) into the returned dict."""
    last: dict[str, float] = {}
    started: dict[str, float] = {}
    for name, block in G.synthesis.named_children():
        block.register_forward_pre_hook(lambda m, a, name=name: started.__setitem__(name, time.perf_counter()))
        block.register_forward_hook(
            lambda m, a, o, name=name: last.__setitem__(name, time.perf_counter() - started[name])
        )
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    G = Generator(config_f(args.res)).eval().requires_grad_(False)
    blocks = block_timer(G)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0))
    repo = Path(__file__).resolve().parents[1]
    print(f"# CPU inference formulations, config-f {args.res}², batch 1, fp32, {args.threads} threads")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S')}, cpu: {_cpu_name()}, torch {torch.__version__}")
    print(f"repo HEAD {_git_head(repo)}; load average at start: {_load()}; {args.rounds} alternating rounds")
    print()

    def forward():
        with torch.no_grad():
            return G(z, None, noise_mode="const")

    images, total, per_block = {}, defaultdict(list), defaultdict(lambda: defaultdict(list))
    for name, settings in VARIANTS.items():  # warm-up: caches, oneDNN primitives, the reference image
        apply(settings)
        forward()
        images[name] = forward()
    for _ in range(args.rounds):
        for name, settings in VARIANTS.items():
            apply(settings)
            t0 = time.perf_counter()
            forward()
            total[name].append(time.perf_counter() - t0)
            for block, seconds in blocks.items():
                per_block[name][block].append(seconds)
    apply({})
    names = list(blocks)
    print("| variant | G median s/img | " + " | ".join(f"{b} ms" for b in names) + " | max diff from all on |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for name in VARIANTS:
        cells = [f"{statistics.median(per_block[name][b]) * 1e3:.1f}" for b in names]
        diff = (images[name] - images["all on"]).abs().max().item()
        print(f"| {name} | {statistics.median(total[name]):.3f} | " + " | ".join(cells) + f" | {diff:.1e} |")
    print(f"\nload average at end: {_load()}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()

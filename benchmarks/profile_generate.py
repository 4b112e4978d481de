"""Where the CPU time of one generator forward goes: per block resolution, per layer and per op kind, as tables.

G_ema-style eval forward (mapping + synthesis), batch 1, fp32, noise_mode="const", random weights (speed does not
depend on them). Each synthesis block and layer is labelled with `torch.profiler.record_function` from forward
hooks; every profiled op's *self* time is charged to the innermost labelled module around it and to its outermost
aten op (so `aten::conv2d` includes the convolution kernels it dispatches to, and nothing is counted twice).

    python benchmarks/profile_generate.py                    # config-f 256² and 1024², 2 threads
    python benchmarks/profile_generate.py --res 256 --repeats 3 --threads 1
    python benchmarks/profile_generate.py --nvidia /path/to/stylegan2-ada-pytorch   # the same tables for theirs

Absolute times move with the machine's load (printed); the shares are what to read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function, schedule
from torch.utils.flop_counter import FlopCounterMode

from stylegan.networks import Generator, GeneratorConfig

sys.path.insert(0, str(Path(__file__).parent))  # bench_generate's NVIDIA import helpers

LABEL = "mod:"  # prefix of our record_function labels


def config_f(res: int) -> GeneratorConfig:
    """NVIDIA's config-f generator at `res` (fp32, no clamp)."""
    return GeneratorConfig(
        z_dim=512, w_dim=512, c_dim=0, img_resolution=res, img_channels=3, mapping_layers=8,
        channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None,
    )  # fmt: skip


def labelled_modules(G: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """`mapping`, every synthesis block `synthesis.bR` and each direct child of a block (conv0, conv1, torgb, ...)."""
    out = {"mapping": G.mapping}
    for name, block in G.synthesis.named_children():
        out[f"synthesis.{name}"] = block
        for child_name, child in block.named_children():
            if any(True for _ in child.parameters()):
                out[f"synthesis.{name}.{child_name}"] = child
    return out


def add_labels(modules: dict[str, torch.nn.Module]) -> list:
    """Forward hooks that open a `mod:NAME` record_function around each module call. Returns the handles."""
    handles = []
    for name, module in modules.items():
        stack: list = []

        def pre(_m, _args, name=name, stack=stack):
            ctx = record_function(LABEL + name)
            ctx.__enter__()
            stack.append(ctx)

        def post(_m, _args, _out, stack=stack):
            stack.pop().__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    return handles


def forward(G, z):
    """One eval forward, as the benchmark times it. Returns img [1, 3, R, R]."""
    return G(z, None, noise_mode="const", force_fp32=True)


def attribute(events) -> tuple[dict, dict, float]:
    """Self CPU time (ms) per (module label, outermost aten op) and per module label, plus the total.

    Non-aten scopes (the profiler's step marker, NVIDIA's named functions) are not op kinds: their self time (Python
    between ops) is charged to the op kind "(between ops)".

    Args:
        events: `prof.events()` of one or more forwards.
    """
    by_pair: dict = defaultdict(float)
    by_module: dict = defaultdict(float)
    total = 0.0
    for ev in events:
        if ev.name.startswith(LABEL):
            continue
        module, op = _owner(ev)
        ms = ev.self_cpu_time_total / 1e3
        by_pair[module, op] += ms
        by_module[module] += ms
        total += ms
    return by_pair, by_module, total


def _owner(ev) -> tuple[str, str]:
    """(innermost labelled module, outermost aten op below it) of a profiler event."""
    module, op = None, ev.name if ev.name.startswith("aten::") else "(between ops)"
    parent = ev.cpu_parent
    while parent is not None and module is None:
        if parent.name.startswith(LABEL):
            module = parent.name[len(LABEL) :]
        elif parent.name.startswith("aten::"):
            op = parent.name
        parent = parent.cpu_parent
    return module or "(outside)", op


def block_of(module: str) -> str:
    """`synthesis.b256.conv0` -> `b256`; `mapping` -> `mapping`."""
    parts = module.split(".")
    return parts[1] if parts[0] == "synthesis" and len(parts) > 1 else parts[0]


def module_flops(G, z) -> dict[str, float]:
    """GFLOP per labelled module (torch's FlopCounterMode, matmul/conv FLOPs)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(G, z)
    counts = counter.get_flop_counts()
    out = {}
    for key, per_op in counts.items():
        name = "" if key == "Global" else key.partition(".")[2]  # "Generator.synthesis.b4" -> "synthesis.b4"
        out[name] = sum(per_op.values()) / 1e9
    return out


def print_tables(res: int, by_pair: dict, by_module: dict, total: float, flops: dict, n: int) -> None:
    """Markdown tables: per block, per layer (top op), per op kind."""
    by_block: dict = defaultdict(float)
    for module, ms in by_module.items():
        by_block[block_of(module)] += ms
    print(f"\n#### {res}²: per block (ms per image, self time of all ops inside)\n")
    print("| block | ms | % | GFLOP | GFLOP/s |")
    print("|---|---|---|---|---|")
    for block, ms in sorted(by_block.items(), key=_block_key):
        gf = flops.get("mapping" if block == "mapping" else f"synthesis.{block}", 0.0)
        rate = gf / (ms / n / 1e3) if ms else 0.0
        print(f"| {block} | {ms / n:.1f} | {100 * ms / total:.1f} | {gf:.2f} | {rate:.1f} |")
    print(f"| total | {total / n:.1f} | 100 | {flops.get('', 0.0):.2f} | "
          f"{flops.get('', 0.0) / (total / n / 1e3):.1f} |")  # fmt: skip
    print(f"\n#### {res}²: per layer, with its three most expensive op kinds\n")
    print("| layer | ms | % | GFLOP | GFLOP/s | top ops (ms) |")
    print("|---|---|---|---|---|---|")
    for module, ms in sorted(by_module.items(), key=lambda kv: -kv[1])[:24]:
        ops = sorted(((op, t) for (m, op), t in by_pair.items() if m == module), key=lambda kv: -kv[1])[:3]
        gf = own_flops(module, flops, by_module)
        rate = f"{gf / (ms / n / 1e3):.1f}" if gf else "-"
        top = ", ".join(f"{op.removeprefix('aten::')} {t / n:.1f}" for op, t in ops)
        print(f"| {module} | {ms / n:.1f} | {100 * ms / total:.1f} | {gf:.2f} | {rate} | {top} |")
    by_op: dict = defaultdict(float)
    for (_module, op), ms in by_pair.items():
        by_op[op] += ms
    print_matrix(res, by_pair, by_op, total, n)
    print(f"\n#### {res}²: per op kind (outermost aten op, whole forward)\n")
    print("| op | ms | % |")
    print("|---|---|---|")
    for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1])[:15]:
        print(f"| {op} | {ms / n:.1f} | {100 * ms / total:.1f} |")


def own_flops(module: str, flops: dict, labelled) -> float:
    """GFLOP of a labelled module minus those of its labelled sub-modules (a block's own image path)."""
    inner = sum(v for k, v in flops.items() if k.startswith(module + ".") and k in labelled)
    return flops.get(module, 0.0) - inner


def print_matrix(res: int, by_pair: dict, by_op: dict, total: float, n: int) -> None:
    """Block resolution × op kind (ms per image): the six costliest op kinds, the rest summed."""
    kinds = [op for op, _ in sorted(by_op.items(), key=lambda kv: -kv[1])[:6]]
    cells: dict = defaultdict(float)
    for (module, op), ms in by_pair.items():
        cells[block_of(module), op if op in kinds else "other"] += ms
    blocks = sorted({block for block, _ in cells}, key=lambda b: _block_key((b,)))
    names = [op.removeprefix("aten::") for op in kinds]
    print(f"\n#### {res}²: block × op kind (ms per image)\n")
    print("| block | " + " | ".join(names) + " | other | total |")
    print("|---" * (len(kinds) + 3) + "|")
    for block in blocks:
        row = [cells[block, op] / n for op in [*kinds, "other"]]
        print(f"| {block} | " + " | ".join(f"{v:.1f}" for v in row) + f" | {sum(row):.1f} |")
    col = [sum(cells[b, op] for b in blocks) / n for op in [*kinds, "other"]]
    print("| all | " + " | ".join(f"{v:.1f}" for v in col) + f" | {total / n:.1f} |")


def _block_key(item):
    name = item[0]
    return (0, 0) if name == "mapping" else (1, int(name[1:]) if name[1:].isdigit() else 1 << 30)


def build(res: int, nvidia: Path | None) -> torch.nn.Module:
    """Config-f G at `res`, eval mode: ours, or NVIDIA's from the checkout at `nvidia` (see bench_generate.py)."""
    torch.manual_seed(0)
    if nvidia is None:
        return Generator(config_f(res)).eval()
    from bench_generate import import_nvidia, nvidia_generator

    return nvidia_generator(import_nvidia(nvidia), res)


def profile_one(res: int, repeats: int, nvidia: Path | None) -> None:
    """Profile `repeats` forwards of config-f at `res` (after one warm-up) and print the tables."""
    G = build(res, nvidia)
    z = torch.randn(1, 512)
    with torch.no_grad():
        forward(G, z)  # warm-up
        t0 = time.perf_counter()
        for _ in range(repeats):
            forward(G, z)
        wall = (time.perf_counter() - t0) / repeats
    flops = module_flops(G, z)
    handles = add_labels(labelled_modules(G))
    plan = schedule(wait=0, warmup=1, active=repeats)  # the warm-up step absorbs the profiler's start-up cost
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], schedule=plan, acc_events=True) as prof:
        for _ in range(repeats + 1):
            forward(G, z)
            prof.step()
    for h in handles:
        h.remove()
    by_pair, by_module, total = attribute(prof.events())
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    who = "NVIDIA" if nvidia else "ours"
    print(f"\n### {who}: config-f {res}², batch 1, fp32: {wall:.3f} s/img unprofiled (mean of {repeats}), "
          f"{total / repeats / 1e3:.3f} s/img profiled; load average now {load}")  # fmt: skip
    print_tables(res, by_pair, by_module, total, flops, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--res", type=int, nargs="*", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nvidia", type=Path, metavar="PATH", help="profile NVIDIA's G from this checkout instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip
    for res in args.res:
        profile_one(res, args.repeats, args.nvidia.resolve() if args.nvidia else None)


if __name__ == "__main__":
    main()

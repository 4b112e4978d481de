"""Where our StyleGAN3 synthesis forward spends its CPU time: a table per layer and per op kind.

Each synthesis layer runs inside a `torch.profiler.record_function` range, and so do its two parts, the modulated
convolution ("conv") and the filtered leaky ReLU ("flrelu"). Every aten op called directly by a part (the outermost
aten or mkldnn op; its children are included in its time) is charged to (layer, part, op name).

    python benchmarks/profile_stylegan3.py [--cfg t r] [--res 256] [--threads 2] [--repeats 3]

Timing: the forward is run `repeats` times without the profiler and the fastest is reported (the machine may be
shared), then once under the profiler for the tables (the profiler adds a few % of overhead).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import time

import torch
from torch.profiler import ProfilerActivity, profile, record_function

import stylegan.networks.stylegan3 as sg3
from stylegan.networks.stylegan3 import Generator, preset_config


def _labelled(fn, label: str):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with record_function(label):
            return fn(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def labelled_parts():
    """Within the block, the module-level conv and filtered-lrelu calls of stylegan3.py are profiler ranges."""
    parts = {"modulated_conv2d": "conv", "_pointwise_modulated": "conv", "filtered_lrelu": "flrelu"}
    saved = {name: getattr(sg3, name) for name in parts}
    for name, part in parts.items():
        setattr(sg3, name, _labelled(saved[name], f"part:{part}"))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(sg3, name, fn)


def _hook_layers(G: torch.nn.Module) -> list:
    """Each synthesis layer (and the input) inside a 'layer:<name>' range; returns the hook handles."""
    handles = []
    for name in ["input", *G.synthesis.layer_names]:
        module = G.synthesis.get_submodule(name)
        ctx = {}

        def pre(m, args, name=name, ctx=ctx):
            ctx["r"] = record_function(f"layer:{name}")
            ctx["r"].__enter__()

        def post(m, args, out, ctx=ctx):
            ctx["r"].__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    return handles


_OPS = ("aten::", "mkldnn::")  # op namespaces (oneDNN's fused ops are mkldnn::)


def _charge(events) -> dict[tuple[str, str, str], float]:
    """{(layer, part, op): inclusive ms} for the outermost aten or mkldnn ops under each layer/part range."""
    table: dict[tuple[str, str, str], float] = collections.defaultdict(float)
    for ev in events:
        if not ev.name.startswith(_OPS):
            continue
        parent, part, layer = ev.cpu_parent, "other", None
        if parent is not None and parent.name.startswith(_OPS):
            continue  # not outermost
        while parent is not None:
            if parent.name.startswith("part:") and part == "other":
                part = parent.name[5:]
            if parent.name.startswith("layer:"):
                layer = parent.name[6:]
                break
            parent = parent.cpu_parent
        table[(layer or "(outside)", part, ev.name.split("::", 1)[1])] += ev.cpu_time_total / 1e3
    return table


def _print_tables(table: dict, total_ms: float, top_ops: int) -> None:
    layers: dict[str, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    ops: dict[str, float] = collections.defaultdict(float)
    for (layer, part, op), ms in table.items():
        layers[layer][part] += ms
        ops[f"{part}:{op}"] += ms
    print("| layer | conv ms | flrelu ms | other ms | total ms | % | top ops (ms) |\n|---|---|---|---|---|---|---|")
    for layer, parts in layers.items():
        sub = sum(parts.values())
        top = sorted(((ms, op) for (ly, _, op), ms in table.items() if ly == layer), reverse=True)[:3]
        tops = ", ".join(f"{op} {ms:.0f}" for ms, op in top)
        print(f"| {layer} | {parts['conv']:.0f} | {parts['flrelu']:.0f} | {parts['other']:.0f} | {sub:.0f} | "
              f"{100 * sub / total_ms:.1f} | {tops} |")  # fmt: skip
    print("\n| part:op | ms | % |\n|---|---|---|")
    for name, ms in sorted(ops.items(), key=lambda kv: -kv[1])[:top_ops]:
        print(f"| {name} | {ms:.0f} | {100 * ms / total_ms:.1f} |")


def run(cfg: str, res: int, repeats: int, top_ops: int) -> None:
    torch.manual_seed(0)
    G = Generator(preset_config(f"stylegan3-{cfg}", res)).eval()
    z = torch.randn(1, G.z_dim if hasattr(G, "z_dim") else 512, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws = G.mapping(z, None)
        G.synthesis(ws, force_fp32=True)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            G.synthesis(ws, force_fp32=True)
            times.append(time.perf_counter() - t0)
        handles = _hook_layers(G)
        with labelled_parts(), profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            G.synthesis(ws, force_fp32=True)
            profiled = time.perf_counter() - t0
        for h in handles:
            h.remove()
    runs = " ".join(f"{t:.2f}" for t in times)
    print(f"\n# SG3-{cfg.upper()} {res}² synthesis, batch 1, fp32, {torch.get_num_threads()} threads: "
          f"min {min(times):.3f} s of [{runs}]; profiled run {profiled:.3f} s\n")  # fmt: skip
    _print_tables(_charge(prof.events()), profiled * 1e3, top_ops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", nargs="*", default=["t", "r"], choices=["t", "r"])
    parser.add_argument("--res", type=int, nargs="*", default=[256])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top-ops", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for res in args.res:
        for cfg in args.cfg:
            run(cfg, res, args.repeats, args.top_ops)


if __name__ == "__main__":
    main()

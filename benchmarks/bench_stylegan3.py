"""StyleGAN3 (configs T and R) forward speed on the CPU, ours beside NVIDIA's stylegan3 reference path.

NVIDIA's code is imported from a checkout at run time (never copied here); without CUDA their `filtered_lrelu`,
`bias_act` and `upfirdn2d` take their reference PyTorch implementations. Both generators get the same weights
(their state dict loaded into ours, strict), their outputs are compared, then they are timed alternately (ours,
theirs, ours, ...) in one process at batch 1, fp32, so a shared machine's load hits both alike.

    python benchmarks/bench_stylegan3.py --compare-nvidia /path/to/stylegan3 [--res 256 1024] [--cfg t r]
        [--repeats 3] [--repeats-1024 1] [--threads 2] [--out benchmarks/results/cpu_sg3_compare.txt]
    python benchmarks/bench_stylegan3.py --profile --cfg t --res 256     # where our time goes, per layer

Throughput on a GPU (img/s, fp32 and NVIDIA's fp16 layout: the layers of the 4 highest sampling rates in fp16,
conv_clamp 256), ours, and NVIDIA's with their CUDA plugins when --compare-nvidia is given (they compile on first
use; if that fails their reference ops run, and the table says so):

    python benchmarks/bench_stylegan3.py --throughput --device cuda [--compare-nvidia PATH] [--batch 32 8]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import _cpu_name, _dirty, _git_head, _load, forward_image  # noqa: E402

from stylegan.networks.stylegan3 import Generator, preset_config  # noqa: E402

WARMUP_BELOW = 1024  # at 1024² a call takes tens of seconds: the agreement check is warm-up enough
NVIDIA_KWARGS = {  # NVIDIA's train.py for --cfg stylegan3-t / stylegan3-r (R doubles channel_base and channel_max)
    "t": dict(channel_base=32768, channel_max=512),
    "r": dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True),
}


def import_nvidia_sg3(path: Path) -> types.ModuleType:
    """NVIDIA's `training.networks_stylegan3` from a checkout at `path`, on a plain CPU install.

    Shims in this process only: `requests` (imported by dnnlib, unused here) is stubbed when missing,
    `pkg_resources.parse_version` (gone from recent setuptools) is provided from `packaging`, and the custom-op
    loaders report the plugins as unavailable, so nothing is compiled and every op runs its reference path.
    """
    if not (path / "training" / "networks_stylegan3.py").is_file():
        raise SystemExit(f"--compare-nvidia: {path} is not a stylegan3 checkout (no training/networks_stylegan3.py)")
    sys.path.insert(0, str(path))
    try:
        import requests  # noqa: F401
    except ImportError:
        sys.modules["requests"] = types.ModuleType("requests")
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
    from torch_utils.ops import bias_act, filtered_lrelu, upfirdn2d

    from training import networks_stylegan3

    for op in (bias_act, filtered_lrelu, upfirdn2d):
        op._init = lambda: False
    return networks_stylegan3


def spread_constants(G: torch.nn.Module, seed: int = 1000) -> None:
    """Parameters that start as one constant (biases, the input affine) get noise, so the comparison sees them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in G.parameters():
            if p.numel() > 0 and bool((p == p.flatten()[0]).all()):
                p.add_(0.1 * torch.randn(p.shape, generator=gen))


def paired(networks: types.ModuleType, cfg: str, res: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(ours, theirs) for config t|r at `res`, ours loaded with their state dict."""
    torch.manual_seed(0)
    theirs = networks.Generator(
        z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs={"num_layers": 2},
        **NVIDIA_KWARGS[cfg],
    ).eval()  # fmt: skip
    spread_constants(theirs)
    ours = Generator(preset_config(f"stylegan3-{cfg}", res)).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def alternate(pair: dict, z: torch.Tensor, repeats: int, warmup: bool) -> dict[str, list[float]]:
    """Seconds per image of each generator timed in turn, `repeats` rounds (after one untimed call each if
    `warmup`), and under "load" the 1-minute load average after each round."""
    times: dict[str, list[float]] = {name: [] for name in (*pair, "load")}
    with torch.no_grad():
        for G in pair.values() if warmup else ():
            forward_image(G, z)
        for _ in range(repeats):
            for name, G in pair.items():
                t0 = time.perf_counter()
                forward_image(G, z)
                times[name].append(time.perf_counter() - t0)
            times["load"].append(os.getloadavg()[0])
            print(f"  round: ours {times['ours'][-1]:.2f} s, theirs {times['theirs'][-1]:.2f} s", flush=True)
    return times


def _header(path: Path, repeats: dict[int, int]) -> None:
    repo = Path(__file__).resolve().parents[1]
    import stylegan

    print("# CPU StyleGAN3 generator speed, ours vs NVIDIA stylegan3 reference path (same process, same weights)")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S')}, cpu: {_cpu_name()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"ours: stylegan from {Path(stylegan.__file__).parent}; repo HEAD {_git_head(repo)}{_dirty(repo, 'src')}")
    print(f"theirs: {path} @ {_git_head(path)} (custom ops disabled: reference PyTorch paths)")
    print(f"load average at start: {_load()}")
    warm = " after one warm-up each"
    rounds = ", ".join(f"{r}²: {n}" + (warm if r < WARMUP_BELOW else "") for r, n in repeats.items())
    print("G in eval mode, fp32 (force_fp32), batch 1, full G(z) (mapping + synthesis), NVIDIA train.py configs "
          "(mapping 2 layers; T: cbase 32768, cmax 512; R: 65536, 1024, 1x1 convs, radial filters), alternating "
          f"ours/theirs; rounds: {rounds} (the agreement check runs both once before the rounds)\n")  # fmt: skip


def compare(path: Path, cfgs: list[str], resolutions: list[int], repeats: dict[int, int]) -> None:
    networks = import_nvidia_sg3(path)
    _header(path, repeats)
    rows = []
    for res in resolutions:
        for cfg in cfgs:
            ours, theirs = paired(networks, cfg, res)
            z = torch.randn(1, 512, generator=torch.Generator().manual_seed(res))
            with torch.no_grad():
                ref = forward_image(theirs, z)
                diff = (forward_image(ours, z) - ref).abs().max().item()
            print(f"SG3-{cfg.upper()} {res}²: same weights, same z: max |ours - theirs| = {diff:.3g} "
                  f"(max |theirs| = {ref.abs().max():.3g})", flush=True)  # fmt: skip
            pair = {"ours": ours, "theirs": theirs}
            rows.append((cfg, res, alternate(pair, z, repeats[res], warmup=res < WARMUP_BELOW)))
            del ours, theirs
    print(f"\nload average at end: {_load()}\n")
    _table(rows)


def throughput(device: str, cfgs: list[str], resolutions: list[int], batches: list[int], nvidia: Path | None) -> None:
    """img/s of ours (fp32, fp16) and of NVIDIA's (their default fp16 layout), alternating, batch per resolution."""
    dev = torch.device(device)
    networks, plugins = (None, "")
    if nvidia is not None:
        networks, plugins = _nvidia_with_plugins(nvidia, dev)
    print(f"# StyleGAN3 G throughput on {_device_name(dev)}, torch {torch.__version__}; NVIDIA: {plugins or 'not run'}")
    if dev.type != "cuda":
        print("# (not a GPU: the fp16 columns run in fp32, a rehearsal of the commands only)")
    print("| config | batch | ours fp32 img/s | ours fp16 img/s | NVIDIA fp16 img/s | ours fp16 ÷ NVIDIA |")
    print("|---|---|---|---|---|---|")
    for res, batch in zip(resolutions, batches, strict=True):
        for cfg in cfgs:
            torch.manual_seed(0)
            ours = Generator(preset_config(f"stylegan3-{cfg}", res)).eval().to(dev)
            half = dev.type != "cuda"  # force_fp32 for the "fp16" runs: half precision is a GPU layout
            runs = {"fp32": (ours, True), "fp16": (ours, half)}
            if networks is not None:
                theirs = networks.Generator(
                    z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                    mapping_kwargs={"num_layers": 2}, num_fp16_res=4, conv_clamp=256, **NVIDIA_KWARGS[cfg],
                ).eval().to(dev)  # fmt: skip
                theirs.load_state_dict(ours.state_dict(), strict=True)
                runs["nvidia"] = (theirs, half)
            rates = _rates(runs, torch.randn(batch, 512, device=dev))
            nv = rates.get("nvidia")
            theirs_cell, ratio = ("-", "-") if nv is None else (f"{nv:.1f}", f"{rates['fp16'] / nv:.2f}×")
            print(f"| SG3-{cfg.upper()} {res}² | {batch} | {rates['fp32']:.1f} | {rates['fp16']:.1f} | "
                  f"{theirs_cell} | {ratio} |", flush=True)  # fmt: skip


def _rates(runs: dict, z: torch.Tensor, rounds: int = 5) -> dict[str, float]:
    """Images per second of each (G, force_fp32) in `runs`, best of `rounds` alternating timed calls."""
    best: dict[str, float] = {}
    with torch.no_grad():
        for G, force_fp32 in runs.values():  # warm-up (cuDNN autotuning, plugin compilation)
            G(z, None, noise_mode="const", force_fp32=force_fp32)
        for _ in range(rounds):
            for name, (G, force_fp32) in runs.items():
                _sync(z.device)
                t0 = time.perf_counter()
                G(z, None, noise_mode="const", force_fp32=force_fp32)
                _sync(z.device)
                best[name] = max(best.get(name, 0.0), z.shape[0] / (time.perf_counter() - t0))
    return best


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"


def _nvidia_with_plugins(path: Path, dev: torch.device) -> tuple[types.ModuleType, str]:
    """NVIDIA's networks with their custom ops left to load (CUDA), or on their reference path (CPU, or when the
    plugin build fails). Returns (module, a note on which path runs)."""
    if dev.type != "cuda":
        return import_nvidia_sg3(path), "reference PyTorch ops (CPU)"
    sys.path.insert(0, str(path))
    from torch_utils.ops import filtered_lrelu

    from training import networks_stylegan3

    try:
        built = bool(filtered_lrelu._init())
    except Exception as exc:  # their build raises whatever the compiler says
        print(f"NVIDIA plugin build failed: {str(exc).splitlines()[0][:200]}")
        built = False
    return networks_stylegan3, "CUDA plugins" if built else "reference ops (plugin build failed)"


def _table(rows: list) -> None:
    print("| config | ours median s/img | ours min | NVIDIA median s/img | NVIDIA min | speed-up (medians) | "
          "speed-up (mins) | speed-up (median of rounds) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for cfg, res, t in rows:
        om, tm = statistics.median(t["ours"]), statistics.median(t["theirs"])
        omin, tmin = min(t["ours"]), min(t["theirs"])
        pairs = statistics.median(b / a for a, b in zip(t["ours"], t["theirs"], strict=True))
        print(f"| SG3-{cfg.upper()} {res}² | {om:.2f} | {omin:.2f} | {tm:.2f} | {tmin:.2f} | {tm / om:.2f}× | "
              f"{tmin / omin:.2f}× | {pairs:.2f}× |")  # fmt: skip
    print("\nspeed-up = NVIDIA s/img ÷ ours s/img (> 1: ours is faster); 'median of rounds' pairs each of our runs")
    print("with the NVIDIA run right after it. Raw s/img per round, and the 1-min load average after each round:")
    for cfg, res, t in rows:
        for name in ("ours", "theirs", "load"):
            print(f"  SG3-{cfg.upper()} {res}² {name:6s} " + " ".join(f"{v:7.2f}" for v in t[name]))


def profile(cfg: str, res: int, top: int = 25) -> None:
    """Our forward under torch.profiler: time per synthesis layer, then per op kind."""
    G = Generator(preset_config(f"stylegan3-{cfg}", res)).eval()
    spread_constants(G)
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        forward_image(G, z)
        ws = G.mapping(z, None)
        layers = {}
        for name in ["input", *G.synthesis.layer_names]:
            G.synthesis.get_submodule(name).register_forward_hook(_timer_hook(name, layers))
            G.synthesis.get_submodule(name).register_forward_pre_hook(_start_hook(name, layers))
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            G.synthesis(ws, force_fp32=True)
            total = time.perf_counter() - t0
    print(f"# our SG3-{cfg.upper()} {res}² synthesis, batch 1 fp32, {torch.get_num_threads()} threads: {total:.2f} s")
    print("| layer | s | % |\n|---|---|---|")
    for name, sec in layers.items():
        if name.endswith(":t"):
            print(f"| {name[:-2]} | {sec:.3f} | {100 * sec / total:.1f} |")
    print(f"\ntop {top} ops by self CPU time:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))


def _start_hook(name: str, store: dict):
    def hook(module, args):
        store[name + ":0"] = time.perf_counter()

    return hook


def _timer_hook(name: str, store: dict):
    def hook(module, args, output):
        store[name + ":t"] = time.perf_counter() - store[name + ":0"]

    return hook


class _Tee(io.TextIOBase):
    """Writes to stdout and to a file."""

    def __init__(self, f):
        self.f = f

    def write(self, s: str) -> int:
        sys.__stdout__.write(s)
        self.f.write(s)
        self.f.flush()
        return len(s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare-nvidia", type=Path, metavar="PATH", help="NVIDIA stylegan3 checkout")
    parser.add_argument("--profile", action="store_true", help="profile our forward per layer instead")
    parser.add_argument("--cfg", nargs="*", default=["t", "r"], choices=["t", "r"])
    parser.add_argument("--res", type=int, nargs="*", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds below 1024²")
    parser.add_argument("--repeats-1024", type=int, default=1, help="timed rounds at 1024² and above")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--throughput", action="store_true", help="img/s at --batch on --device (fp32, fp16)")
    parser.add_argument("--device", default="cuda", help="for --throughput (default cuda)")
    parser.add_argument("--batch", type=int, nargs="*", help="for --throughput: one per --res (default 32 / 8)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.out, "w") if args.out else contextlib.nullcontext() as f:
        with contextlib.redirect_stdout(_Tee(f)) if f else contextlib.nullcontext():
            if args.throughput:
                batches = args.batch or [32 if r <= 256 else 8 for r in args.res]
                if len(batches) != len(args.res):
                    parser.error("--batch takes one value per --res")
                throughput(args.device, args.cfg, args.res, batches, args.compare_nvidia)
            elif args.profile:
                for cfg in args.cfg:
                    for res in args.res:
                        profile(cfg, res)
            elif args.compare_nvidia:
                reps = {r: args.repeats_1024 if r >= 1024 else args.repeats for r in args.res}
                compare(args.compare_nvidia.resolve(), args.cfg, args.res, reps)
            else:
                parser.error("give --compare-nvidia PATH or --profile")


if __name__ == "__main__":
    main()

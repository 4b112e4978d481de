"""Generator forward throughput: images/s, achieved GFLOP/s and peak memory, as a table.

CPU: fp32. CUDA: fp32, fp16 (NVIDIA's layout: the 4 highest-resolution blocks in fp16 with conv_clamp 256, or all
blocks with --all-fp16) and bf16 autocast. Random weights: speed does not depend on them.

    python benchmarks/bench_generate.py                      # config-f 256² and 1024² + a small preset
    python benchmarks/bench_generate.py --res 256 --batch 32 --device cuda

Side by side with NVIDIA's stylegan2-ada-pytorch (their reference PyTorch path on CPU; their code is imported from
PATH at run time, never copied here): both generators get the same weights, their outputs are compared, then they
are timed alternately (ours, theirs, ours, ...) in one process:

    python benchmarks/bench_generate.py --compare-nvidia /path/to/stylegan2-ada-pytorch [--res 256 1024] [--repeats 5]
    python benchmarks/bench_generate.py --compare-nvidia PATH --res 256 --repeats 11 --processes 5   # 5 processes
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from stylegan.networks import Generator, GeneratorConfig, build_configs
from stylegan.nn import conv, winograd


def count_gflop(G, ws) -> float:
    """Forward GFLOP per image (matmul/conv FLOPs as torch counts them), of the direct convolutions: the Winograd
    path and the packed oneDNN convolutions are switched off while counting (their oneDNN calls are invisible to the
    counter, and the FLOPs Winograd saves are not the network's)."""
    tile, packed = winograd.TILE, conv.ONEDNN_PACKED
    winograd.TILE, conv.ONEDNN_PACKED = None, False
    trainable = [p for p in G.parameters() if p.requires_grad]  # the counter's module tracker (torch 2.11) cannot
    for p in trainable:  # hook a parameter that requires grad under no_grad: off while counting
        p.requires_grad_(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            G.synthesis(ws[:1], noise_mode="const", force_fp32=True)
    finally:
        winograd.TILE, conv.ONEDNN_PACKED = tile, packed
        for p in trainable:
            p.requires_grad_(True)
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


def config_f(res: int) -> GeneratorConfig:
    """NVIDIA's config-f generator at `res`, fp32 everywhere, no clamp (the CPU comparison's network)."""
    return GeneratorConfig(
        z_dim=512, w_dim=512, c_dim=0, img_resolution=res, img_channels=3, mapping_layers=8,
        channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None,
    )  # fmt: skip


def import_nvidia(path: Path) -> types.ModuleType:
    """NVIDIA's `training.networks` from a checkout at `path`, made to run on a plain CPU install.

    Shims, all in this process only: `requests` (imported by dnnlib for URL downloads, unused here) is stubbed when
    missing, and their custom-op loaders are told the plugins are unavailable, so nothing is ever compiled and every
    op takes their reference PyTorch path.
    """
    if not (path / "training" / "networks.py").is_file():
        raise SystemExit(f"--compare-nvidia: {path} is not a stylegan2-ada-pytorch checkout (no training/networks.py)")
    sys.path.insert(0, str(path))
    try:
        import requests  # noqa: F401
    except ImportError:
        sys.modules["requests"] = types.ModuleType("requests")
    from torch_utils.ops import bias_act, upfirdn2d

    from training import networks

    bias_act._init = upfirdn2d._init = lambda: False  # no plugin build: reference path only
    return networks


def nvidia_generator(networks: types.ModuleType, res: int) -> torch.nn.Module:
    """Their config-f G at `res` (fp32, no clamp), eval mode, with non-constant biases and noise strengths."""
    G = networks.Generator(
        z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs={"num_layers": 8},
        synthesis_kwargs={"channel_base": 32768, "channel_max": 512, "num_fp16_res": 0, "conv_clamp": None},
    ).eval()  # fmt: skip
    gen = torch.Generator().manual_seed(1000)
    with torch.no_grad():  # parameters that init to one constant (biases, noise strengths) get spread
        for p in G.parameters():
            if p.numel() > 0 and bool((p == p.flatten()[0]).all()):
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return G


def paired_generators(networks: types.ModuleType, res: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(ours, theirs) at `res`, ours loaded with their state dict (names are the format's, so strict)."""
    torch.manual_seed(0)
    theirs = nvidia_generator(networks, res)
    ours = Generator(config_f(res)).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


class BareConvolutions:
    """The 3x3 convolutions of a G's synthesis layers alone, with oneDNN's kernels, the ones both codebases call:
    F.conv2d for the same-size layers, F.conv_transpose2d (stride 2) for the up-sampling ones, on channels_last
    inputs of the layers' shapes, with the layers' unmodulated weights. No modulation, filtering, noise, bias,
    activation or ToRGB: a floor for any implementation that convolves directly (FLOP-saving algorithms aside).
    Called like a generator so that `alternate` times it in turn with the two networks."""

    def __init__(self, G: torch.nn.Module):
        self.jobs = []
        for layer in G.synthesis.modules():
            if not (hasattr(layer, "up") and hasattr(layer, "weight") and layer.weight.ndim == 4):
                continue
            c_out, c_in = layer.weight.shape[:2]
            size = layer.resolution // layer.up
            x = torch.randn(1, c_in, size, size).contiguous(memory_format=torch.channels_last)
            w = layer.weight.detach().clone()
            self.jobs.append((x, w.transpose(0, 1).contiguous() if layer.up > 1 else w, layer.up))

    def __call__(self, z, c, noise_mode=None, force_fp32=None) -> torch.Tensor:
        for x, w, up in self.jobs:
            y = F.conv_transpose2d(x, w, stride=2) if up > 1 else F.conv2d(x, w, padding=1)
        return y


def forward_image(G: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """One eval forward as both codebases spell it: z [1, 512] -> img [1, 3, R, R]."""
    return G(z, None, noise_mode="const", force_fp32=True)


def alternate(pair: dict, z: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    """Seconds per image for each generator, timed in turn (one warm-up each, then `repeats` rounds).

    Also returns, under "load", the 1-minute load average after each round.
    """
    times: dict[str, list[float]] = {name: [] for name in pair}
    with torch.no_grad():
        for name in pair:
            forward_image(pair[name], z)
        for _ in range(repeats):
            for name, G in pair.items():
                t0 = time.perf_counter()
                forward_image(G, z)
                times[name].append(time.perf_counter() - t0)
            times.setdefault("load", []).append(os.getloadavg()[0])
    return times


def _git_head(path: Path) -> str:
    result = subprocess.run(["git", "-C", str(path), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return result.stdout.strip()[:72] or "?"


def _dirty(path: Path, under: str) -> str:
    result = subprocess.run(["git", "-C", str(path), "status", "--porcelain", under], capture_output=True, text=True)
    n = len(result.stdout.splitlines())
    return f" (+ {n} uncommitted file(s) under {under}/)" if n else ""


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def compare_nvidia(path: Path, resolutions: list[int], repeats: int) -> None:
    """Print the header, the output agreement per resolution and the alternating timing table."""
    networks = import_nvidia(path)
    print("# CPU generator speed, ours vs NVIDIA stylegan2-ada-pytorch reference path (same process, same weights)")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S')}, cpu: {_cpu_name()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    repo = Path(__file__).resolve().parents[1]
    import stylegan

    print(f"ours: stylegan from {Path(stylegan.__file__).parent}; repo HEAD {_git_head(repo)}{_dirty(repo, 'src')}")
    print(f"theirs: {path} @ {_git_head(path)}")
    print(f"load average at start: {_load()}")
    print("G in eval mode, fp32 (force_fp32), batch 1, noise_mode=const, full G(z) (mapping + synthesis), "
          f"alternating ours/theirs, {repeats} rounds after one warm-up each\n")  # fmt: skip
    rows = []
    for res in resolutions:
        ours, theirs = paired_generators(networks, res)
        z = torch.randn(1, 512, generator=torch.Generator().manual_seed(res))
        with torch.no_grad():
            ref = forward_image(theirs, z)
            diff = (forward_image(ours, z) - ref).abs().max().item()
        print(f"{res}²: same weights, same z: max |ours - theirs| = {diff:.3g} (max |theirs| = {ref.abs().max():.3g})")
        times = alternate({"ours": ours, "theirs": theirs, "convs": BareConvolutions(ours)}, z, repeats)
        with torch.no_grad():
            ws = ours.mapping(z, None)
        rows.append((res, count_gflop(ours, ws), times))
        del ours, theirs
    print(f"\nload average at end: {_load()}\n")
    print("| config-f | GFLOP/img | ours median s/img | ours min | NVIDIA median s/img | NVIDIA min | "
          "speed-up (medians) | speed-up (mins) | speed-up (median of rounds) | bare convs min s/img |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for res, gflop, t in rows:
        om, tm = statistics.median(t["ours"]), statistics.median(t["theirs"])
        omin, tmin = min(t["ours"]), min(t["theirs"])
        paired = statistics.median(b / a for a, b in zip(t["ours"], t["theirs"], strict=True))
        print(f"| {res}² | {gflop:.1f} | {om:.3f} | {omin:.3f} | {tm:.3f} | {tmin:.3f} | {tm / om:.2f}× | "
              f"{tmin / omin:.2f}× | {paired:.2f}× | {min(t['convs']):.3f} |")  # fmt: skip
    print("\nspeed-up = NVIDIA s/img ÷ ours s/img (> 1: ours is faster); 'median of rounds' pairs each of our runs")
    print("with the NVIDIA run right after it. Raw s/img per round, and the 1-min load average after each round:")
    print("bare convs: the synthesis layers' 3x3 convolutions alone (oneDNN conv2d / conv_transpose2d, unmodulated),")
    print("timed in the same rounds: what any direct-convolution implementation must spend at least.")
    for res, _, t in rows:
        for name in ("ours", "theirs", "convs", "load"):
            print(f"  {res}² {name:6s} " + " ".join(f"{v:6.3f}" for v in t[name]))


def compare_in_processes(processes: int) -> None:
    """Runs this script's comparison (the same arguments, --processes 1) in `processes` fresh processes, prints
    each one's output, then the speed-up of the medians per process and resolution, with their median and range."""
    argv, skip = [], False
    for arg in sys.argv[1:]:  # every argument but --processes N / --processes=N
        if not skip and not arg.startswith("--processes"):
            argv.append(arg)
        skip = arg == "--processes"
    ratios: dict[str, list[float]] = {}
    for k in range(processes):
        out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=True).stdout
        print(f"## process {k + 1} of {processes}\n\n{out}")
        for line in out.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if line.startswith("| ") and cells[0].endswith("²") and len(cells) >= 7:
                ratios.setdefault(cells[0], []).append(float(cells[6].rstrip("×")))
    print(f"## summary: speed-up of the medians (NVIDIA ÷ ours) in each of {processes} processes\n")
    print("| config-f | per process | median | min | max |")
    print("|---|---|---|---|---|")
    for res, values in ratios.items():
        each = ", ".join(f"{v:.2f}×" for v in values)
        print(f"| {res} | {each} | {statistics.median(values):.2f}× | {min(values):.2f}× | {max(values):.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--res", type=int, nargs="*", default=None, help="config-f resolutions (default 256 1024)")
    parser.add_argument("--batch", type=int, default=None, help="default: 1 on CPU, 32 (256²) / 8 (1024²) on CUDA")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--all-fp16", action="store_true", help="fp16 in every block (CUDA)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--compare-nvidia",
        type=Path,
        metavar="PATH",
        help="stylegan2-ada-pytorch checkout: time it beside ours (CPU)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="with --compare-nvidia: run the whole comparison in N fresh processes, one after another, and summarise "
        "the speed-ups (a process's memory layout moves both codebases' times by up to 20 %%)",
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.compare_nvidia and args.processes > 1:
        compare_in_processes(args.processes)
        return
    if args.compare_nvidia:
        compare_nvidia(args.compare_nvidia.resolve(), args.res or [256, 1024], args.repeats or 5)
        return

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

"""Per-op CPU times at config-f shapes (batch 1, fp32, channels_last activations, no autograd): old vs new.

"old" is the `stylegan.nn` package as of a git revision (default: the one before the rewrite from the definitions),
loaded from git into a temporary package; "new" is this checkout, in two forms: the modulated convolution followed
by a separate `bias_act` (what a caller that does not pass the epilogue gets), and with bias / activation / clamp
passed to `modulated_conv2d` (gain and bias folded into the weights). Formulations alternate within each round;
the table shows the fastest of --repeats rounds (other processes on a shared CPU only ever add time).

    python benchmarks/bench_ops.py                   # 256² and 1024² layers
    python benchmarks/bench_ops.py --res 1024 --repeats 7 --keep-freed-memory

--keep-freed-memory tells glibc to keep freed memory for reuse (mallopt), so that large new tensors do not page-fault
on every allocation: it shows what the operations cost once memory is warm.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
OLD_REV = "31ddeda"
NN_FILES = ("conv_gradfix", "upfirdn2d", "bias_act", "conv")
LRELU_GAIN = math.sqrt(2)
CLAMP = 256.0


def load_old_nn(rev: str) -> dict:
    """The nn modules of `rev`, imported under a private package name: {name: module}."""
    folder = Path(tempfile.mkdtemp(prefix="old_nn_")) / "old_nn"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name in NN_FILES:
        source = subprocess.run(
            ["git", "show", f"{rev}:src/stylegan/nn/{name}.py"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        (folder / f"{name}.py").write_text(source.replace("stylegan.nn", "old_nn"))
    sys.path.insert(0, str(folder.parent))
    modules = {}
    for name in NN_FILES:
        spec = importlib.util.spec_from_file_location(f"old_nn.{name}", folder / f"{name}.py")
        modules[name] = importlib.util.module_from_spec(spec)
        sys.modules[f"old_nn.{name}"] = modules[name]
        spec.loader.exec_module(modules[name])
    return modules


def channels(res: int) -> int:
    return min(32768 // res, 512)


def cases(res: int):
    """(label, inputs) per op of one config-f block at `res` (its up-sampling conv reads res / 2)."""
    cl = torch.channels_last
    c_in, c = channels(res // 2) if res > 4 else channels(res), channels(res)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f) / 64
    layer = dict(b=torch.randn(c) * 0.1, noise=torch.randn(res, res) * 0.1)
    same = dict(
        layer, x=torch.randn(1, c, res, res).to(memory_format=cl), w=torch.randn(c, c, 3, 3), s=torch.randn(1, c)
    )
    yield f"conv {c}@{res}²", "same", same, f
    if res > 4:
        up = dict(layer, x=torch.randn(1, c_in, res // 2, res // 2).to(memory_format=cl), w=torch.randn(c, c_in, 3, 3))
        yield f"up-conv {c_in}@{res // 2}²→{c}@{res}²", "up", dict(up, s=torch.randn(1, c_in)), f
        img = dict(img=torch.randn(1, 3, res // 2, res // 2))
        yield f"upsample2d 3@{res // 2}²→{res}²", "img", img, f
    rgb = dict(x=same["x"], w=torch.randn(3, c, 1, 1), s=torch.randn(1, c) / math.sqrt(c), b=torch.randn(3))
    yield f"ToRGB {c}@{res}²", "rgb", rgb, f


def run_op(nn, kind: str, t: dict, f: torch.Tensor, epilogue: bool) -> torch.Tensor:
    """One op with the modules of one formulation (old / new)."""
    conv, bias_act, upfirdn = nn["conv"], nn["bias_act"], nn["upfirdn2d"]
    if kind == "img":
        return upfirdn.upsample2d(t["img"], f)
    if kind == "rgb":
        if epilogue:
            return conv.modulated_conv2d(t["x"], t["w"], t["s"], demodulate=False, bias=t["b"], clamp=CLAMP)
        y = conv.modulated_conv2d(t["x"], t["w"], t["s"], demodulate=False)
        return bias_act.bias_act(y, t["b"], clamp=CLAMP, inplace=True)
    up = 2 if kind == "up" else 1
    args = dict(noise=t["noise"], up=up, padding=1, resample_filter=f, flip_weight=up == 1)
    if epilogue:
        return conv.modulated_conv2d(t["x"], t["w"], t["s"], **args, bias=t["b"], act="lrelu", clamp=CLAMP)
    y = conv.modulated_conv2d(t["x"], t["w"], t["s"], **args)
    return bias_act.bias_act(y, t["b"], act="lrelu", gain=LRELU_GAIN, clamp=CLAMP, inplace=True)


def best_times(fns: list, repeats: int, clock) -> list[float]:
    """Fastest time (ms) of each function over `repeats` alternating rounds, after one warm-up call each."""
    for fn in fns:
        fn()
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = clock()
            fn()
            best[i] = min(best[i], (clock() - start) * 1e3)
    return best


def keep_freed_memory() -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: serve blocks up to 1 GiB from the heap ...
    libc.mallopt(-1, (1 << 31) - 1)  # M_TRIM_THRESHOLD: ... and keep what is freed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--res", type=int, nargs="*", default=[256, 1024], help="config-f image resolutions")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old formulation")
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="cpu: process CPU time of all threads (robust to load)"
    )
    parser.add_argument("--keep-freed-memory", action="store_true", help="mallopt: no page faults on reuse")
    args = parser.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    from stylegan.nn import bias_act, conv, upfirdn2d

    new = dict(conv=conv, bias_act=bias_act, upfirdn2d=upfirdn2d)
    old = load_old_nn(args.old_rev)
    print(f"torch {torch.__version__}, {args.threads} threads, old = {args.old_rev}, {args.clock} clock, ", end="")
    print(f"fastest of {args.repeats} (ms){', freed memory kept' if args.keep_freed_memory else ''}")
    for res in args.res:
        totals = [0.0, 0.0, 0.0]
        print(f"\nconfig-f {res}²: one block per resolution, batch 1")
        print("| op | old | new (+ bias_act) | new (epilogue) | old / new |")
        print("|---|---|---|---|---|")
        for block_res in (2**i for i in range(2, int(math.log2(res)) + 1)):
            for label, kind, t, f in cases(block_res):
                with torch.no_grad():
                    forms = ((old, False), (new, False), (new, True))
                    fns = [lambda nn=nn, e=e, k=kind, t=t, f=f: run_op(nn, k, t, f, e) for nn, e in forms]
                    check = [fn().double() for fn in fns]
                    for other in check[1:]:
                        torch.testing.assert_close(other, check[0], rtol=1e-4, atol=1e-3)
                    ms = best_times(fns, args.repeats, clock)
                totals = [a + b for a, b in zip(totals, ms, strict=True)]
                print(f"| {label} | {ms[0]:.1f} | {ms[1]:.1f} | {ms[2]:.1f} | {ms[0] / ms[2]:.2f}× |")
        print(f"| **sum** | {totals[0]:.0f} | {totals[1]:.0f} | {totals[2]:.0f} | {totals[0] / totals[2]:.2f}× |")


if __name__ == "__main__":
    main()

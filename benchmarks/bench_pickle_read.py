"""Time the safe reader on a synthetic snapshot shaped like an ADA-PT config-f 1024 pickle (G + D + G_ema).

    python benchmarks/bench_pickle_read.py [--out /tmp/configf_like.pkl]

The snapshot uses the official globals and storage blobs, with tensor shapes of config-f (channel_base
32768, channel_max 512); the read runs in a fresh process, so its peak memory is its own. Prints a table.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "compat"))


def _channels(res: int) -> int:
    return min(32768 // res, 512)


def _generator_shapes() -> list[tuple[str, tuple[int, ...]]]:
    shapes = [(f"mapping.fc{i}.{p}", s) for i in range(8) for p, s in (("weight", (512, 512)), ("bias", (512,)))]
    shapes.append(("mapping.w_avg", (512,)))
    for res in [2**i for i in range(2, 11)]:
        c_in, c = _channels(max(res // 2, 4)), _channels(res)
        convs = ["conv1"] if res == 4 else ["conv0", "conv1"]
        for name in convs:
            fan_in = c if name == "conv1" else c_in
            shapes += [
                (f"synthesis.b{res}.{name}.weight", (c, fan_in, 3, 3)),
                (f"synthesis.b{res}.{name}.bias", (c,)),
                (f"synthesis.b{res}.{name}.affine.weight", (fan_in, 512)),
                (f"synthesis.b{res}.{name}.noise_const", (res, res)),
            ]
        shapes += [
            (f"synthesis.b{res}.torgb.weight", (3, c, 1, 1)),
            (f"synthesis.b{res}.torgb.affine.weight", (c, 512)),
        ]
    return shapes


def _discriminator_shapes() -> list[tuple[str, tuple[int, ...]]]:
    shapes = []
    for res in [2**i for i in range(10, 2, -1)]:
        tmp, out = _channels(res), _channels(res // 2)
        shapes += [
            (f"b{res}.conv0.weight", (tmp, tmp, 3, 3)),
            (f"b{res}.conv1.weight", (out, tmp, 3, 3)),
            (f"b{res}.skip.weight", (out, tmp, 1, 1)),
        ]
    return shapes + [
        ("b4.conv.weight", (512, 513, 3, 3)),
        ("b4.fc.weight", (512, 8192)),
        ("b4.out.weight", (1, 512)),
    ]


def _network(class_name: str, shapes) -> object:
    from test_safe_pickle import persistent, tensor_reduce

    return persistent(class_name, _parameters=OrderedDict((n, tensor_reduce(torch.randn(s))) for n, s in shapes))


def write_snapshot(path: Path) -> None:
    from tf_writer import dumps_with_globals

    G = _network("Generator", _generator_shapes())
    D = _network("Discriminator", _discriminator_shapes())
    G_ema = _network("Generator", _generator_shapes())
    path.write_bytes(dumps_with_globals({"training_set_kwargs": None, "G": G, "D": D, "G_ema": G_ema}))


def read_snapshot(path: Path) -> None:
    from stylegan.compat.nvidia_pickle import read_ada_pickle

    start = time.perf_counter()
    nets = read_ada_pickle(path)
    seconds = time.perf_counter() - start
    n_tensors = sum(len(nets[k].state_dict) for k in ("G", "D", "G_ema"))
    n_params = sum(t.numel() for k in ("G", "D", "G_ema") for t in nets[k].state_dict.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mb = path.stat().st_size / 2**20
    print(f"| {size_mb:.0f} | {n_tensors} | {n_params / 1e6:.1f} M | {seconds:.2f} | {peak_mb:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("/tmp/configf_like.pkl"))
    parser.add_argument("--read", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read is not None:
        read_snapshot(args.read)
        return
    write_snapshot(args.out)
    print("| file MB | tensors | values | read_ada_pickle s | peak RSS MB |\n| --- | --- | --- | --- | --- |")
    subprocess.run([sys.executable, __file__, "--read", str(args.out)], check=True)


if __name__ == "__main__":
    main()

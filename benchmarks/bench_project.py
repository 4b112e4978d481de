"""Projection quality: PSNR and LPIPS of W, W+ and PTI on images the model made and on real images of its domain.

Generated targets come from seeds 900000+ (used nowhere else in the repo), rendered with the stored noise. Real
targets are the Fashion-MNIST test split (default) or the image files of --real DIR (sorted; e.g. aligned AT&T faces
not used to train the faces model). One PTI run per target gives W (its pivot, before tuning) and PTI; one W+ run
gives W+. The W stage uses StyleGAN2's projector recipe and hyper-parameters (1000 steps by default): it is our
stand-in for NVIDIA's projector, which needs CUDA and a TorchScript VGG16 from the network.

    python benchmarks/bench_project.py                                  # default model, Fashion-MNIST, 20 + 20
    python benchmarks/bench_project.py --count 2 --steps 100 --plus-steps 50 --tune-steps 100   # a quick look
    python benchmarks/bench_project.py --network faces --real /path/to/aligned-att-test
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from stylegan.editing import project as P
from stylegan.editing.generate import seeds_to_z
from stylegan.images import to_uint8
from stylegan.io import load_generator
from stylegan.metrics.lpips import load_lpips

FMNIST_TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
FIRST_SEED = 900_000


def generated_targets(G, count: int) -> list[torch.Tensor]:
    seeds = list(range(FIRST_SEED, FIRST_SEED + count))
    labels = torch.eye(G.c_dim)[[s % G.c_dim for s in seeds]] if G.c_dim else None
    with torch.no_grad():
        return list(to_uint8(G(seeds_to_z(seeds, G.z_dim), labels, noise_mode="const")))


def real_targets(G, source: str, count: int) -> list[PIL.Image.Image]:
    if source == "fashion-mnist":
        with gzip.open(FMNIST_TEST) as f:
            pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:count]
        return [PIL.Image.fromarray(p) for p in pixels]
    files = sorted(p for p in Path(source).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".pgm"))
    return [P.read_target(p, G.img_resolution) for p in files[:count]]


def score(lpips, image: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """(PSNR dB, LPIPS) of two uint8 images [C, H, W]."""

    def as_input(x):
        return P._as_lpips_input(x.float()[None] / 127.5 - 1)

    with torch.no_grad():
        return P.psnr(image, target), lpips(as_input(image), as_input(target)).item()


def project_one(G, target, lpips, settings) -> dict[str, tuple[float, float]]:
    """{'w': (psnr, lpips), 'w+': ..., 'pti': ...} for one target."""
    pti = P.project(G, target, mode="pti", settings=settings, lpips=lpips)
    plus = P.project(G, target, mode="w+", settings=settings, lpips=lpips)
    return {
        "w": score(lpips, pti.pivot_image, target),
        "w+": score(lpips, plus.image, target),
        "pti": score(lpips, pti.image, target),
    }


def run_set(name, G, targets, lpips, settings) -> dict[str, list[tuple[float, float]]]:
    rows: dict[str, list[tuple[float, float]]] = {"w": [], "w+": [], "pti": []}
    for i, target in enumerate(targets):
        start = time.perf_counter()
        for mode, value in project_one(G, target, lpips, settings).items():
            rows[mode].append(value)
        took = time.perf_counter() - start
        print(f"  {name} {i + 1}/{len(targets)}: " + ", ".join(f"{m} {v[-1][0]:.2f} dB" for m, v in rows.items())
              + f" ({took:.0f} s)", flush=True)  # fmt: skip
    return rows


def table(results: dict[str, dict[str, list[tuple[float, float]]]]) -> str:
    def cell(values: list[float], fmt: str) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):{fmt}} ± {spread:{fmt}}"

    lines = ["| mode | " + " | ".join(f"{n} PSNR (dB) | {n} LPIPS" for n in results) + " |"]
    lines.append("|---" * (1 + 2 * len(results)) + "|")
    for mode in ("w", "w+", "pti"):
        cells = []
        for rows in results.values():
            cells += [cell([r[0] for r in rows[mode]], ".2f"), cell([r[1] for r in rows[mode]], ".4f")]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default=None, help="model file or name (default: the built-in 'default')")
    ap.add_argument("--real", default="fashion-mnist", help="'fashion-mnist' (test split) or a folder of images")
    ap.add_argument("--count", type=int, default=20, help="targets per set")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--plus-steps", type=int, default=500)
    ap.add_argument("--tune-steps", type=int, default=350)
    ap.add_argument("--w-avg-samples", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--sets",
        choices=["both", "generated", "real"],
        default="both",
        help="which target set(s) to run (one per process to use two cores)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G = load_generator(args.network, device=args.device)
    lpips = load_lpips(device=args.device)
    settings = P.ProjectionSettings(steps=args.steps, plus_steps=args.plus_steps, tune_steps=args.tune_steps,
                                    w_avg_samples=args.w_avg_samples)  # fmt: skip
    results = {}
    if args.sets in ("both", "generated"):
        results["generated"] = run_set("generated", G, generated_targets(G, args.count), lpips, settings)
    if args.sets in ("both", "real"):
        photos = real_targets(G, args.real, args.count)
        real = [P.prepare_target(img, G.img_resolution, G.img_channels) for img in photos]
        results["real"] = run_set("real", G, real, lpips, settings)
    print(f"\nmodel {args.network or 'default'}, real = {args.real}, {args.count} + {args.count} targets, "
          f"steps W {args.steps} / W+ +{args.plus_steps} / PTI tuning {args.tune_steps}")  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    main()

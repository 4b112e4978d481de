"""Does `fid_fmnist` order image sources by quality? Held-out real, degraded real, generators, noise.

Reference statistics: the Fashion-MNIST training split (60k). Each candidate: `--num` images, 32x32.

    python benchmarks/eval_fid_fmnist.py [--num 5000] [--network trained.safetensors ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.data import load_fashion_mnist
from stylegan.metrics.features import Detector, extract, iterate_generated
from stylegan.metrics.fid import fid_from_features
from stylegan.metrics.fmnist import load_fmnist_classifier


def _batches(img: torch.Tensor, batch: int = 500):
    yield from img.split(batch)


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    out = F.conv2d(F.pad(img.float(), (radius,) * 4, mode="reflect"), k.view(1, 1, 1, -1))
    out = F.conv2d(out, k.view(1, 1, -1, 1))
    return out.round().clamp(0, 255).to(torch.uint8)


def _noise(img: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    return (img.float() + std * torch.randn(img.shape, generator=gen)).round().clamp(0, 255).to(torch.uint8)


def _untrained_G():
    from stylegan.networks.stylegan2 import Generator, GeneratorConfig

    torch.manual_seed(0)
    cfg = GeneratorConfig(
        z_dim=64,
        w_dim=64,
        img_resolution=32,
        img_channels=1,
        mapping_layers=2,
        channel_base=1024,
        channel_max=64,
    )
    return Generator(cfg).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=5000)
    parser.add_argument("--network", action="append", default=[], help="Generator file(s) to score too.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = load_fmnist_classifier()
    det = Detector("fmnist", lambda x: net.features(x.float() / 127.5 - 1), torch.device("cpu"))
    train, _ = load_fashion_mnist("train")
    test, _ = load_fashion_mnist("test")
    # Padded 28 -> 32 as `stylegan dataset fashion-mnist` stores them, so real and generated images (32²) go
    # through the same 32 -> 28 resize in the classifier.
    train = F.pad(torch.from_numpy(train).unsqueeze(1), (2, 2, 2, 2))
    test = F.pad(torch.from_numpy(test[: args.num]).unsqueeze(1), (2, 2, 2, 2))
    ref = extract(det, _batches(train))
    gen = torch.Generator().manual_seed(0)
    sources = {
        "real held-out (test split)": test,
        "real, Gaussian blur sigma=0.7": _blur(test, 0.7),
        "real, Gaussian blur sigma=1.5": _blur(test, 1.5),
        "real + Gaussian noise std=32": _noise(test, 32, gen),
    }
    generators = {f"generator {p}": p for p in args.network}
    generators["untrained StyleGAN2 (32², cbase 1024, cmax 64, random init)"] = None
    print("| source | fid_fmnist | seconds |")
    print("|---|---|---|")
    for name, img in sources.items():
        t = time.time()
        print(
            f"| {name} | {fid_from_features(ref, extract(det, _batches(img))):.2f} | {time.time() - t:.0f} |",
            flush=True,
        )
    for name, path in generators.items():
        t = time.time()
        if path is None:
            G = _untrained_G()
        else:
            from stylegan.io import load_generator

            G = load_generator(path)
        feats = extract(det, iterate_generated(G, args.num, 250, torch.device("cpu")))
        print(f"| {name} | {fid_from_features(ref, feats):.2f} | {time.time() - t:.0f} |", flush=True)
    noise = torch.randint(0, 256, (args.num, 1, 32, 32), generator=gen, dtype=torch.uint8)
    print(f"| uniform noise | {fid_from_features(ref, extract(det, _batches(noise))):.2f} | |")
    print(f"({np.prod(ref.shape[:1])} reference images, {args.num} per source)")


if __name__ == "__main__":
    main()

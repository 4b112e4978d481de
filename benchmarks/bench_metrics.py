"""Images/s of metric feature extraction: FID Inception, LPIPS VGG16 (pairs) and the Fashion-MNIST classifier.

Weights are random (speed does not depend on them). Prints a markdown table, one row per network and device.

    python benchmarks/bench_metrics.py [--devices cpu,cuda] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from stylegan.metrics.fmnist import FMNISTClassifier
from stylegan.metrics.inception import FIDInception
from stylegan.metrics.lpips import LPIPSVGG16

# name -> (builder, input shape without batch, batch on CPU, batch on GPU, call)
CASES = {
    "FID Inception-v3 (uint8 256² -> 299²)": (FIDInception, (3, 256, 256), 8, 128, lambda m, x: m(x)),
    "LPIPS VGG16 (pairs of 256² images)": (LPIPSVGG16, (3, 256, 256), 4, 64, lambda m, x: m(x, x.flip(0))),
    "Fashion-MNIST classifier (32² -> 28²)": (
        FMNISTClassifier,
        (1, 32, 32),
        256,
        4096,
        lambda m, x: m.features(x),
    ),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def images_per_second(name: str, device: torch.device, repeats: int) -> tuple[int, float]:
    build, shape, cpu_batch, gpu_batch, call = CASES[name]
    batch = gpu_batch if device.type == "cuda" else cpu_batch
    model = build().eval().to(device, memory_format=torch.channels_last)  # as the loaders do
    x = torch.rand(batch, *shape, device=device)
    x = x * 255 if build is FIDInception else x * 2 - 1
    call(model, x)  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        call(model, x)
    _sync(device)
    return batch, batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_devices = "cpu,cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--devices", default=default_devices)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} CPU threads")
    print("| network | device | batch | images/s |")
    print("|---|---|---|---|")
    for dev in args.devices.split(","):
        device = torch.device(dev)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for name in CASES:
            batch, ips = images_per_second(name, device, args.repeats)
            print(f"| {name} | {label} | {batch} | {ips:.1f} |", flush=True)


if __name__ == "__main__":
    main()

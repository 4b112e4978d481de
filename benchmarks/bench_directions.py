"""Do latent directions do what they claim? Three measurements on a model (default: the built-in Fashion-MNIST one).

1. Monotone: along SeFa / GANSpace directions, a perceptual distance to the unedited image (the Fashion-MNIST
   classifier's FID features, and plain pixels) grows with |strength|. A curve is one (seed, direction, side);
   it is monotone when every step outwards (0 -> 0.5 -> ... -> 3 sigma) increases the distance.
2. Boundary: the InterFaceGAN-style normal for Fashion-MNIST class K (fit on 2000 sampled images, scored by the
   shipped classifier) raises class K's log-odds on held-out seeds: the share of seeds whose score went up at
   +1, +2, +3 sigma, and the share whose predicted class became K at +3 sigma.
3. Layers: the same directions applied to fine layers only vs coarse layers only at +-3 sigma: the change of the
   image down-sampled to 8x8 (structure: 1 - correlation, blind to the brightness and contrast that fine styles
   set; and the mean |difference| in 0..255 levels) and how often the predicted class changes.

    python benchmarks/bench_directions.py [--network default] [--seeds 20] [--top 5] [--held-out 200] [--tables 1,2,3]

On a busy 2-core machine run it with OMP_NUM_THREADS=1 (about 15 minutes with all three tables).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.editing import directions as D
from stylegan.editing.edit import edit_images
from stylegan.editing.figures import layer_groups
from stylegan.io import load_generator
from stylegan.metrics.fmnist import FMNIST_CLASSES, load_fmnist_classifier

STRENGTHS = [float(v) for v in np.arange(-3, 3.01, 0.5)]  # 13 values, 0 in the middle


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [..., C, H, W] -> float in [-1, 1] [M, C, H, W]."""
    return images.flatten(0, -4).float() / 127.5 - 1


def monotone_fraction(dist: np.ndarray) -> float:
    """dist [..., S] distances at STRENGTHS: share of side curves (0 -> +3 and 0 -> -3) that increase at every step."""
    mid = STRENGTHS.index(0.0)
    right = np.diff(dist[..., mid:], axis=-1) > 0
    left = np.diff(dist[..., mid::-1], axis=-1) > 0
    return float(np.concatenate([right.all(-1).ravel(), left.all(-1).ravel()]).mean())


@torch.no_grad()
def monotone_table(G, net, seeds, top) -> list[str]:
    ws = D.sample_ws(G, seeds)
    rows = []
    for method, dirs in (("sefa", D.sefa(G)), ("ganspace", D.cached_ganspace(G))):
        chosen = [dirs.pick(k) for k in range(top)]
        images = edit_images(G, ws, chosen, STRENGTHS)  # [N, top, S, C, H, W]
        feats = net.features(as_float(images)).reshape(*images.shape[:3], -1)
        pix = images.float().flatten(3)
        mid = STRENGTHS.index(0.0)
        d_feat = (feats - feats[:, :, mid : mid + 1]).norm(dim=-1).numpy()
        d_pix = (pix - pix[:, :, mid : mid + 1]).norm(dim=-1).numpy()
        curves = 2 * len(seeds) * top
        rows.append(
            f"| {method} top {top} | {curves} | {monotone_fraction(d_feat):.3f} | {monotone_fraction(d_pix):.3f} |"
        )
    return rows


@torch.no_grad()
def boundary_table(G, net, held_out, samples) -> list[str]:
    ws = D.sample_ws(G, held_out)
    rows = []
    for k, name in enumerate(FMNIST_CLASSES):
        score_fn = D.classifier_scores(f"fmnist:{k}")
        d = D.classifier_boundary(G, score_fn, samples=samples, label=f"fmnist:{k}").pick(0)
        images = edit_images(G, ws, [d], [0.0, 1.0, 2.0, 3.0])[:, 0]  # [N, 4, C, H, W]
        x = as_float(images)
        scores = score_fn(x).reshape(len(held_out), 4)
        pred = net(x).argmax(1).reshape(len(held_out), 4)
        up = [(scores[:, j] > scores[:, 0]).float().mean().item() for j in (1, 2, 3)]
        became = (pred[:, 3] == k).float().mean().item()
        was = (pred[:, 0] == k).float().mean().item()
        rows.append(
            f"| {k} {name} | {d.scale:.2f} | {up[0]:.3f} | {up[1]:.3f} | {up[2]:.3f} | {was:.3f} -> {became:.3f} |"
        )
    return rows


@torch.no_grad()
def layer_table(G, net, seeds, top) -> list[str]:
    ws = D.sample_ws(G, seeds)
    groups = layer_groups(G)
    rows = []
    for method, dirs in (("sefa", D.sefa(G)), ("ganspace", D.cached_ganspace(G))):
        chosen = [dirs.pick(k) for k in range(top)]
        for group in ("coarse", "middle", "fine"):
            images = edit_images(G, ws, chosen, [0.0, -3.0, 3.0], groups[group])  # [N, top, 3, C, H, W]
            small = F.avg_pool2d(images.flatten(0, 2).float(), G.img_resolution // 8).reshape(*images.shape[:3], -1)
            change = (small[:, :, 1:] - small[:, :, :1]).abs().mean().item()
            centred = small - small.mean(-1, keepdim=True)
            unit = centred / centred.norm(dim=-1, keepdim=True).clamp(min=1e-6)
            structure = (1 - (unit[:, :, 1:] * unit[:, :, :1]).sum(-1)).mean().item()
            pred = net(as_float(images)).argmax(1).reshape(images.shape[:3])
            flips = (pred[:, :, 1:] != pred[:, :, :1]).float().mean().item()
            rows.append(
                f"| {method} top {top} | {group} ws {groups[group]} | {structure:.3f} | {change:.2f} | {flips:.3f} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default=None, help="model (default: the built-in Fashion-MNIST model)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 for tables 1 and 3")
    parser.add_argument("--top", type=int, default=5, help="leading directions per method")
    parser.add_argument("--held-out", type=int, default=200, help="held-out seeds 0..N-1 for the boundary table")
    parser.add_argument("--samples", type=int, default=2000, help="sampled images to fit each boundary")
    parser.add_argument("--tables", default="1,2,3", help="which tables to print")
    args = parser.parse_args()
    torch.manual_seed(0)
    G, net = load_generator(args.network), load_fmnist_classifier()
    seeds = list(range(args.seeds))
    start = time.time()
    print(f"model {D.model_hash(G)}: {G.img_resolution}², num_ws {G.num_ws}, w_dim {G.w_dim}")
    tables = set(args.tables.split(","))
    if "1" in tables:
        print_monotone(G, net, seeds, args.top)
    if "2" in tables:
        print_boundaries(G, net, args.held_out, args.samples)
    if "3" in tables:
        print_layers(G, net, seeds, args.top)
    print(f"\n({time.time() - start:.0f} s)")


def print_monotone(G, net, seeds, top) -> None:
    print("\n1. Distance to the unedited image grows with |strength| (0 -> 3 sigma in steps of 0.5)\n")
    print("| directions | curves | monotone (classifier features) | monotone (pixels) |\n|---|---|---|---|")
    print("\n".join(monotone_table(G, net, seeds, top)))


def print_boundaries(G, net, held_out, samples) -> None:
    print(f"\n2. Class boundaries on {held_out} held-out seeds (fit on {samples} sampled images)\n")
    print("| class | sigma | score up +1 | score up +2 | score up +3 | predicted K: 0 -> +3 |")
    print("|---|---|---|---|---|---|")
    print("\n".join(boundary_table(G, net, list(range(held_out)), samples)))


def print_layers(G, net, seeds, top) -> None:
    print("\n3. Layer restriction at +-3 sigma: change of the 8x8 down-sampled image and of the predicted class\n")
    print("| directions | layers edited | 1 - corr 8x8 | mean abs change 8x8 (levels) | class changed |")
    print("|---|---|---|---|---|")
    print("\n".join(layer_table(G, net, seeds, top)))


if __name__ == "__main__":
    main()

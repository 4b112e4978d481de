"""Detector benchmark: accuracy / AP / AUC in-domain, across generators and after JPEG / resizing.

Image sets (built once into --cache as .npz, uint8, generated with the mark off):
  real  fmnist   Fashion-MNIST test split, 28x28 padded to 32x32 as the default model's training data (Zalando, MIT)
  real  att      AT&T faces (AT&T Laboratories Cambridge), 92x112 grey, as published
  real  att64    the same faces, centre square resized to 64x64 (bicubic), as a 64-px face model's training data
  fake  default  the packaged model (StyleGAN2, Fashion-MNIST 32x32, 100 kimg), truncation 1
  fake  sg2_tiny / sg2_fp16 / sg3t / sg3r   NVIDIA's tiny random reference networks (32 RGB, 64 RGB, SG3-T, SG3-R)
  fake  sg2_untrained  an untrained generator with the default model's config (another "training run": 0 kimg)
  fake  sg1_untrained  an untrained StyleGAN1 generator, 32x32 grey (another family)
  fake  --extra NAME=PATH  any other model file (e.g. the 64-px faces model, short training runs)

Splits are fixed before any result was looked at: in every set the first 60 % (by seed / file order) may be used for
training (the detector holds out a quarter of that for calibration), the last 40 % only for testing.

    python benchmarks/bench_detector.py --cache /tmp/detdata [--n 1500] [--kinds spectral,cnn]
    python benchmarks/bench_detector.py --cache /tmp/detdata --ship src/stylegan/assets   # train the shipped pair
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from stylegan.forensics.detector import KINDS, train_detector

TRAIN_FRACTION = 0.6
FIXTURES = Path("/work/shared/fixtures/nvlabs")
ATT = Path("/work/shared/data/att-faces")
REALS = ("fmnist", "att", "att64")
CNNDETECTION = "CNNDetection (Wang et al. 2020), on StyleGAN: accuracy 73-90 % at threshold 0.5, AP 98.5-99.8 %"


def real_set(name: str, n: int) -> list[np.ndarray]:
    if name == "fmnist":
        from stylegan.data import load_fashion_mnist

        images, _ = load_fashion_mnist("test")
        return [np.pad(img, 2) for img in images[:n]]
    files = sorted(ATT.glob("s*/*.pgm"), key=lambda p: (int(p.parent.name[1:]), int(p.stem)))
    faces = [np.asarray(PIL.Image.open(f).convert("L")) for f in files[:n]]
    if name == "att":
        return faces
    return [_square64(face) for face in faces]


def _square64(face: np.ndarray) -> np.ndarray:
    h, w = face.shape
    top = (h - w) // 2
    return np.asarray(PIL.Image.fromarray(face[top : top + w]).resize((64, 64), PIL.Image.BICUBIC))


def generator(name: str, extra: dict[str, str]):
    from stylegan.io import load_generator

    if name in extra:
        return load_generator(extra[name])
    if name == "default":
        return load_generator("default")
    if name.startswith(("sg2_tiny", "sg2_fp16", "sg3")):
        file = {"sg2_tiny": "sg2_tiny", "sg2_fp16": "sg2_tiny_fp16", "sg3t": "sg3t_tiny", "sg3r": "sg3r_tiny"}[name]
        return load_generator(FIXTURES / f"{file}.pkl")
    torch.manual_seed(1)
    if name == "sg2_untrained":
        from stylegan.networks.stylegan2 import Generator

        return Generator(load_generator("default").config).eval()
    from stylegan.networks import stylegan1

    cfg = stylegan1.GeneratorConfig(z_dim=64, w_dim=64, img_resolution=32, img_channels=1, fmap_base=256, fmap_max=64)
    return stylegan1.Generator(cfg).eval()


def fake_set(name: str, n: int, extra: dict[str, str]) -> list[np.ndarray]:
    from stylegan.editing.generate import generate_images

    G = generator(name, extra)
    images = generate_images(G, list(range(n)), truncation_psi=1.0, batch_size=32)  # [N, C, H, W] uint8
    hwc = images.permute(0, 2, 3, 1).numpy()
    return [img[..., 0] if img.shape[-1] == 1 else img for img in hwc]


def load_set(name: str, n: int, cache: Path, extra: dict[str, str]) -> list[np.ndarray]:
    """The set's images (at most n), from the cache or built and cached."""
    path = cache / f"{name}_{n}.npz"
    if path.exists():
        with np.load(path) as f:
            return [f[k] for k in sorted(f.files, key=int)]
    images = real_set(name, n) if name in REALS else fake_set(name, n, extra)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{str(i): img for i, img in enumerate(images)})
    return images


def halves(images: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    cut = int(len(images) * TRAIN_FRACTION)
    return images[:cut], images[cut:]


def jpeg(img: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    PIL.Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(PIL.Image.open(buf))


def half_size(img: np.ndarray) -> np.ndarray:
    pil = PIL.Image.fromarray(img)
    return np.asarray(pil.resize((max(8, pil.width // 2), max(8, pil.height // 2)), PIL.Image.BICUBIC))


ATTACKS = {"clean": lambda img: img, "jpeg q75": jpeg, "resize 50%": half_size}


def average_precision(score: np.ndarray, y: np.ndarray) -> float:
    """Mean of precision at each positive, ranking by score (ties broken by order: fine for continuous scores)."""
    order = np.argsort(-score, kind="stable")
    hits = y[order] == 1
    precision = np.cumsum(hits) / np.arange(1, len(y) + 1)
    return float(precision[hits].mean())


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties count 1/2 (Mann-Whitney)."""
    pos, neg = score[y == 1], score[y == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def evaluate(detector, real: list[np.ndarray], fake: list[np.ndarray]) -> dict[str, tuple[float, float, float]]:
    """attack -> (accuracy at p >= 0.5, AP, AUC) on balanced test data (the larger class subsampled)."""
    n = min(len(real), len(fake))
    y = np.array([0] * n + [1] * n)
    out = {}
    for name, attack in ATTACKS.items():
        p = detector.probability([attack(img) for img in real[:n] + fake[:n]])
        out[name] = (float(((p >= 0.5) == y).mean()), average_precision(p, y), auc(p, y))
    return out


def table(title: str, rows: list[tuple[str, str, dict]]) -> None:
    print(f"\n### {title}\n")
    print("| detector | test (real vs fake) | " + " | ".join(f"{a}: acc / AP / AUC" for a in ATTACKS) + " |")
    print("|---|---|" + "---|" * len(ATTACKS))
    for kind, test, result in rows:
        cells = " | ".join(f"{acc:.1%} / {ap:.3f} / {au:.3f}" for acc, ap, au in result.values())
        print(f"| {kind} | {test} | {cells} |")


def experiments(sets: dict[str, list[np.ndarray]], kinds: list[str], fakes: list[str]) -> None:
    train = {k: halves(v)[0] for k, v in sets.items()}
    test = {k: halves(v)[1] for k, v in sets.items()}
    for kind in kinds:
        t0 = time.time()
        det = train_detector(train["fmnist"], train["default"], kind=kind)
        print(f"\n{kind}: trained on fmnist vs default in {time.time() - t0:.0f} s; {det.calibration_note}")
        rows = [(kind, "fmnist vs default (in-domain)", evaluate(det, test["fmnist"], test["default"]))]
        rows += [(kind, f"fmnist vs {f}", evaluate(det, test["fmnist"], test[f])) for f in fakes if f != "default"]
        table(f"{kind}: trained on Fashion-MNIST vs the default model only", rows)
        rows = []
        for held in fakes:
            reals = _all(train, REALS)
            others = _all(train, [f for f in fakes if f != held])[: len(reals)]  # balanced, every generator in
            det = train_detector(reals, others, kind=kind)
            rows.append((kind, f"reals vs {held} (unseen)", evaluate(det, _all(test, REALS), test[held])))
        table(f"{kind}: leave one generator out (trained on all reals vs the other generators)", rows)


def _all(sets: dict[str, list[np.ndarray]], names) -> list[np.ndarray]:
    """Interleaved (so that a balanced prefix mixes every set)."""
    pools = [sets[name] for name in names]
    return [pool[i] for i in range(max(map(len, pools))) for pool in pools if i < len(pool)]


def ship(sets: dict[str, list[np.ndarray]], fakes: list[str], folder: Path) -> None:
    """Trains the shipped detectors on the training halves of every set and writes them to folder."""
    train = {k: halves(v)[0] for k, v in sets.items()}
    reals = _all(train, REALS)
    fake = _all(train, fakes)[: len(reals)]  # balanced classes: calibration assumes a 50 % prior
    for kind in KINDS:
        det = train_detector(reals, fake, kind=kind)
        det.info["trained_on"] = {"real": list(REALS), "fake": fakes, "fraction": TRAIN_FRACTION}
        det.save(folder / f"detector_{kind}.safetensors")
        print(f"wrote {folder / f'detector_{kind}.safetensors'}: {det.calibration_note}")
        test = {k: halves(v)[1] for k, v in sets.items()}
        table(
            f"shipped {kind}: held-out 40 % of each set",
            [(kind, f"reals vs {f}", evaluate(det, _all(test, REALS), test[f])) for f in fakes],
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/detdata"))
    ap.add_argument("--n", type=int, default=1500, help="images per generated set (real sets: up to this many)")
    ap.add_argument("--kinds", default="spectral,cnn")
    ap.add_argument("--extra", action="append", default=[], help="NAME=PATH of another generator to test on")
    ap.add_argument("--ship", type=Path, default=None, help="train the shipped detectors into this folder instead")
    args = ap.parse_args()
    torch.set_num_threads(1)
    extra = dict(item.split("=", 1) for item in args.extra)
    fakes = ["default", "sg2_untrained", "sg1_untrained", "sg2_tiny", "sg2_fp16", "sg3t", "sg3r", *extra]
    sets = {name: load_set(name, args.n, args.cache, extra) for name in (*REALS, *fakes)}
    print("sets: " + ", ".join(f"{k} {len(v)} ({v[0].shape[1]}x{v[0].shape[0]})" for k, v in sets.items()))
    print(f"reference: {CNNDETECTION}")
    if args.ship:
        ship(sets, fakes, args.ship)
    else:
        experiments(sets, args.kinds.split(","), fakes)


if __name__ == "__main__":
    main()

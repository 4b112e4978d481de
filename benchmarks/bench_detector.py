"""Detector benchmark: accuracy / AP / AUC in-domain, across generators and after JPEG / resizing.

Image sets (built once into --cache as .npz, uint8, generated with the mark off):
  real  fmnist      Fashion-MNIST test split, 28x28 padded to 32x32 as the default model's training data (Zalando, MIT)
  real  att         AT&T faces (AT&T Laboratories Cambridge), 92x112 grey, as published
  real  att64       the same faces, centre square resized to 64x64 (bicubic)
  real  faces_real  the same faces aligned to 64x64 (`stylegan dataset --transform align-face`), the faces model's data
  fake  default     the packaged model (StyleGAN2, Fashion-MNIST 32x32), truncation 1
  fake  faces       the packaged faces model (StyleGAN2, aligned AT&T faces 64x64), truncation 1
  fake  sg2_tiny / sg2_fp16 / sg3t / sg3r   NVIDIA's tiny random reference networks (32 RGB, 64 RGB, SG3-T, SG3-R)
  fake  sg2_untrained  an untrained generator with the default model's config (another "training run": 0 kimg)
  fake  sg1_untrained  an untrained StyleGAN1 generator, 32x32 grey (another family)
  fake  --extra NAME=PATH  any other model file

Splits are fixed before any result was looked at: in every set the first 60 % (by seed / file order) may be used for
training (the detector holds out a quarter of that for calibration), the last 40 % only for testing. `--validate`
never touches the test 40 %: it splits the training 60 % again (first two thirds train, last third validation) and
runs the same experiments there; choices (augmentation, network) are made on its numbers only.

Experiments (each row: accuracy at the calibrated threshold p >= 0.5, AP, AUC; clean, JPEG q75, resized to 50 %):
  in-domain     trained on one trained generator vs its real domain, tested on unseen images of both
  pairs         trained on default vs fmnist, tested on faces vs faces_real, and the reverse (no image of the test
                domain, real or generated, is seen in training)
  leave-one-out trained on every real set and every generator but one, tested on the unseen one; when it is a trained
                model, its real domain is left out of training too and is the test's real side
  --ship        trains the shipped pair on the training 60 % of every set (every real set; the generated side half
                from the two trained models, half from the others), tests on every set's test 40 %
Chosen on --validate: augmentation wang-resize over light / wang, 1000 CNN steps (15 epochs were too few),
and for --ship the half-trained-models mix with 2000 steps (96.5 % / 86.2 % on default / faces validation images).

    python benchmarks/bench_detector.py --cache /tmp/detdata [--n 1500] [--kinds spectral,cnn] [--validate]
    python benchmarks/bench_detector.py --cache /tmp/detdata --ship src/stylegan/assets   # train the shipped pair
"""

from __future__ import annotations

import argparse
import io
import time
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from stylegan.forensics.detector import KINDS, train_detector

TRAIN_FRACTION = 0.6
FIXTURES = Path("/work/shared/fixtures/nvlabs")
ATT = Path("/work/shared/data/att-faces")
ALIGNED = (Path("/work/faces/att38_aligned64.zip"), Path("/work/faces/heldout/00000"))  # s1-s38, then s39-s40
REALS = ("fmnist", "att", "att64", "faces_real")
DOMAIN = {"default": "fmnist", "faces": "faces_real"}  # trained generator -> the real images it was trained on
FAKES = ("default", "faces", "sg2_untrained", "sg1_untrained", "sg2_tiny", "sg2_fp16", "sg3t", "sg3r")
CNNDETECTION = "CNNDetection (Wang et al. 2020), on StyleGAN: accuracy 73-90 % at threshold 0.5, AP 98.5-99.8 %"


def real_set(name: str, n: int, cache: Path) -> list[np.ndarray]:
    if name == "fmnist":
        from stylegan.data import load_fashion_mnist

        images, _ = load_fashion_mnist("test")
        return [np.pad(img, 2) for img in images[:n]]
    if name == "faces_real":
        return aligned_faces(cache)[:n]
    files = sorted(ATT.glob("s*/*.pgm"), key=lambda p: (int(p.parent.name[1:]), int(p.stem)))
    faces = [np.asarray(PIL.Image.open(f).convert("L")) for f in files[:n]]
    if name == "att":
        return faces
    return [_square64(face) for face in faces]


def aligned_faces(cache: Path) -> list[np.ndarray]:
    """The 400 AT&T faces aligned to 64x64 grey: the faces model's training data (s1-s38), then s39-s40."""
    train_zip, held_dir = ALIGNED
    if not train_zip.is_file():
        train_zip = _align(range(1, 39), cache / "att38_aligned64.zip")
    if not held_dir.is_dir():
        held_dir = _align((39, 40), cache / "att_heldout_aligned64.zip")
    out = []
    for source in (train_zip, held_dir):
        if source.suffix == ".zip":
            with zipfile.ZipFile(source) as z:
                names = sorted(n for n in z.namelist() if n.endswith(".png"))
                out += [np.asarray(PIL.Image.open(io.BytesIO(z.read(n))).convert("L")) for n in names]
        else:
            out += [np.asarray(PIL.Image.open(f).convert("L")) for f in sorted(source.glob("*.png"))]
    return out


def _align(people, dest: Path) -> Path:
    import shutil
    import tempfile

    from stylegan.data import make_dataset

    if not dest.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            for k in people:
                shutil.copytree(ATT / f"s{k}", Path(tmp) / f"s{k}")
            make_dataset(tmp, dest, resolution=64, transform="align-face")
    return dest


def _square64(face: np.ndarray) -> np.ndarray:
    h, w = face.shape
    top = (h - w) // 2
    return np.asarray(PIL.Image.fromarray(face[top : top + w]).resize((64, 64), PIL.Image.BICUBIC))


def generator(name: str, extra: dict[str, str]):
    from stylegan.io import load_generator

    if name in extra:
        return load_generator(extra[name])
    if name in ("default", "faces"):
        return load_generator(name)
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
    images = real_set(name, n, cache) if name in REALS else fake_set(name, n, extra)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{str(i): img for i, img in enumerate(images)})
    return images


def split_sets(sets: dict[str, list], validate: bool) -> tuple[dict[str, list], dict[str, list]]:
    """(train, test) per set: the first 60 % / the last 40 %; with validate, the 60 % cut 2:1 into train / val."""
    train, test = {}, {}
    for name, images in sets.items():
        cut = int(len(images) * TRAIN_FRACTION)
        if validate:
            train[name], test[name] = images[: cut * 2 // 3], images[cut * 2 // 3 : cut]
        else:
            train[name], test[name] = images[:cut], images[cut:]
    return train, test


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
    """attack -> (accuracy at p >= 0.5, AP, AUC) on balanced test data (the larger class subsampled evenly)."""
    n = min(len(real), len(fake))
    real, fake = _even(real, n), _even(fake, n)
    y = np.array([0] * n + [1] * n)
    out = {}
    for name, attack in ATTACKS.items():
        p = detector.probability([attack(img) for img in real + fake])
        out[name] = (float(((p >= 0.5) == y).mean()), average_precision(p, y), auc(p, y))
    return out


def _even(images: list, n: int) -> list:
    """n of the images, evenly spaced (so an interleaved mix keeps every set in)."""
    return [images[i] for i in np.linspace(0, len(images) - 1, n).round().astype(int)] if n < len(images) else images


def table(title: str, rows, group: str) -> None:
    """Prints a table of (kind, test, result) rows as they come (rows may be a generator) and adds to SUMMARY."""
    print(f"\n### {title}\n")
    print("| detector | test (real vs fake) | " + " | ".join(f"{a}: acc / AP / AUC" for a in ATTACKS) + " |")
    print("|---|---|" + "---|" * len(ATTACKS), flush=True)
    for kind, test, result in rows:
        cells = " | ".join(f"{acc:.1%} / {ap:.3f} / {au:.3f}" for acc, ap, au in result.values())
        print(f"| {kind} | {test} | {cells} |", flush=True)
        for attack in ATTACKS:
            SUMMARY.setdefault((kind, group, attack), []).append(result[attack][0])


SUMMARY: dict[tuple[str, str, str], list[float]] = {}
VALIDATE = False  # set by --validate (for the table titles)
LEAVE_OUT_ONLY = False  # set by --leave-out-only


def summary() -> None:
    print("\n### Summary: accuracy at the calibrated threshold, mean (min) over the rows of each group\n")
    print("| detector | group | " + " | ".join(ATTACKS) + " |")
    print("|---|---|" + "---|" * len(ATTACKS))
    for kind, group in dict.fromkeys((k, g) for k, g, _ in SUMMARY):
        cells = [SUMMARY[(kind, group, a)] for a in ATTACKS]
        print(f"| {kind} | {group} | " + " | ".join(f"{np.mean(c):.1%} ({min(c):.1%})" for c in cells) + " |")


def experiments(
    train: dict, test: dict, kinds: list[str], fakes: list[str], held_out: list[str], aug: str, steps: int
) -> None:
    trained = [g for g in DOMAIN if g in fakes and not LEAVE_OUT_ONLY]
    for kind in kinds:
        t0 = time.time()
        rows, pairs = [], []
        for gen in trained:
            det = _train(train[DOMAIN[gen]], train[gen], kind, aug, steps)
            rows.append((kind, f"{DOMAIN[gen]} vs {gen} (in-domain)", evaluate(det, test[DOMAIN[gen]], test[gen])))
            for other in (o for o in trained if o != gen):
                label = f"{DOMAIN[other]} vs {other} (trained on {DOMAIN[gen]} vs {gen})"
                pairs.append((kind, label, evaluate(det, test[DOMAIN[other]], test[other])))
        if trained:
            table(f"{kind}: in-domain (trained on one trained generator vs its real data)", rows, "in-domain")
            table(f"{kind}: trained-model pairs (the test domain unseen)", pairs, "across")
        rows = (leave_out(train, test, kind, fakes, held, aug, steps) for held in held_out)
        table(f"{kind}: leave one generator out (and its real domain)", rows, "across")
        print(f"\n{kind}: {time.time() - t0:.0f} s")


def leave_out(train: dict, test: dict, kind: str, fakes: list[str], held: str, aug: str, steps: int) -> tuple:
    """(kind, label, result) of a detector trained without `held` (and its real domain), tested on them."""
    reals = [r for r in REALS if r != DOMAIN.get(held)]
    test_real = test[DOMAIN[held]] if held in DOMAIN else _all(test, REALS)
    det = _train(_all(train, reals), _all(train, [f for f in fakes if f != held]), kind, aug, steps)
    label = f"{DOMAIN[held]} vs {held} (both unseen)" if held in DOMAIN else f"reals vs {held} (unseen)"
    return kind, label, evaluate(det, test_real, test[held])


def _train(real: list, fake: list, kind: str, aug: str, steps: int):
    """A detector on balanced classes (the larger one subsampled evenly: calibration assumes a 50 % prior)."""
    n = min(len(real), len(fake))
    return train_detector(_even(real, n), _even(fake, n), kind=kind, augment=aug, steps=steps)


def _all(sets: dict[str, list[np.ndarray]], names) -> list[np.ndarray]:
    """Interleaved (so that an evenly spaced subset mixes every set)."""
    pools = [sets[name] for name in names]
    return [pool[i] for i in range(max(map(len, pools))) for pool in pools if i < len(pool)]


def ship(train: dict, test: dict, fakes: list[str], folder: Path, aug: str, steps: int) -> None:
    """Trains the shipped detectors on the training 60 % of every set and writes them to folder.

    Generated side: half from the trained models (DOMAIN), half from the untrained / random ones, so that the
    generators that make realistic images are not outnumbered 3 to 1 by the easy ones.
    """
    reals = _all(train, REALS)
    trained = [f for f in fakes if f in DOMAIN]
    fake = _even(_all(train, trained), len(reals) // 2) + _even(
        _all(train, [f for f in fakes if f not in DOMAIN]), len(reals) - len(reals) // 2
    )
    for kind in KINDS:
        print(f"training the shipped {kind} detector ({len(reals)} real, {len(fake)} generated)", flush=True)
        det = train_detector(reals, fake, kind=kind, augment=aug, steps=steps)
        det.info["trained_on"] = {"real": list(REALS), "fake": fakes, "fraction": TRAIN_FRACTION, "steps": steps}
        det.save(folder / f"detector_{kind}.safetensors")
        print(f"wrote {folder / f'detector_{kind}.safetensors'}: {det.calibration_note}")
        rows = [(kind, f"{DOMAIN[f]} vs {f}", evaluate(det, test[DOMAIN[f]], test[f])) for f in trained]
        rows += [(kind, f"reals vs {f}", evaluate(det, _all(test, REALS), test[f])) for f in fakes if f not in DOMAIN]
        table(f"shipped {kind}: the {'validation' if VALIDATE else 'test'} images of each set", rows, "shipped")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/detdata"))
    ap.add_argument("--n", type=int, default=1500, help="images per generated set (real sets: up to this many)")
    ap.add_argument("--kinds", default="spectral,cnn")
    ap.add_argument("--augment", default="wang-resize", help="training augmentation (detector.AUGMENTATIONS)")
    ap.add_argument("--held", default=None, help="generators leave-one-out holds out (default: every one)")
    ap.add_argument("--leave-out-only", action="store_true", help="skip the in-domain and pair experiments")
    ap.add_argument("--steps", type=int, default=1000, help="CNN training batches")
    ap.add_argument("--ship-steps", type=int, default=2000, help="CNN training batches of the shipped detector")
    ap.add_argument("--validate", action="store_true", help="split the training 60 %% again; never read the test")
    ap.add_argument("--extra", action="append", default=[], help="NAME=PATH of another generator to test on")
    ap.add_argument("--ship", type=Path, default=None, help="train the shipped detectors into this folder instead")
    args = ap.parse_args()
    torch.set_num_threads(1)
    extra = dict(item.split("=", 1) for item in args.extra)
    fakes = [*FAKES, *extra]
    sets = {name: load_set(name, args.n, args.cache, extra) for name in (*REALS, *fakes)}
    print("sets: " + ", ".join(f"{k} {len(v)} ({v[0].shape[1]}x{v[0].shape[0]})" for k, v in sets.items()))
    print(f"reference: {CNNDETECTION}")
    global VALIDATE, LEAVE_OUT_ONLY
    VALIDATE, LEAVE_OUT_ONLY = args.validate, args.leave_out_only
    train, test = split_sets(sets, args.validate)
    print(f"{'validation' if args.validate else 'test'} split; augmentation {args.augment}; CNN steps {args.steps}")
    if args.ship:
        ship(train, test, fakes, args.ship, args.augment, args.ship_steps)
    else:
        held = args.held.split(",") if args.held else fakes
        experiments(train, test, args.kinds.split(","), fakes, held, args.augment, args.steps)
    summary()


if __name__ == "__main__":
    main()

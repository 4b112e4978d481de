"""Provenance mark robustness: per attack, bit accuracy and detection rate; PSNR; embed/decode time; false positives
on unmarked real images. Side by side with invisible-watermark's dwtDct when it is installed (optional, benchmark
only: `pip install invisible-watermark`, which brings opencv; never a dependency of the package).

Marked hosts (--n, a quarter of each kind, all --size x --size):
- `sg2`, `sg3`: our StyleGAN2 / StyleGAN3 generators at --size, randomly initialised (no trained model of that
  size ships), each image standardised to mean 128, standard deviation 48;
- `fmnist`: the built-in Fashion-MNIST model's 32 x 32 samples, upscaled (bicubic): large pure-black backgrounds;
- `faces`: AT&T faces (AT&T Laboratories Cambridge), upscaled, every other one tinted into colour: photographs,
  standing in for a trained face model's output (the hardest host: texture in the mark's band).
Unmarked real images for the false-positive rate (--fpr-n, about a third each): AT&T faces at 128 / 256 px and 80 %
crops; Fashion-MNIST test images (real, not generated) upscaled to 128 / 256 px; natural photographs from --natural
(a folder of images, e.g. scikit-image's bundled data: `pip download --no-deps scikit-image` and unzip
`skimage/data/*`), as random crops of 128..512 px and whole images; without --natural the faces fill that third.

    python benchmarks/bench_mark.py --n 500 --size 256 --fpr-n 1000 --natural /tmp/skdata/skimage/data --jobs 2

Grids and figures (--grids N; then --n 0 skips the single-image table): N `stylegan mix` figures (5 rows x 4
columns) and N `stylegan generate --grid` grids (16 seeds for the 32² `default` model, 9 for the 64² `faces` one)
per built-in model, made by the library calls those commands make and written by images.png_bytes (the marking
path save_png takes), then decoded from the PNG after each attack. The payload expected: model hash prefix of the
model's name, seed 0 (a grid has no single seed).

    python benchmarks/bench_mark.py --n 0 --fpr-n 0 --grids 20 --jobs 2 [--zoom auto] [--grid-first 30]

Figure i uses the seeds 100 i .. 100 i + 53 (mix) and c i .. c i + c - 1 (generate grid of c = 16 or 9 images); the
reported tables use i = 0..19; the embedding for figures was chosen on i = 30..49, 50..61 and 80..99 (--grid-first).
"""

from __future__ import annotations

import argparse
import gzip
import io
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylegan.forensics import mark as M
from stylegan.forensics.ecc import conv_encode, crc16

FACES = Path("/work/shared/data/att-faces")
FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
KINDS = ("sg2", "sg3", "fmnist", "faces")


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _gray_to_size(g: np.ndarray, size: int) -> np.ndarray:
    """uint8 [h, w] -> float [size, size] (bicubic)."""
    return np.asarray(Image.fromarray(g).resize((size, size), Image.BICUBIC), dtype=np.float64)


def faces(n: int, size: int, offset: int = 0) -> list[np.ndarray]:
    """n AT&T faces [size, size, 3], every other one tinted into colour."""
    files = sorted(FACES.glob("s*/*.pgm"))
    out = []
    for i in range(n):
        g = _gray_to_size(np.asarray(Image.open(files[(offset + 7 * i) % len(files)])), size)
        out.append(_u8(np.stack([g * 1.1, g * 0.9, g * 0.7 + 30], -1) if i % 2 else np.stack([g] * 3, -1)))
    return out


def _network_images(G: torch.nn.Module, n: int, size: int, seed: int) -> list[np.ndarray]:
    """n samples [size, size, 3] of a generator: RGB ones standardised, grayscale ones ([-1, 1]) upscaled."""
    g = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for start in range(0, n, 8):
            z = torch.randn(min(8, n - start), G.z_dim, generator=g)
            for x in G(z, None).permute(0, 2, 3, 1).double().numpy():
                if x.shape[-1] == 1:
                    out.append(_u8(np.stack([_gray_to_size(_u8((x[..., 0] + 1) * 127.5), size)] * 3, -1)))
                else:
                    out.append(_u8(128 + (x - x.mean()) / (x.std() + 1e-8) * 48))
    return out


def generated(kind: str, n: int, size: int, seed: int = 0, offset: int = 0) -> list[np.ndarray]:
    """n host images of one kind (see the module docstring); faces from the offset-th on."""
    if kind == "faces":
        return faces(n, size, offset)
    torch.manual_seed(seed)
    if kind == "fmnist":
        from stylegan.io import load_generator

        return _network_images(load_generator(None), n, size, seed)
    small = {"z_dim": 64, "w_dim": 64, "img_resolution": size, "channel_base": 4096, "channel_max": 64}
    if kind == "sg2":
        from stylegan.networks import stylegan2

        return _network_images(stylegan2.Generator(stylegan2.GeneratorConfig(**small)).eval(), n, size, seed)
    from stylegan.networks import stylegan3

    G = stylegan3.Generator(stylegan3.GeneratorConfig(**small, num_fp16_res=0)).eval()
    return _network_images(G, n, size, seed)


def _codec(x, fmt, **kw):
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, fmt, **kw)
    return np.asarray(Image.open(buf).convert("RGB"))


def _resize(x, f):
    img = Image.fromarray(x)
    return np.asarray(img.resize((round(img.width * f), round(img.height * f)), Image.BICUBIC))


def _crop(x, area=0.8):
    h, w = x.shape[:2]
    ch, cw = round(h * area**0.5), round(w * area**0.5)
    return x[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]


def _scale(x, gain, contrast):
    m = x.mean()
    return np.clip((x.astype(float) - m) * contrast + m * gain, 0, 255).astype(np.uint8)


def _noise(x):
    rng = np.random.default_rng(int(x[::17, ::13].sum()))
    return np.clip(x + rng.normal(0, 0.02 * 255, x.shape), 0, 255).astype(np.uint8)


ATTACKS = {
    "none": lambda x: x,
    "jpeg q50": lambda x: _codec(x, "JPEG", quality=50),
    "jpeg q75": lambda x: _codec(x, "JPEG", quality=75),
    "webp (q80)": lambda x: _codec(x, "WEBP"),
    "resize 50%": lambda x: _resize(x, 0.5),
    "crop 80% area": _crop,
    "rotate +5": lambda x: np.asarray(Image.fromarray(x).rotate(5, resample=Image.BICUBIC)),
    "rotate -5": lambda x: np.asarray(Image.fromarray(x).rotate(-5, resample=Image.BICUBIC)),
    "brightness +20%": lambda x: _scale(x, 1.2, 1.2),
    "brightness -20%": lambda x: _scale(x, 0.8, 0.8),
    "contrast +20%": lambda x: _scale(x, 1.0, 1.2),
    "contrast -20%": lambda x: _scale(x, 1.0, 0.8),
    "noise s=0.02": _noise,
}


def _bit_accuracy(found: M.MarkResult, payload: M.Payload) -> float:
    """Share of the 64 payload+CRC bits right; a missed mark counts as chance (0.5) when nothing was decoded."""
    if not found.found:
        return 0.5
    want = np.concatenate([payload.to_bits(), crc16(payload.to_bits())])
    got = np.concatenate([found.payload.to_bits(), crc16(found.payload.to_bits())])
    return float(np.mean(want == got))


def _one_marked(job: tuple[np.ndarray, M.Payload]) -> tuple[float, float, dict[str, tuple[float, bool, float, str]]]:
    """Embeds, attacks and decodes one host: (PSNR, embed seconds, attack -> (bit acc, detected, seconds, why))."""
    x, payload = job
    t = time.perf_counter()
    y = M.embed(x, payload)
    t_embed = time.perf_counter() - t
    rows = {}
    for name, attack in ATTACKS.items():
        z = attack(y)
        t = time.perf_counter()
        found = M.detect(z)
        ok = found.found and found.payload == payload
        why = "" if ok else ("wrong payload" if found.found else found.reason or "no mark found")
        rows[name] = (_bit_accuracy(found, payload), ok, time.perf_counter() - t, why)
    return M.psnr_db(x, y), t_embed, rows


def ours(n: int, size: int, pool: Pool, seed: int = 0) -> dict:
    """Runs every attack on n marked hosts (a quarter of each kind)."""
    rng = np.random.default_rng(seed)
    jobs, kinds = [], []
    for k, kind in enumerate(KINDS):
        count = n // len(KINDS) + (k < n % len(KINDS))
        for x in generated(kind, count, size, seed=4 * seed + k, offset=seed * count):
            jobs.append((x, M.Payload(model=int(rng.integers(4096)), seed=int(rng.integers(1 << 32)))))
            kinds.append(kind)
    results = pool.map(_one_marked, jobs, chunksize=4)
    return {"kinds": kinds, "results": results, "hosts": [x for x, _ in jobs]}


def imwm(hosts: list[np.ndarray]):
    """invisible-watermark dwtDct with a 48-bit message on the same hosts; None when not installed."""
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    stats = {name: [0.0, 0] for name in ATTACKS}
    psnrs = []
    for x in hosts:
        msg = rng.integers(0, 256, 6).astype(np.uint8).tobytes()
        enc = WatermarkEncoder()
        enc.set_watermark("bytes", msg)
        y = np.ascontiguousarray(enc.encode(np.ascontiguousarray(x[:, :, ::-1]), "dwtDct")[:, :, ::-1])
        psnrs.append(M.psnr_db(x, y))
        want = np.unpackbits(np.frombuffer(msg, np.uint8))
        for name, attack in ATTACKS.items():
            z = np.ascontiguousarray(attack(y)[:, :, ::-1])
            try:
                got = np.unpackbits(np.frombuffer(WatermarkDecoder("bytes", 48).decode(z, "dwtDct"), np.uint8))
                acc = float(np.mean(got[: len(want)] == want))
            except Exception:  # its decoder fails on small or odd-sized inputs
                acc = 0.5
            stats[name][0] += acc
            stats[name][1] += acc == 1.0
    return {k: (a / len(hosts), d / len(hosts)) for k, (a, d) in stats.items()}, psnrs


def _fashion(n: int) -> list[np.ndarray]:
    """The first n Fashion-MNIST test images (real photographs of clothes), uint8 [28, 28]."""
    with gzip.open(FASHION) as f:
        data = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    return list(data[:n])


def _natural(folder: Path | None, n: int, seed: int = 1) -> list[np.ndarray]:
    """n unmarked natural images: random crops of 128..512 px of the photos in `folder` (whole ones too)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")) if folder else []
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    photos = [p for p in photos if min(p.shape[:2]) >= 128]
    rng = np.random.default_rng(seed)
    out = list(photos[:n])
    while photos and len(out) < n:
        p = photos[rng.integers(len(photos))]
        side = int(rng.integers(128, min(512, *p.shape[:2]) + 1))
        y, x = (int(rng.integers(s - side + 1)) for s in p.shape[:2])
        out.append(np.ascontiguousarray(p[y : y + side, x : x + side]))
    return out


def unmarked_sets(n: int, natural: Path | None) -> dict[str, list[np.ndarray]]:
    """About n unmarked real images by source."""
    third = n // 3
    crops = [_crop(x) for x in faces(third // 3, 320, 9)]
    sets = {"faces": faces(third // 3, 128, 3) + faces(third // 3, 256, 5) + crops}
    fm = _fashion(third)
    sets["fashion-mnist"] = [_u8(_gray_to_size(g, 128 if i % 2 else 256)) for i, g in enumerate(fm)]
    sets["natural"] = _natural(natural, n - len(sets["faces"]) - len(sets["fashion-mnist"]))
    if len(sets["natural"]) < n - len(sets["faces"]) - len(sets["fashion-mnist"]):
        sets["faces"] += faces(n - sum(len(v) for v in sets.values()), 256, 11)
    return sets


def _found(x: np.ndarray) -> tuple[bool, float]:
    t = time.perf_counter()
    return M.detect(x).found, time.perf_counter() - t


def report_marked(marked: dict, other, size: int) -> None:
    """Prints the robustness table, PSNR and timings."""
    kinds, results = marked["kinds"], marked["results"]
    n = len(results)
    coded = len(conv_encode(np.zeros(64, np.uint8)))
    counts = ", ".join(f"{kinds.count(k)} {k}" for k in KINDS)
    print(f"# {n} marked hosts at {size}x{size} ({counts}); payload 48 bits (+CRC-16, conv code: {coded} coded)")
    head = "| attack | ours: bit acc | ours: detected | misses (host kind: why) |"
    head += " dwtDct: bit acc | dwtDct: all bits right |" if other else ""
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in ATTACKS:
        acc = np.mean([r[2][name][0] for r in results])
        det = [r[2][name][1] for r in results]
        misses = {}
        for kind, r in zip(kinds, results, strict=True):
            if not r[2][name][1]:
                key = f"{kind}: {r[2][name][3]}"
                misses[key] = misses.get(key, 0) + 1
        why = "; ".join(f"{v} {k}" for k, v in misses.items()) or "-"
        row = f"| {name} | {acc:.4f} | {sum(det)}/{n} = {np.mean(det):.1%} | {why} |"
        if other:
            row += f" {other[0][name][0]:.3f} | {other[0][name][1]:.1%} |"
        print(row)
    psnrs = [r[0] for r in results]
    print(f"\nPSNR ours: min {min(psnrs):.2f} dB, mean {np.mean(psnrs):.2f} dB", end="")
    print(f"; dwtDct: min {min(other[1]):.2f}, mean {np.mean(other[1]):.2f} dB" if other else "")
    if other is None:
        print("dwtDct: invisible-watermark is not installed (pip install invisible-watermark), column left out")
    t_det = np.array([[r[2][name][2] for name in ATTACKS] for r in results])
    print(
        f"embed {np.mean([r[1] for r in results]) * 1e3:.0f} ms/image; detect mean {t_det.mean() * 1e3:.0f} ms, "
        f"median {np.median(t_det) * 1e3:.0f} ms, max {t_det.max() * 1e3:.0f} ms (per process, shared CPU)"
    )


def report_unmarked(fp: dict[str, list[tuple[bool, float]]]) -> None:
    """Prints the false-positive line."""
    total = sum(len(v) for v in fp.values())
    hits = sum(f for v in fp.values() for f, _ in v)
    per = ", ".join(f"{k} {sum(f for f, _ in v)}/{len(v)}" for k, v in fp.items())
    t_fp = np.mean([t for v in fp.values() for _, t in v])
    bound = 3 / total if hits == 0 else float("nan")
    print(
        f"false positives: {hits}/{total} unmarked real images ({per}); 95 % upper bound {bound:.2%}; "
        f"detect on unmarked: {t_fp * 1e3:.0f} ms mean"
    )


GRID_KINDS = ("mix", "generate")


def _grid(G, kind: str, i: int):
    """The i-th figure of a kind [C, H, W] uint8, as `stylegan mix` / `stylegan generate --grid` lay it out."""
    from stylegan.editing.figures import PAD, layer_groups, style_mixing_figure
    from stylegan.editing.generate import generate_images
    from stylegan.images import tile

    if kind == "mix":
        rows = [(100 * i + k, layer_groups(G)["coarse"]) for k in range(5)]
        return style_mixing_figure(G, [100 * i + 50 + k for k in range(4)], rows)
    count = 16 if G.img_resolution <= 32 else 9
    return tile(generate_images(G, list(range(count * i, count * (i + 1)))), pad=PAD)


def grid_jobs(n: int, zoom: str = "1", first: int = 0) -> list[tuple[str, str, bytes]]:
    """(model, kind, PNG bytes) for n figures of each kind per built-in model (the first-th to the
    (first + n - 1)-th), marked by images.png_bytes; zoom 'auto' enlarges them as `stylegan mix` and
    `stylegan generate --grid` do by default."""
    from stylegan.cli.common import image_metadata, resolve_zoom
    from stylegan.images import png_bytes
    from stylegan.images import zoom as enlarge
    from stylegan.io import load_generator

    jobs = []
    for model in ("default", "faces"):
        G = load_generator(model)
        meta = image_metadata(model)
        with torch.no_grad():
            factor = resolve_zoom(zoom, G)
            jobs += [
                (model, kind, png_bytes(enlarge(_grid(G, kind, i), factor), metadata=meta))
                for kind in GRID_KINDS
                for i in range(first, first + n)
            ]
    return jobs


def _one_grid(job: tuple[str, str, bytes]) -> dict[str, tuple[float, bool]]:
    """Decodes one marked figure after each attack: attack -> (bit accuracy, found with the right payload)."""
    model, _, data = job
    image = Image.open(io.BytesIO(data))
    x = np.asarray(image.convert("RGB"))
    want = M.Payload(model=M.model_hash_prefix(model), seed=0)
    rows = {}
    for name, attack in ATTACKS.items():
        found = M.detect(attack(x))
        rows[name] = (_bit_accuracy(found, want), found.found and found.payload == want)
    return rows


def report_grids(jobs: list[tuple[str, str, bytes]], results: list[dict]) -> None:
    """Prints the grid table: rows attacks, columns (model, kind) with detection rate and bit accuracy."""
    columns = sorted({(model, kind) for model, kind, _ in jobs}, key=lambda c: (c[0] != "default", c[1] != "mix"))
    sizes = {}
    for model, kind, data in jobs:
        sizes.setdefault((model, kind), Image.open(io.BytesIO(data)).size)
    per = {c: [r for (m, k, _), r in zip(jobs, results, strict=True) if (m, k) == c] for c in columns}
    print(f"# marked figures: {', '.join(f'{m} {k} {w}x{h}' for (m, k), (w, h) in sizes.items())}")
    head = "| attack | " + " | ".join(f"{m} {k}: detected | bit acc" for m, k in columns) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in ATTACKS:
        cells = []
        for c in columns:
            got = [r[name] for r in per[c]]
            cells.append(f"{sum(ok for _, ok in got)}/{len(got)} | {np.mean([a for a, _ in got]):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="marked images per attack (a quarter of each host kind)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--fpr-n", type=int, default=200, help="unmarked real images for the false-positive rate")
    parser.add_argument("--natural", type=Path, default=None, help="folder of natural photographs (unmarked)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=0, help="host and payload seed (another set of images)")
    parser.add_argument("--grids", type=int, default=0, help="mix figures and generate grids per built-in model")
    parser.add_argument("--zoom", default="1", help="the figures' --zoom: 1 (own size) or auto (the CLI default)")
    parser.add_argument(
        "--grid-first", type=int, default=0, help="index of the first figure (seeds); other values: validation sets"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    with Pool(args.jobs) as pool:
        if args.grids > 0:
            jobs = grid_jobs(args.grids, args.zoom, args.grid_first)
            report_grids(jobs, pool.map(_one_grid, jobs, chunksize=1))
        if args.n > 0:
            marked = ours(args.n, args.size, pool, args.seed)
            report_marked(marked, imwm(marked["hosts"]), args.size)
        if args.fpr_n <= 0:
            return
        sets = unmarked_sets(args.fpr_n, args.natural)
        report_unmarked({name: pool.map(_found, images, chunksize=8) for name, images in sets.items()})


if __name__ == "__main__":
    main()

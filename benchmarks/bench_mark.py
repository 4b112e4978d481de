"""Provenance mark robustness: per attack, bit accuracy and detection rate; PSNR; embed/decode time; false positives
on unmarked images. Side by side with invisible-watermark's dwtDct when it is installed (optional; never a dependency).

Hosts: AT&T faces (AT&T Laboratories Cambridge, /work/shared/data/att-faces), upscaled to --size (real photos: the
mark works on any image). Unmarked set for the false-positive rate: the faces at several sizes and crops.

    python benchmarks/bench_mark.py --n 50 --size 256 --fpr-n 1200
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from stylegan.forensics import mark as M
from stylegan.forensics.ecc import conv_encode, crc16

FACES = Path("/work/shared/data/att-faces")


def hosts(n: int, size: int, offset: int = 0) -> list[np.ndarray]:
    """n faces [size, size, 3], every other one tinted into colour."""
    files = sorted(FACES.glob("s*/*.pgm"))
    out = []
    for i in range(n):
        g = np.asarray(Image.open(files[(offset + 7 * i) % len(files)]).resize((size, size), Image.BICUBIC), float)
        out.append(np.clip(np.stack([g * 1.1, g * 0.9, g * 0.7 + 30], -1) if i % 2 else np.stack([g] * 3, -1), 0, 255))
    return [x.astype(np.uint8) for x in out]


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
    "noise s=0.02": lambda x: np.clip(x + np.random.default_rng(0).normal(0, 5.1, x.shape), 0, 255).astype(np.uint8),
}


def ours(n: int, size: int):
    """Per attack: (bit accuracy of the 64 payload+CRC bits, detection rate); PSNR list; embed and detect times."""
    rng = np.random.default_rng(0)
    stats = {name: [0.0, 0] for name in ATTACKS}
    psnrs, t_embed, t_detect = [], [], []
    for x in hosts(n, size):
        payload = M.Payload(model=int(rng.integers(4096)), seed=int(rng.integers(1 << 32)))
        t = time.perf_counter()
        y = M.embed(x, payload)
        t_embed.append(time.perf_counter() - t)
        psnrs.append(M.psnr_db(x, y))
        for name, attack in ATTACKS.items():
            t = time.perf_counter()
            found = M.detect(attack(y))
            t_detect.append(time.perf_counter() - t)
            stats[name][0] += _bit_accuracy(found, payload)
            stats[name][1] += found.found and found.payload == payload
    return {k: (a / n, d / n) for k, (a, d) in stats.items()}, psnrs, t_embed, t_detect


def _bit_accuracy(found: M.MarkResult, payload: M.Payload) -> float:
    """Share of the 64 payload+CRC bits right; a missed mark counts as chance (0.5) when nothing was decoded."""
    if not found.found:
        return 0.5
    want = np.concatenate([payload.to_bits(), crc16(payload.to_bits())])
    got = np.concatenate([found.payload.to_bits(), crc16(found.payload.to_bits())])
    return float(np.mean(want == got))


def false_positives(n: int) -> tuple[int, int]:
    """Unmarked faces at 128/256/512 px and 80 % crops of them: (detections, images)."""
    hits = total = 0
    per = max(1, n // 4)
    for size in (128, 256, 512):
        for x in hosts(per, size, offset=3):
            hits += M.detect(x).found
            total += 1
    for x in hosts(n - 3 * per, 320, offset=5):
        hits += M.detect(_crop(x)).found
        total += 1
    return hits, total


def imwm(n: int, size: int):
    """invisible-watermark dwtDct with a 48-bit message, side by side; None when not installed."""
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    stats = {name: [0.0, 0] for name in ATTACKS}
    psnrs = []
    for x in hosts(n, size):
        msg = rng.integers(0, 256, 6).astype(np.uint8).tobytes()
        enc = WatermarkEncoder()
        enc.set_watermark("bytes", msg)
        bgr = np.ascontiguousarray(x[:, :, ::-1])
        y = enc.encode(bgr, "dwtDct")[:, :, ::-1]
        y = np.ascontiguousarray(y)
        psnrs.append(M.psnr_db(x, y))
        want = np.unpackbits(np.frombuffer(msg, np.uint8))
        for name, attack in ATTACKS.items():
            z = np.ascontiguousarray(attack(y)[:, :, ::-1])
            try:
                got = np.unpackbits(np.frombuffer(WatermarkDecoder("bytes", 48).decode(z, "dwtDct"), np.uint8))
                acc = float(np.mean(got[: len(want)] == want))
            except Exception:  # decoder fails on small or odd-sized inputs
                acc = 0.5
            stats[name][0] += acc
            stats[name][1] += acc == 1.0
    return {k: (a / n, d / n) for k, (a, d) in stats.items()}, psnrs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="marked images per attack")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--fpr-n", type=int, default=200, help="unmarked images for the false-positive rate")
    args = parser.parse_args()
    table, psnrs, t_embed, t_detect = ours(args.n, args.size)
    other = imwm(args.n, args.size)
    coded = len(conv_encode(np.zeros(64, np.uint8)))
    print(f"# {args.n} AT&T faces at {args.size}x{args.size}; payload 48 bits (+CRC-16, conv code: {coded} coded)")
    head = "| attack | ours: bit acc | ours: detected |" + (
        " dwtDct: bit acc | dwtDct: all bits right |" if other else ""
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, (acc, det) in table.items():
        row = f"| {name} | {acc:.3f} | {det:.0%} |"
        if other:
            row += f" {other[0][name][0]:.3f} | {other[0][name][1]:.0%} |"
        print(row)
    print(f"\nPSNR ours: min {min(psnrs):.2f} dB, mean {np.mean(psnrs):.2f} dB", end="")
    print(f"; dwtDct: min {min(other[1]):.2f}, mean {np.mean(other[1]):.2f} dB" if other else "")
    print(f"embed {np.mean(t_embed) * 1e3:.0f} ms/image, detect {np.mean(t_detect) * 1e3:.0f} ms/image (mean)")
    t = time.perf_counter()
    M.embed(hosts(1, 1024)[0], M.Payload(seed=1))
    print(f"embed 1024x1024: {(time.perf_counter() - t) * 1e3:.0f} ms")
    hits, total = false_positives(args.fpr_n)
    print(f"false positives: {hits}/{total} unmarked images")


if __name__ == "__main__":
    main()

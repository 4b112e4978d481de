"""benchmarks/ae_simulator.py: the autoencoder that gives the detector benchmark simulated generator output of any
subject. Its reconstructions must keep the image's size and kind (grey stays grey) and its content (far closer to
the input than a blurred copy of another image), and carry the decoder's trace (not the input bit for bit)."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from ae_simulator import reconstruct, train_autoencoder  # noqa: E402

ATT = Path(__file__).resolve().parents[1] / "fixtures" / "att-faces"  # 12 AT&T faces (see its README)


def faces() -> list[np.ndarray]:
    from PIL import Image

    files = sorted(ATT.glob("s*/*.pgm"))
    assert files, f"AT&T faces not found under {ATT}"
    return [np.asarray(Image.open(f)) for f in files]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_reconstructions_keep_size_kind_and_content():
    torch.set_num_threads(1)
    images = faces()
    rgb = [np.stack([img, img[::-1], 255 - img], -1)[:61, :77] for img in images[:4]]  # odd sizes, colour
    ae = train_autoencoder(images[:8] + rgb, steps=300, batch=16)
    grey_out = reconstruct(ae, images[8:])
    rgb_out = reconstruct(ae, rgb)
    pairs = zip(grey_out + rgb_out, images[8:] + rgb, strict=True)
    assert all(out.shape == img.shape and out.dtype == np.uint8 for out, img in pairs)
    quality = [psnr(i, o) for i, o in zip(images[8:], grey_out, strict=True)]
    shifted = grey_out[1:] + grey_out[:1]  # each face against another face's reconstruction
    other = [psnr(i, o) for i, o in zip(images[8:], shifted, strict=True)]
    assert min(quality) > 22 and min(quality) > max(other) + 5, (quality, other)
    assert max(quality) < 45  # a trace is left: not an identity map

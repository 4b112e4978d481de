"""Simulated generator output of any subject: real images passed through a small convolutional autoencoder whose
decoder up-samples the way image generators do (learned 2x transposed convolutions), after the "AutoGAN" simulator of
Zhang, Karaman and Chang 2019 ("Detecting and simulating artifacts in GAN fake images"). The reconstruction keeps the
subject and leaves the decoder's up-sampling trace, so a detector trained on real vs reconstructed images can only
learn the trace, for every subject it has real images of.

The decoder is generic (no StyleGAN family's modulated convolutions or FIR filters), so leaving a family out of the
detector's training stays a fair test. Trained here, on the CPU, on the detector's training split of the real images
only (a minute or two: a few thousand 32x32 crops), then applied at each image's own size.

    from ae_simulator import train_autoencoder, reconstruct
    ae = train_autoencoder(real_train_images)
    fakes = reconstruct(ae, images)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CROP = 32  # training crops (every real set has images at least this large)


class AutoEncoder(nn.Module):
    """Down 4x with strided convolutions, up 4x with two learned transposed convolutions, RGB in and out in [-1, 1]."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.2)
        self.encode = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, padding=1), act,
            nn.Conv2d(width // 2, width, 4, stride=2, padding=1), act,
            nn.Conv2d(width, width, 4, stride=2, padding=1), act,
            nn.Conv2d(width, width, 3, padding=1),
        )  # fmt: skip
        self.decode = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), act,
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), act,
            nn.Conv2d(width, width, 3, padding=1), act,
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), act,
            nn.Conv2d(width // 2, 3, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _tensor(img: np.ndarray) -> torch.Tensor:
    """[3, H, W] in [-1, 1] from a grey [H, W] or RGB [H, W, 3] uint8 image."""
    x = torch.from_numpy(np.array(img)).float() / 127.5 - 1
    return x.expand(3, *x.shape) if x.ndim == 2 else x.permute(2, 0, 1)


def train_autoencoder(images: list[np.ndarray], steps: int = 1500, batch: int = 32, seed: int = 0) -> AutoEncoder:
    """An autoencoder fitted (L1) to random crops of the images; a quarter of the crops are turned grey so that grey
    sets (Fashion-MNIST, AT&T faces) are reconstructed as grey."""
    images = [img for img in images if min(img.shape[:2]) >= CROP]
    if not images:
        raise ValueError(f"no image of at least {CROP}x{CROP} px to train the autoencoder on")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    ae = AutoEncoder()
    opt = torch.optim.Adam(ae.parameters(), lr=2e-3, betas=(0.5, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        crops = []
        for i in rng.integers(len(images), size=batch):
            img = images[i]
            y, x = (int(rng.integers(s - CROP + 1)) for s in img.shape[:2])
            crop = _tensor(img[y : y + CROP, x : x + CROP])
            crops.append(crop.mean(0, keepdim=True).expand(3, CROP, CROP) if rng.random() < 0.25 else crop)
        x = torch.stack(crops)
        loss = (ae(x) - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return ae.eval()


@torch.no_grad()
def reconstruct(ae: AutoEncoder, images: list[np.ndarray]) -> list[np.ndarray]:
    """Each image through the autoencoder at its own size (edges reflected up to a multiple of 4, then cut back);
    grey images come back grey (the channel mean), uint8 like the input."""
    out = []
    for img in images:
        h, w = img.shape[:2]
        x = _tensor(img)[None]
        x = nn.functional.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect")
        y = ae(x)[0, :, :h, :w]
        y = y.mean(0) if img.ndim == 2 else y.permute(1, 2, 0)
        out.append(((y + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy())
    return out

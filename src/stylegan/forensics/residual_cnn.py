"""A small CNN that reads the high-pass residual of a grey image and says how generated it looks.

Fully convolutional with global average pooling, so it takes any image size; it is trained on crops and applied to
whole images. The first step is fixed (image minus its 3x3 box blur, as spectral.high_pass): the network sees the
fine detail generators leave, not the content. With norm="local" that residual is also divided by its local RMS
(over a NORM_WINDOW square around each pixel), so that how busy or how contrasty a picture is stops being a cue:
what is left is the texture of the detail, where up-sampling leaves its trace. The window is local so that a crop
and the whole image are normalised alike. norm="npr" takes another residual, then normalises it the same way: each
pixel minus the top-left pixel of its 2x2 block (the image sub-sampled 2x and brought back by nearest neighbour; the
"neighbouring pixel relationships" of Tan et al. 2024), which keeps what 2x up-sampling leaves between neighbours;
its training crops start at even offsets so that the blocks stay the image's. Since 2026-12-01 detector.DEFAULT_NORM
is "npr+local", one CNN on each residual (chosen on validation data, benchmarks/bench_detector.py); files written
before keep the norm they name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stylegan.forensics.spectral import to_gray

WIDTHS = (16, 32, 64, 64)
CROP = 32  # side of the training crops (images smaller than this are used whole)
NORMS = ("none", "local", "npr")
NORM_WINDOW = 9
NORM_FLOOR = 2.0 / 255  # RMS below ~2 grey levels counts as flat (no amplifying quantisation noise)


class ResidualCNN(nn.Module):
    """[N, 1, H, W] grey in [0, 1] -> [N] logit of 'generated'. Four 3x3 conv layers (the middle two stride 2)."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS, norm: str = "none"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown residual normalisation {norm!r}; choose {' or '.join(NORMS)}")
        self.norm = norm
        layers, channels = [], 1
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, stride=2 if i in (1, 2) else 1, padding=1), nn.LeakyReLU(0.2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        if self.norm == "npr":
            residual = gray - _block_corner(gray)  # [N, 1, H, W]
        else:
            residual = gray - _box(gray, 3)  # [N, 1, H, W]
        if self.norm in ("local", "npr"):
            scaled = residual / (_box(residual**2, NORM_WINDOW).sqrt() + NORM_FLOOR)  # ~unit RMS where there is detail
        else:
            scaled = residual * 10.0  # residuals are ~0.01-0.1
        return self.head(self.features(scaled).mean(dim=(2, 3))).squeeze(1)


def _box(x: torch.Tensor, size: int) -> torch.Tensor:
    """[N, 1, H, W] -> the mean over the size x size square around each pixel (size odd; edges reflected; the
    square shrinks to fit images smaller than it)."""
    half = min(size // 2, min(x.shape[-2:]) - 1)
    return F.avg_pool2d(F.pad(x, (half, half, half, half), mode="reflect"), 2 * half + 1, stride=1)


def _block_corner(x: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] -> each pixel replaced by the top-left pixel of its 2x2 block (blocks from the image's corner)."""
    h, w = x.shape[-2:]
    corner = x[..., ::2, ::2]
    return corner.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]


def random_crop(gray: torch.Tensor, size: int, generator: torch.Generator, step: int = 1) -> torch.Tensor:
    """[1, H, W] -> [1, s, s] with s = min(size, H, W): a random square crop at offsets that are multiples of `step`
    (so that a 2x2 block grid stays the image's), mirrored left-right with p = 1/2 (an even side keeps that grid)."""
    h, w = gray.shape[-2:]
    side = min(size, h, w)
    y = step * int(torch.randint(0, (h - side) // step + 1, (1,), generator=generator))
    x = step * int(torch.randint(0, (w - side) // step + 1, (1,), generator=generator))
    crop = gray[:, y : y + side, x : x + side]
    return crop.flip(-1) if torch.rand((), generator=generator) < 0.5 else crop


def batch_loss(model: ResidualCNN, crops: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over crops of mixed sizes (crops of one size go through together)."""
    total = torch.zeros(())
    for idx in _indices_by_size(crops):
        logits = model(torch.stack([crops[i] for i in idx]))
        total = total + F.binary_cross_entropy_with_logits(logits, labels[idx].float(), reduction="sum")
    return total / len(crops)


def train_cnn(
    images: list[np.ndarray],
    labels: torch.Tensor,
    *,
    augment: Callable[[np.ndarray], np.ndarray] | None = None,
    steps: int = 1000,
    batch: int = 64,
    seed: int = 0,
    norm: str = "none",
) -> ResidualCNN:
    """Fits a ResidualCNN to uint8 images ([H, W] or [H, W, 3]) and labels [N] (1 = generated), for `steps` batches.

    Each time an image is drawn (passes over the shuffled set) it is laundered afresh by `augment` (if given), turned
    grey, and one random crop of CROP pixels (or the whole image when smaller) is used. Adam (lr 2e-3, cosine decay to
    0), binary cross-entropy. norm: the residual normalisation of the model (NORMS).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = ResidualCNN(norm=norm)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    queue = torch.empty(0, dtype=torch.long)  # the images still to draw, in shuffled passes over the set
    for _ in range(steps):
        while len(queue) < batch:
            queue = torch.cat([queue, torch.randperm(len(images), generator=generator)])
        idx, queue = queue[:batch], queue[batch:]
        pixels = [images[i] if augment is None else augment(images[i]) for i in idx]
        crops = [random_crop(gray_tensor(img), CROP, generator, step=2 if norm == "npr" else 1) for img in pixels]
        loss = batch_loss(model, crops, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    return model.eval()


def gray_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 [H, W] or [H, W, 3] -> float32 [1, H, W] grey in [0, 1]."""
    return torch.from_numpy(to_gray(pixels)).float()[None]


@torch.no_grad()
def cnn_logits(model: ResidualCNN, images: list[torch.Tensor]) -> torch.Tensor:
    """List of [1, H, W] (any sizes) -> [N] logits; images of the same size go through together."""
    out = torch.empty(len(images))
    for idx in _indices_by_size(images):
        for start in range(0, len(idx), 256):
            chunk = idx[start : start + 256]
            out[chunk] = model(torch.stack([images[i] for i in chunk]))
    return out


def _indices_by_size(tensors: list[torch.Tensor]) -> list[list[int]]:
    """Indices of the tensors grouped by their last two dimensions (those that can be stacked together)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape[-2:]), []).append(i)
    return list(groups.values())

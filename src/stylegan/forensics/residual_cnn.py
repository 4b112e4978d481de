"""A small CNN that reads the high-pass residual of a grey image and says how generated it looks.

Fully convolutional with global average pooling, so it takes any image size; it is trained on crops and applied to
whole images. The first step is fixed (image minus its 3x3 box blur, as spectral.high_pass): the network sees the
fine detail generators leave, not the content.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (16, 32, 64, 64)
CROP = 32  # side of the training crops (images smaller than this are used whole)


class ResidualCNN(nn.Module):
    """[N, 1, H, W] grey in [0, 1] -> [N] logit of 'generated'. Four 3x3 conv layers (the middle two stride 2)."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        layers, channels = [], 1
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, stride=2 if i in (1, 2) else 1, padding=1), nn.LeakyReLU(0.2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        residual = gray - F.avg_pool2d(F.pad(gray, (1, 1, 1, 1), mode="reflect"), 3, stride=1)  # [N, 1, H, W]
        pooled = self.features(residual * 10.0).mean(dim=(2, 3))  # [N, C]; x10: residuals are ~0.01-0.1
        return self.head(pooled).squeeze(1)


def random_crops(images: list[torch.Tensor], size: int, generator: torch.Generator) -> torch.Tensor:
    """List of [1, H, W] -> [N, 1, s, s] with s = min(size, smallest side): one random crop of each image."""
    side = min(size, *(min(img.shape[-2:]) for img in images))
    crops = []
    for img in images:
        h, w = img.shape[-2:]
        y = int(torch.randint(0, h - side + 1, (1,), generator=generator))
        x = int(torch.randint(0, w - side + 1, (1,), generator=generator))
        crops.append(img[:, y : y + side, x : x + side])
    return torch.stack(crops)


def train_cnn(
    images: list[torch.Tensor], labels: torch.Tensor, *, epochs: int = 15, batch: int = 64, seed: int = 0
) -> ResidualCNN:
    """Fits a ResidualCNN to grey images (list of [1, H, W] in [0, 1]) and labels [N] (1 = generated), on crops.

    Adam (lr 2e-3, cosine decay to 0), binary cross-entropy; each epoch sees one random crop of every image.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = ResidualCNN()
    steps = epochs * -(-len(images) // batch)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), batch):
            idx = order[start : start + batch]
            x = random_crops([images[i] for i in idx], CROP, generator)
            loss = F.binary_cross_entropy_with_logits(model(x), labels[idx].float())
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def cnn_logits(model: ResidualCNN, images: list[torch.Tensor]) -> torch.Tensor:
    """List of [1, H, W] (any sizes) -> [N] logits; images of the same size go through together."""
    out = torch.empty(len(images))
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
        by_size.setdefault(tuple(img.shape[-2:]), []).append(i)
    for idx in by_size.values():
        for start in range(0, len(idx), 256):
            chunk = idx[start : start + 256]
            out[chunk] = model(torch.stack([images[i] for i in chunk]))
    return out

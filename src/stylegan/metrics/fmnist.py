"""A small Fashion-MNIST classifier: the offline domain network behind `fid_fmnist` and its class labels.

The weights ship with the package (`stylegan/assets/fmnist_classifier.safetensors`);
`scripts/train_fmnist_classifier.py` reproduces them from Debian's `dataset-fashion-mnist`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from stylegan.data.fashion_mnist import CLASSES

FMNIST_CLASSES = CLASSES  # one list of class names, from the dataset module
FMNIST_RESOLUTION = 28
FMNIST_ASSET = "fmnist_classifier.safetensors"


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FMNISTClassifier(nn.Module):
    """Three conv blocks and a 128-d hidden layer. `features()` (the FID features) pools the last conv block.

    Input: images [N, 1, H, W] float in [-1, 1] (any H, W: resized to 28x28 with antialiasing).
    """

    feature_dim = 128

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            _conv_bn(1, width),
            nn.MaxPool2d(2),  # [N, w, 14, 14]
            _conv_bn(width, 2 * width),
            nn.MaxPool2d(2),  # [N, 2w, 7, 7]
            _conv_bn(2 * width, 4 * width),
            nn.MaxPool2d(2),  # [N, 4w, 3, 3]
        )
        self.fc = nn.Linear(4 * width * 9, self.feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, len(FMNIST_CLASSES))

    def _prepare(self, img: torch.Tensor) -> torch.Tensor:
        if img.shape[1] == 3:  # RGB generators: luminance
            img = img.mean(dim=1, keepdim=True)
        if img.shape[-2:] != (FMNIST_RESOLUTION, FMNIST_RESOLUTION):
            img = F.interpolate(
                img, size=(FMNIST_RESOLUTION,) * 2, mode="bilinear", align_corners=False, antialias=True
            )
        return img

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Images [N, 1, H, W] in [-1, 1] -> FID features [N, 256]: the last conv block, mean- and max-pooled.

        Pooled conv features play the part of Inception's pool3. The 128-d hidden layer rates an untrained
        generator and uniform noise alike (FID 134.6 vs 122.6); these features order them (53.1 vs 78.6).
        """
        x = self.blocks(self._prepare(img.float()))  # [N, 4w, 3, 3]
        return torch.cat([x.mean(dim=[2, 3]), x.amax(dim=[2, 3])], dim=1)

    def hidden(self, img: torch.Tensor) -> torch.Tensor:
        """Images [N, 1, H, W] in [-1, 1] -> the penultimate (hidden) layer [N, 128]."""
        x = self.blocks(self._prepare(img.float()))
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Images [N, 1, H, W] in [-1, 1] -> class logits [N, 10]."""
        return self.head(self.dropout(self.hidden(img)))


def default_fmnist_weights() -> Path:
    """Path of the classifier weights shipped with the package."""
    return Path(str(resources.files("stylegan") / "assets" / FMNIST_ASSET))


def load_fmnist_classifier(path: str | Path | None = None, device: torch.device | str = "cpu") -> FMNISTClassifier:
    """Load the shipped (or a given) Fashion-MNIST classifier in eval mode."""
    from safetensors.torch import load_file

    from stylegan.metrics.weights import MissingWeightsError

    path = Path(path) if path is not None else default_fmnist_weights()
    if not path.is_file():
        raise MissingWeightsError(
            f"Fashion-MNIST classifier weights not found: {path}. Re-create them with "
            "`python scripts/train_fmnist_classifier.py` (needs `apt-get install dataset-fashion-mnist`)."
        )
    model = FMNISTClassifier()
    model.load_state_dict(load_file(str(path)))
    return model.eval().requires_grad_(False).to(device)

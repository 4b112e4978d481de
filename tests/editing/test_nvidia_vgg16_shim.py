"""The TorchScript stand-in for NVIDIA's vgg16.pt (benchmarks/nvidia_projector.py) gives our LPIPS as its distance.

NVIDIA's projector calls `vgg16(images_0_255, resize_images=False, return_lpips=True)` and sums the squared
differences of the two outputs. The oracle is our LPIPSVGG16.forward (1x1 head convolutions and spatial means), a
different computation from the shim's weighted, flattened feature vectors. Random weights: no download needed.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch

from stylegan.metrics.lpips import LPIPSVGG16

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import nvidia_projector  # noqa: E402


@pytest.fixture(scope="module")
def lpips() -> LPIPSVGG16:
    torch.manual_seed(0)
    model = LPIPSVGG16()
    for k in range(5):
        head = getattr(model, f"lin{k}").model[1].weight
        head.data = torch.rand_like(head)  # LPIPS heads are non-negative
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def shim(lpips, tmp_path_factory) -> torch.jit.ScriptModule:
    path = nvidia_projector.lpips_torchscript(lpips, tmp_path_factory.mktemp("shim") / "vgg16.pt")
    with open(path, "rb") as f, warnings.catch_warnings():  # their projector hands torch.jit.load a file object
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(f)


@pytest.mark.parametrize("channels", [1, 3])
def test_shim_distance_is_our_lpips(lpips, shim, channels):
    gen = torch.Generator().manual_seed(channels)
    a, b = (torch.rand(2, channels, 32, 32, generator=gen) * 255 for _ in range(2))
    fa, fb = (shim(x, resize_images=False, return_lpips=True) for x in (a, b))
    theirs = (fa - fb).square().sum(dim=1)

    def ours(x):
        return (x / 127.5 - 1).expand(-1, 3, -1, -1)

    assert torch.allclose(theirs, lpips(ours(a), ours(b)), rtol=0, atol=1e-5)
    assert theirs.min() > 1e-3  # not trivially equal


def test_shim_refuses_other_modes(shim):
    with pytest.raises(torch.jit.Error, match="LPIPS features"):
        shim(torch.zeros(1, 3, 32, 32), resize_images=True, return_lpips=True)

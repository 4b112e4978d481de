"""What the test suite needs beyond the package: one test each, skipped when absent, failed when absent under CI=true.

The conftest turns the skips of other tests that name these things into failures under CI=true; these tests also
cover the tests that do not skip but take another path when something is missing (mp4 writing without the
[video] extra tests the error message instead).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ci_skip import skip_or_fail
from stylegan.data.fashion_mnist import find_fashion_mnist

# module -> how `make venv` installs it
MODULES = {
    "scipy": "the [metrics] or [dev] extra",
    "pytorch_fid": "the pytorch-fid test oracle (make venv)",
    "lpips": "the lpips test oracle (make venv)",
    "imageio": "the [video] extra",
    "imageio_ffmpeg": "the [video] extra",
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_optional_module_is_installed(module):
    if importlib.util.find_spec(module) is None:
        skip_or_fail(f"{module} not installed: {MODULES[module]}")


def test_torchvision_model_code_is_available():
    """torchvision itself, or its sources in .venv/oracles (what the feature-net oracles import)."""
    sources = Path(sys.prefix) / "oracles" / "torchvision" / "models" / "inception.py"
    if importlib.util.find_spec("torchvision") is None and not sources.is_file():
        skip_or_fail(f"torchvision not installed and no sources at {sources} (make venv)")


def test_fashion_mnist_is_installed():
    if find_fashion_mnist() is None:
        skip_or_fail("Fashion-MNIST absent (apt-get install dataset-fashion-mnist)")


def test_video_writer_finds_ffmpeg():
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        skip_or_fail("imageio_ffmpeg not installed: the [video] extra")
    import imageio_ffmpeg

    assert Path(imageio_ffmpeg.get_ffmpeg_exe()).is_file()

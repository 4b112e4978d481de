"""Where feature-network weights come from: a user-given file, the cache, or (online) a checked download."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import click


class MissingWeightsError(click.ClickException):
    """Weights of a feature network are not available; the message names the file and how to get it."""


@dataclass(frozen=True)
class WeightsSpec:
    """A downloadable weights file. `sha256` may be a prefix (torch hub names carry its first 8 digits)."""

    filename: str
    url: str
    sha256: str | None = None
    option: str = "--inception"  # the `stylegan metrics` option that takes this file


INCEPTION_WEIGHTS = WeightsSpec(
    "pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth",
    "6726825d",
)
VGG16_WEIGHTS = WeightsSpec(
    "vgg16-397923af.pth",
    "https://download.pytorch.org/models/vgg16-397923af.pth",
    "397923af",
    "--vgg16",
)
LPIPS_VGG_LIN_WEIGHTS = WeightsSpec(
    "lpips_v0.1_vgg.pth",
    "https://github.com/richzhang/PerceptualSimilarity/raw/v0.1/lpips/weights/v0.1/vgg.pth",
    option="",  # no option: `pip install lpips` (its heads are found) or the cache path
)


def cache_dir() -> Path:
    """`$STYLEGAN_CACHE/metrics`, else `~/.cache/stylegan/metrics`."""
    root = os.environ.get("STYLEGAN_CACHE") or Path.home() / ".cache" / "stylegan"
    return Path(root) / "metrics"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(spec: WeightsSpec, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(dst.suffix + ".part")
    urllib.request.urlretrieve(spec.url, tmp)  # noqa: S310 (fixed https URLs)
    if spec.sha256 and not sha256_of(tmp).startswith(spec.sha256):
        tmp.unlink()
        raise MissingWeightsError(
            f"Downloaded {spec.filename} has the wrong sha256 (expected {spec.sha256}...)."
        )
    tmp.replace(dst)


def resolve_weights(
    spec: WeightsSpec, path: str | os.PathLike | None = None, *, download: bool = True
) -> Path:
    """Return a local file for `spec`: `path` if given, else the cache, else a download into the cache.

    Downloads are off when `download` is False or the environment sets STYLEGAN_OFFLINE=1.

    Raises:
        MissingWeightsError: the file does not exist and cannot be downloaded (offline).
    """
    download = download and os.environ.get("STYLEGAN_OFFLINE", "0") in ("", "0")
    cached = cache_dir() / spec.filename
    how = f"Download {spec.url} and put it at {cached}"
    how += (
        f", or pass it with {spec.option}."
        if spec.option
        else ", or `pip install lpips` (its heads are used)."
    )
    if path is not None:
        if not Path(path).is_file():
            raise MissingWeightsError(f"Weights file not found: {path}. {how}")
        return Path(path)
    if cached.is_file():
        return cached
    if download:
        try:
            _download(spec, cached)
            return cached
        except OSError as err:
            raise MissingWeightsError(
                f"{spec.filename} is not cached and could not be downloaded ({err}). {how}"
            ) from err
    raise MissingWeightsError(f"{spec.filename} is not available offline. {how}")


def load_state_dict(path: str | os.PathLike) -> dict:
    """Read a state dict from .safetensors or a plain torch .pth (weights_only: no code is executed)."""
    import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state

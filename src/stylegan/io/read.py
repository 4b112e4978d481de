"""Reading one local model file of any supported format into our modules. Never executes code from the file."""

from __future__ import annotations

import struct
from pathlib import Path

from torch import nn

from stylegan.compat import load_foreign
from stylegan.compat.nvidia_pickle import sniff_format
from stylegan.compat.safe_pickle import one_line
from stylegan.io.errors import ModelFormatError
from stylegan.io.native import load_native

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


def check_file(path: str | Path) -> Path:
    """`path` as a Path, if it names an existing file (else a one-line ModelFormatError)."""
    path = Path(path)
    if not path.exists():
        raise ModelFormatError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a folder; give a model file (.safetensors or .pkl)")
    return path


def read_networks(path: str | Path) -> dict[str, nn.Module]:
    """All networks in one local file: native safetensors, NVIDIA ADA/StyleGAN3 pickles or TF pickles.

    Returns a dict such as {"G": ..., "D": ..., "G_ema": ...}, modules in eval mode on the CPU.
    """
    path = check_file(path)
    fmt = sniff_format(path)
    read = {"safetensors": load_native, "ada-pickle": load_foreign, "tf-pickle": load_foreign}.get(fmt)
    if read is None:
        raise ModelFormatError(f"{path}: not a model file (expected .safetensors from stylegan, or an NVIDIA .pkl)")
    try:
        return read(path)
    except ModelFormatError:
        raise
    except _CONTENT_ERRORS as err:  # a reader met content it did not expect: still the file's fault
        raise ModelFormatError(f"{path.name}: unexpected content ({one_line(err)})") from err

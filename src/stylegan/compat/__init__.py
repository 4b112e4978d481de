"""Readers of foreign model formats, one-way into our modules. Nothing here executes code from a file."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from stylegan.compat.errors import ModelFormatError, UnsafePickleError


def load_foreign(path: str | Path) -> dict[str, nn.Module]:
    """Networks from an NVIDIA pickle (stylegan2-ada-pytorch snapshot or TensorFlow (G, D, Gs) tuple)."""
    from stylegan.compat.nvidia_pickle import sniff_format

    fmt = sniff_format(path)
    if fmt == "ada-pickle":
        from stylegan.compat.ada import convert_ada_pickle

        return convert_ada_pickle(path)
    if fmt == "tf-pickle":
        try:
            from stylegan.compat.tf_networks import convert_tf_pickle
        except ModuleNotFoundError:
            raise ModelFormatError(f"{Path(path).name}: TensorFlow pickles are not supported yet") from None
        return convert_tf_pickle(path)
    raise ModelFormatError(f"{Path(path).name}: a pickle, but not an NVIDIA network pickle this reader knows")


__all__ = ["ModelFormatError", "UnsafePickleError", "load_foreign"]

"""Conversion of any supported model file to the native safetensors format."""

from __future__ import annotations

from pathlib import Path

from stylegan.io.errors import ModelFormatError, OutputExistsError
from stylegan.io.loader import load_networks
from stylegan.io.native import save_networks

NETWORK_NAMES = ("G", "D", "G_ema")


def _label(src: str | Path) -> str:
    """How messages and metadata name the source: a file's name, or the zoo name / URL as given."""
    return Path(src).name if isinstance(src, Path) or Path(src).exists() else str(src)


def _chosen(nets: dict, which: str, src: str) -> list[str]:
    if which == "all":
        return [name for name in NETWORK_NAMES if name in nets]
    if which not in NETWORK_NAMES:
        raise ValueError(f"which must be one of {', '.join(NETWORK_NAMES)} or all, not {which!r}")
    if which not in nets:
        raise ModelFormatError(f"{src} holds no {which} (it has {', '.join(nets) or 'nothing'})")
    return [which]


def convert_model(src: str | Path, dest: str | Path, which: str = "G_ema", force: bool = False) -> list[str]:
    """Reads src safely and writes the chosen networks to dest (.safetensors), atomically.

    Args:
        src: anything `load_networks` reads: a file (NVIDIA .pkl, native .safetensors), a zoo name or a URL.
        dest: the output; it must end in .safetensors. An existing dest is kept unless `force`.
        which: "G_ema", "G", "D" or "all" (every network the file holds).
        force: replace an existing dest.

    Returns:
        The names of the networks written, e.g. ["G", "D", "G_ema"].

    Raises:
        OutputExistsError: dest exists and force is False (nothing is read or written).
        ModelFormatError: src is not a model file, or it lacks the chosen network.
    """
    dest = Path(dest)
    if dest.suffix != ".safetensors":
        raise ValueError(f"{dest}: the output must end in .safetensors")
    if dest.exists() and not force:
        raise OutputExistsError(f"{dest} already exists; not overwritten without force")
    nets = load_networks(src)
    names = _chosen(nets, which, _label(src))
    save_networks(dest, {name: nets[name] for name in names}, extra={"converted_from": _label(src)})
    return names

"""The native format: one safetensors file holding one or more networks, each with its config as JSON metadata.

Tensor names are `<name>.<state_dict key>` (name is G, D or G_ema). The metadata key `stylegan` holds
`{"format_version": 1, "networks": {name: {"family", "kind", "config"}}, ...extra}`, so a file always rebuilds
its networks without any code from the file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from stylegan.compat.build import build_within
from stylegan.compat.errors import brief, one_line
from stylegan.io.errors import ModelFormatError
from stylegan.networks.registry import config_from_dict, network_kind

FORMAT_VERSION = 1
META_KEY = "stylegan"


def atomic_write(path: str | Path, write_fn) -> None:
    """Calls write_fn(tmp_path) and renames the result onto path, so readers never see a partial file."""
    path = Path(path)
    os.makedirs(path.parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_networks(path: str | Path, networks: dict[str, nn.Module], extra: dict | None = None) -> None:
    """Writes networks (e.g. {"G": G, "D": D, "G_ema": G_ema}) to one safetensors file, atomically.

    Each module must have a `.config` dataclass (all networks of this package do). `extra` is stored as JSON too.
    """
    from safetensors.torch import save_file

    tensors, entries = {}, {}
    for name, module in networks.items():
        cfg = module.config
        entries[name] = {"family": cfg.family, "kind": network_kind(cfg), "config": cfg.to_dict()}
        for key, value in module.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu", torch.float32).clone().contiguous()
    meta = {"format_version": FORMAT_VERSION, "networks": entries, **(extra or {})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={META_KEY: json.dumps(meta)}))


def _open_error(path, err: Exception) -> ModelFormatError:
    return ModelFormatError(f"{path}: not a readable safetensors file ({one_line(err)})")


def read_native_metadata(path: str | Path) -> dict:
    """The `stylegan` metadata of a native file (networks, configs and extras) without reading tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as err:  # safetensors raises several types for a bad header
        raise _open_error(path, err) from None
    if raw is None:
        raise ModelFormatError(f"{path}: a safetensors file, but not a stylegan model (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise ModelFormatError(f"{path}: its '{META_KEY}' metadata is not valid JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("networks"), dict):
        raise ModelFormatError(f"{path}: its '{META_KEY}' metadata lists no networks")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFormatError(f"{path}: written by a newer stylegan (format {brief(version, 20)}); upgrade")
    return meta


def _tensor_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, from its header (no data is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except Exception as err:
        raise _open_error(path, err) from None


def _config(entry, name: str, path) -> object:
    try:
        return config_from_dict(entry["family"], entry["kind"], entry["config"])
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise ModelFormatError(f"{path}: the stored config of {name} is invalid ({one_line(err)})") from None


def _build(entry, name: str, shapes: dict, path) -> nn.Module:
    """The network `name` of a native file, built only when the file holds the tensors its config needs."""
    prefix = f"{name}."
    mine = [shape for key, shape in shapes.items() if key.startswith(prefix)]
    values = sum(math.prod(shape) for shape in mine)
    return build_within(_config(entry, name, path), len(mine), values, f"{Path(path).name} [{name}]")


def load_native(path: str | Path, names: list[str] | None = None) -> dict[str, nn.Module]:
    """Rebuilds the named networks (all by default) from a native file, in eval mode on the CPU."""
    from safetensors.torch import load_file

    entries = read_native_metadata(path)["networks"]
    names = list(entries) if names is None else names
    missing = [name for name in names if name not in entries]
    if missing:
        raise ModelFormatError(f"{path}: holds no {', '.join(missing)} (it has {', '.join(entries)})")
    shapes = _tensor_shapes(path)
    modules = {name: _build(entries[name], name, shapes, path) for name in names}
    try:
        tensors = load_file(str(path))
    except Exception as err:
        raise _open_error(path, err) from None
    for name, module in modules.items():
        prefix = f"{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).splitlines()[-1].strip()[:120]
            raise ModelFormatError(f"{path}: the tensors of {name} do not match its config ({first})") from None
        module.eval().requires_grad_(False)
    return modules

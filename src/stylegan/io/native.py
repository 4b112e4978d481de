"""The native format: one safetensors file holding one or more networks, each with its config as JSON metadata.

Tensor names are `<name>.<state_dict key>` (name is G, D or G_ema). The metadata key `stylegan` holds
`{"format_version": 1, "networks": {name: {"family", "kind", "config"}}, ...extra}`, so a file always rebuilds
its networks without any code from the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from stylegan.io.errors import ModelFormatError
from stylegan.networks.registry import build_network, config_from_dict, network_kind

FORMAT_VERSION = 1
META_KEY = "stylegan"


def atomic_write(path: str | Path, write_fn) -> None:
    """Calls write_fn(tmp_path) and renames the result onto path, so readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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


def read_native_metadata(path: str | Path) -> dict:
    """The `stylegan` metadata of a native file (networks, configs and extras) without reading tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as err:  # safetensors raises several types for a bad header
        raise ModelFormatError(f"{path}: not a readable safetensors file ({err})") from None
    if raw is None:
        raise ModelFormatError(
            f"{path}: a safetensors file, but not a stylegan model (no '{META_KEY}' metadata)"
        )
    meta = json.loads(raw)
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: written by a newer stylegan (format {meta['format_version']}); upgrade"
        )
    return meta


def load_native(path: str | Path, names: list[str] | None = None) -> dict[str, nn.Module]:
    """Rebuilds the named networks (all by default) from a native file, in eval mode on the CPU."""
    from safetensors.torch import load_file

    meta = read_native_metadata(path)
    entries = meta["networks"]
    names = list(entries) if names is None else names
    tensors = load_file(str(path))
    out = {}
    for name in names:
        entry = entries[name]
        module = build_network(config_from_dict(entry["family"], entry["kind"], entry["config"]))
        prefix = f"{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        module.load_state_dict(state)
        out[name] = module.eval().requires_grad_(False)
    return out

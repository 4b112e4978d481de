"""Building our networks from configs that a file describes, only when the file holds the weights for them.

A config read from a file (pickle kwargs, TF variable shapes, safetensors metadata) could ask for a network far
larger than the file: `img_resolution=2**30` or `mapping_layers=10**9` in a 1 MB file. `build_within` first
builds the network on the meta device (shapes only, no memory), and builds it for real only when its state
fits what the file holds.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from stylegan.compat.errors import ModelFormatError, one_line
from stylegan.networks.registry import build_network

FILTER_SLACK = 64  # values per state entry that a file may leave out (fixed resampling filters, e.g. TF's)


def _check_counts(config, n_tensors: int, what: str) -> None:
    """Fields that set how many modules are built must be justified by the number of tensors present."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if type(value) is not int:
            continue
        if field.name.endswith("layers") and value > n_tensors:
            raise ModelFormatError(f"{what}: {field.name}={value} but the file holds only {n_tensors} tensors")
        if field.name == "img_resolution" and value.bit_length() > n_tensors + 2:
            raise ModelFormatError(f"{what}: img_resolution={value} but the file holds only {n_tensors} tensors")


def state_numel(module: nn.Module) -> int:
    """Number of values in a module's state dict (parameters and persistent buffers)."""
    return sum(t.numel() for t in module.state_dict().values())


def build_within(config, n_tensors: int, n_values: int, what: str) -> nn.Module:
    """Our network for `config`, if its state fits the tensors a file holds; else a one-line ModelFormatError.

    Args:
        config: a generator or discriminator config of any family.
        n_tensors: how many tensors (state entries / variables) the file holds for this network.
        n_values: how many values those tensors hold together.
        what: file and network name for messages.
    """
    _check_counts(config, n_tensors, what)
    try:
        with torch.device("meta"):
            shapes_only = build_network(config)
    except (ValueError, TypeError, RuntimeError, ArithmeticError) as exc:
        raise ModelFormatError(f"{what}: the stored configuration is invalid ({one_line(exc)})") from None
    state = shapes_only.state_dict()
    wanted = sum(t.numel() for t in state.values())
    if wanted > n_values + FILTER_SLACK * len(state):
        raise ModelFormatError(f"{what}: the configuration needs {wanted} values, but the file holds only {n_values}")
    return build_network(config)

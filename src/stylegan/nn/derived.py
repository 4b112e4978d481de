"""Tensors derived from a weight (its Winograd transform, its per-filter energy), computed once per weight state.

An entry is keyed by the weight's identity and a tag, and is valid while the weight's storage (`data_ptr`, which
changes when `.to()` or `.data =` swaps it) and its in-place version counter (bumped by optimizer steps) are those it
was computed from; it dies with the weight. For gradient-free use: the derived tensor carries no autograd history
back to the weight.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch

_CACHE: dict[tuple[int, object], tuple] = {}  # (id(weight), tag) -> (weakref, data_ptr, _version, value)


def derived(weight: torch.Tensor, tag: object, compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """compute(weight), recomputed only when weight changes (see the module docstring)."""
    if weight.is_inference():  # made under torch.inference_mode: no version counter to key a cache on
        with torch.no_grad():
            return compute(weight)
    key = (id(weight), tag)
    hit = _CACHE.get(key)
    state = (weight.data_ptr(), weight._version)
    if hit is not None and hit[0]() is weight and hit[1:3] == state:
        return hit[3]
    with torch.no_grad(), torch.inference_mode(False):  # a normal tensor, valid in and out of inference mode
        value = compute(weight)
    _CACHE[key] = (weakref.ref(weight, lambda _, k=key, cache=_CACHE: cache.pop(k, None)), *state, value)
    return value

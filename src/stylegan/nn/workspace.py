"""Reusable CPU memory for the large temporaries and layer outputs of gradient-free inference.

On the CPU a fresh tensor of many megabytes is mapped from the operating system and every page of it faults in on
first touch; glibc unmaps it again on free, so a generator that allocates its 256² activations on every call pays
for it every time (32 MB: 7.5 ms to first-touch, 0.33 ms to write again; `benchmarks/bench_page_faults.py`). `empty`
hands out memory from a pool instead. A block is handed out again only once no tensor uses its storage any more
(the storage's use count), so a caller that keeps a result (a forward hook, a list of activations) never sees it
overwritten; a block still in use simply means a new one.

The pool keeps at most `MAX_BYTES` (least recently used free blocks go first); `clear()` returns everything.
"""

from __future__ import annotations

import threading

import torch

MAX_BYTES = 1 << 30  # pooled memory kept between calls
MIN_BYTES = 1 << 20  # smaller requests come from torch.empty (the allocator keeps those cheaply itself)


def _use_count(t: torch.Tensor) -> int:
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


def _baseline() -> int | None:
    """The use count of a storage only its own tensor holds, if this torch reports one that grows with every view
    (checked here, so that a torch that counted otherwise switches the pool off rather than reuse live memory)."""
    if not hasattr(torch._C, "_storage_Use_Count"):
        return None
    t = torch.empty(1)
    alone = _use_count(t)
    view = t[:]
    return alone if _use_count(t) == alone + 1 and view.data_ptr() == t.data_ptr() else None


_BASELINE = _baseline()
ENABLED = _BASELINE is not None

_LOCK = threading.Lock()
_BLOCKS: dict[tuple[int, torch.dtype], list[torch.Tensor]] = {}  # (elements, dtype) -> 1-D blocks
_LAST_USE: dict[int, int] = {}  # id(block) -> tick of its last hand-out
_TICK = [0]


def _users(block: torch.Tensor) -> int:
    """Tensors sharing block's storage besides block itself."""
    return _use_count(block) - _BASELINE


def empty(
    shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str = "cpu", *, channels_last: bool = False
) -> torch.Tensor:
    """An uninitialised tensor of `shape` (4-D when channels_last); on the CPU from pooled memory that nothing else
    uses (other devices have caching allocators of their own)."""
    numel = 1
    for size in shape:
        numel *= size
    nbytes = numel * dtype.itemsize
    if not ENABLED or torch.device(device).type != "cpu" or nbytes < MIN_BYTES or nbytes > MAX_BYTES:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        return torch.empty(shape, dtype=dtype, device=device, memory_format=fmt)
    block = _take((numel, dtype), nbytes)
    if channels_last:
        n, c, h, w = shape
        return block.view(n, h, w, c).permute(0, 3, 1, 2)
    return block.view(shape)


def _take(key: tuple[int, torch.dtype], nbytes: int) -> torch.Tensor:
    with _LOCK:
        _TICK[0] += 1
        blocks = _BLOCKS.setdefault(key, [])
        for block in blocks:
            if _users(block) == 0:
                _LAST_USE[id(block)] = _TICK[0]
                return block
        _make_room(nbytes)
        with torch.inference_mode(False):  # a normal tensor: usable in and out of inference mode
            block = torch.empty(key[0], dtype=key[1])
        if pooled_bytes() + nbytes <= MAX_BYTES:
            blocks.append(block)
            _LAST_USE[id(block)] = _TICK[0]
        return block


def _make_room(nbytes: int) -> None:
    """Drops least recently used free blocks until nbytes more fit under MAX_BYTES."""
    free = sorted(
        ((_LAST_USE[id(b)], key, b) for key, blocks in _BLOCKS.items() for b in blocks if _users(b) == 0),
        key=lambda entry: entry[0],
    )
    while free and pooled_bytes() + nbytes > MAX_BYTES:
        _, key, block = free.pop(0)
        _BLOCKS[key] = [b for b in _BLOCKS[key] if b is not block]
        _LAST_USE.pop(id(block), None)


def pooled_bytes() -> int:
    """Bytes held by the pool, in use or free."""
    return sum(b.numel() * b.element_size() for blocks in _BLOCKS.values() for b in blocks)


def clear() -> None:
    """Forgets every pooled block (memory still used by live tensors is freed with them)."""
    with _LOCK:
        _BLOCKS.clear()
        _LAST_USE.clear()

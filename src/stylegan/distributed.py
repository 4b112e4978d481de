"""Process groups for training and metrics (torchrun env:// or our own spawn); explicit gradient all-reduce.

Below both `stylegan.training` and `stylegan.metrics` (it imports neither), so imports flow one way:
training may import metrics, metrics never imports training.

Like NVIDIA's StyleGAN3 loop we do not wrap the networks in DDP: parameters are broadcast from rank 0, and
after each phase the gradients are flattened and all-reduced. That plays well with double backward
(R1, path length) and with phases that touch only part of a network.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when torchrun (or torch.distributed.launch) set RANK/WORLD_SIZE for this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_from_env(device_type: str) -> ProcessInfo:
    """Joins the process group that torchrun describes in the environment (NCCL on CUDA, gloo otherwise)."""
    info = ProcessInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=info.rank, world_size=info.world_size)
    return info


def init_spawned(rank: int, world_size: int, init_file: str, device_type: str) -> ProcessInfo:
    """Joins a group of `world_size` processes started by torch.multiprocessing.spawn, via a shared file."""
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(
        backend, init_method=f"file://{os.path.abspath(init_file)}", rank=rank, world_size=world_size
    )
    return ProcessInfo(rank, world_size, rank)


def spawn(fn: Callable, args: tuple, world_size: int, device_type: str) -> None:
    """Runs `fn(info, *args)` in `world_size` new processes joined in one group (NCCL on CUDA, gloo otherwise).

    An exception raised by `fn` in a process is raised again here (a picklable one; else torch's
    ProcessRaisedException), so callers report it as they would in one process.
    """
    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    log = logging.getLogger("torch.multiprocessing.spawn")  # "terminating process ..." after a rank failed
    level = log.level
    with tempfile.TemporaryDirectory() as tmp:
        try:
            log.setLevel(logging.ERROR)
            ctx = mp.spawn(_spawned, args=(fn, args, world_size, tmp, device_type), nprocs=world_size, join=False)
            with _signals_left_to_children([proc.pid for proc in ctx.processes]):
                while not ctx.join():
                    pass
        except ProcessException:
            errors = sorted(Path(tmp).glob("error-*.pkl"))
            if not errors:
                raise
            raise pickle.loads(errors[0].read_bytes()) from None  # our own file, written by our child
        finally:
            log.setLevel(level)


@contextlib.contextmanager
def _signals_left_to_children(pids: list[int]):
    """While children run: a terminal's SIGINT reaches them directly (the parent ignores it), and a SIGTERM
    sent to the parent is passed on, so each child can stop at a step boundary and save its work."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum, _frame):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    saved = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    saved[signal.SIGTERM] = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _spawned(rank: int, fn: Callable, args: tuple, world_size: int, tmp: str, device_type: str) -> None:
    info = init_spawned(rank, world_size, os.path.join(tmp, "init"), device_type)
    try:
        fn(info, *args)
    except Exception as err:
        try:
            Path(tmp, f"error-{rank:05d}.pkl").write_bytes(pickle.dumps(err))
        except Exception:  # unpicklable: the parent gets torch's traceback text instead
            pass
        raise
    finally:
        shutdown()


def shutdown() -> None:
    """Leaves the process group, if any, and frees it now.

    Without the garbage collection, a gloo rank that had finished its work sometimes died at interpreter exit, in a
    thread with no Python frame, with SIGABRT ("terminate called without an active exception"): 4 of 150
    two-process `stylegan metrics` runs on 2 CPU cores (likely: objects in reference cycles that still held the group's
    tensors or work, freed only at teardown). Collected here, while the interpreter is whole: none of 300 runs died.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()


def barrier(info: ProcessInfo) -> None:
    """Waits for every rank (no-op for one process)."""
    if info.world_size > 1:
        dist.barrier()


def broadcast_module(module: nn.Module, info: ProcessInfo) -> None:
    """Copies rank 0's parameters and buffers to every rank."""
    if info.world_size == 1:
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def all_reduce_sum_grads(params: list[nn.Parameter], info: ProcessInfo) -> torch.Tensor | None:
    """Sums the gradients of `params` over ranks in one flat all-reduce; missing grads count as zero.

    The loss gain already divides by the number of chunks in the global batch, so the sum is the batch mean.
    Returns the flat gradient (for a finiteness check), or None when there are no parameters.
    """
    if not params:
        return None
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.flatten() for p in params])
    if info.world_size > 1:
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
    return flat


def all_gather_rows(
    x: torch.Tensor | None, info: ProcessInfo, device: torch.device | None = None
) -> torch.Tensor | None:
    """Every rank's rows x [n_r, ...] concatenated in rank order (on x's device, float32), the same on all ranks.

    Ranks may hold different numbers of rows, none included (x None or empty: its shape is taken from the
    others); rows are padded to the largest count for the all-gather and trimmed after. With several ranks
    the exchange runs on `device` (NCCL needs CUDA). Returns None only when no rank has a row.
    """
    if info.world_size == 1:
        return x
    home = x.device if x is not None else torch.device("cpu")
    x = x if x is not None and len(x) else None
    meta = torch.full([_MAX_DIMS + 1], -1, dtype=torch.int64)  # [rows, *trailing shape, -1...]
    if x is not None:
        if x.ndim > _MAX_DIMS + 1:
            raise ValueError(f"all_gather_rows: at most {_MAX_DIMS + 1} dims, got shape {tuple(x.shape)}")
        meta[: x.ndim] = torch.tensor(x.shape)
    metas = _all_gather(meta.to(device), info).cpu()  # [world, _MAX_DIMS + 1]
    full = [m for m in metas if m[0] > 0]
    if not full:
        return None
    trailing = [int(d) for d in full[0][1:] if d >= 0]
    rows = int(metas[:, 0].clamp(min=0).max())
    padded = torch.zeros([rows, *trailing], dtype=torch.float32, device=device)
    if x is not None:
        padded[: len(x)] = x.to(device, torch.float32)
    parts = _all_gather(padded, info)  # [world, rows, *trailing]
    return torch.cat([p[: max(int(m[0]), 0)] for p, m in zip(parts, metas, strict=True)]).to(home)


_MAX_DIMS = 4


def _all_gather(x: torch.Tensor, info: ProcessInfo) -> torch.Tensor:
    out = [torch.empty_like(x) for _ in range(info.world_size)]
    dist.all_gather(out, x.contiguous())
    return torch.stack(out)


def all_reduce_sum(values: torch.Tensor, info: ProcessInfo, device: torch.device | None = None) -> torch.Tensor:
    """Sum of a tensor over ranks (a copy). With several ranks the sum runs on `device` (NCCL needs CUDA)."""
    if info.world_size == 1:
        return values.clone()
    out = values.to(device if device is not None else values.device, copy=True)
    dist.all_reduce(out)
    return out.to(values.device)

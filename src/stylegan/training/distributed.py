"""Moved to `stylegan.distributed` (below both training and metrics); this name stays for old imports."""

from stylegan.distributed import (  # noqa: F401
    ProcessInfo,
    all_gather_rows,
    all_reduce_sum,
    all_reduce_sum_grads,
    barrier,
    broadcast_module,
    init_from_env,
    init_spawned,
    launched_by_torchrun,
    shutdown,
    spawn,
)

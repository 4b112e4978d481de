"""Where and in what precision networks run: one policy for every command, network and benchmark.

- `select_device("auto")`: CUDA, then Apple MPS, then the CPU; never fails on a CPU machine. With `local_rank=`
  (multi-process training) 'cuda' means that process's GPU. The one device picker of the package.
- `block_dtype(use_fp16, device)`: the dtype a block marked fp16 actually computes in. Half precision is used only
  where it is fast and supported (CUDA); elsewhere such a block stays fp32 (CPU fp16 convolutions are ~25x slower).
- `activation_format(device)`: channels_last on the CPU, where oneDNN convolutions are 1.5-3x faster in NHWC.
- `describe()`: what was detected, for `stylegan env`.
"""

from __future__ import annotations

import platform

import torch


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(name: str = "auto", *, local_rank: int | None = None) -> torch.device:
    """Returns the torch device for 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.

    Args:
        name: 'auto' picks CUDA, then Apple MPS, then the CPU.
        local_rank: in a multi-process run, the process's GPU: 'cuda' (or 'auto' on a CUDA machine) becomes
            cuda:<local_rank>. An explicit 'cuda:N' is kept as given.

    Raises ValueError with a hint when an explicit device is not available here.
    """
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available here; use --device auto or cpu")
    if name == "mps" and not _mps_available():
        raise ValueError("--device mps: Apple MPS is not available here; use --device auto or cpu")
    if name == "cuda" and local_rank is not None:
        return torch.device("cuda", local_rank)
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None


def fp16_supported(device: torch.device | str) -> bool:
    """True where fp16 blocks are both supported and faster than fp32 (CUDA only)."""
    return torch.device(device).type == "cuda"


def block_dtype(use_fp16: bool, device: torch.device | str, *, force_fp32: bool = False) -> torch.dtype:
    """The compute dtype of a network block that asks for fp16 (`use_fp16`) on `device`."""
    return torch.float16 if use_fp16 and not force_fp32 and fp16_supported(device) else torch.float32


def activation_format(device: torch.device | str) -> torch.memory_format:
    """Memory layout for 4-D activations: NHWC on the CPU (oneDNN), NCHW elsewhere."""
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format


def describe() -> dict[str, str]:
    """What this process detected: versions, devices, the precision and layout policy, the CPU math libraries."""
    auto = select_device("auto")
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device (auto)": str(auto),
        "cuda": _cuda_text(),
        "mps": "available" if _mps_available() else "not available",
        "fp16 blocks": "fp16" if fp16_supported(auto) else f"fp32 on {auto.type} (fp16 only on CUDA)",
        "activation layout": "channels_last" if activation_format(auto) == torch.channels_last else "contiguous",
        "cpu threads": str(torch.get_num_threads()),
        "oneDNN (mkldnn)": "yes" if torch.backends.mkldnn.is_available() else "no",
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
    }


def _cuda_text() -> str:
    """'<n> x <name of GPU 0> (CUDA <version torch was built with>)', or why there is none."""
    if not torch.cuda.is_available():
        built = torch.version.cuda
        return f"not available (torch built with CUDA {built})" if built else "not available (CPU build of torch)"
    return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"

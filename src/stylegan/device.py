"""Device choice shared by every command: `auto` = CUDA, then Apple MPS, then CPU; never fails on a CPU machine."""

from __future__ import annotations

import torch


def select_device(name: str = "auto") -> torch.device:
    """Returns the torch device for 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.

    Raises ValueError with a hint when an explicit device is not available here.
    """
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available here; use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: Apple MPS is not available here; use --device auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None

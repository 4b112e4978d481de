"""`stylegan env`: what this installation will run on."""

from __future__ import annotations

import platform

import click


def environment_report() -> dict[str, str]:
    """Versions, devices and the op implementation, as name -> text."""
    import numpy
    import torch

    import stylegan
    from stylegan.device import select_device
    from stylegan.io import default_model_path

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return {
        "stylegan": stylegan.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": f"{torch.version.cuda} ({torch.cuda.get_device_name(0)})" if cuda else "not available",
        "mps": "available" if mps else "not available",
        "device (auto)": str(select_device("auto")),
        "cpu threads": str(torch.get_num_threads()),
        "ops": "pure PyTorch (upfirdn2d, bias_act, modulated conv): no compiled extensions",
        "fp16 layers": "on CUDA only (fp32 elsewhere)",
        "default model": str(default_model_path()) if default_model_path().exists() else "not installed",
    }


@click.command()
def env():
    """Print versions, devices and the active op implementation.

    \b
    Example:
      stylegan env
    """
    for key, value in environment_report().items():
        click.echo(f"{key:>14}: {value}")

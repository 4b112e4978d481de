"""`stylegan env`: what this installation detected and will run on."""

from __future__ import annotations

import click


def environment_report() -> dict[str, str]:
    """The package's version, the device and precision policy as detected (stylegan.device.describe), and
    the other things a bug report needs, as name -> text."""
    import platform

    import numpy

    import stylegan
    from stylegan.device import describe
    from stylegan.io import default_model_path

    model = default_model_path()
    return {
        "stylegan": stylegan.__version__,
        **describe(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "default model": str(model) if model.exists() else "not installed",
    }


@click.command()
def env():
    """Print what was detected: versions, devices, fp16 and memory-layout policy, CPU threads and oneDNN.

    \b
    Example:
      stylegan env
    """
    report = environment_report()
    width = max(map(len, report))
    for key, value in report.items():
        click.echo(f"{key:>{width}}: {value}")

"""Shared pieces of the thin CLI layer: options, model loading and turning user mistakes into one-line errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click
import torch

network_option = click.option(
    "--network",
    "network",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Model file: .safetensors (native) or NVIDIA .pkl. Default: the model shipped with the package.",
)
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.",
)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Reports ValueError / OSError (bad input, bad files) as a one-line click error instead of a traceback."""
    try:
        yield
    except click.ClickException:
        raise
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err).splitlines()[0] if str(err) else type(err).__name__) from None


def get_device(name: str) -> torch.device:
    from stylegan.device import select_device

    with user_errors():
        return select_device(name)


def load_G(network: Path | None, device: torch.device, which: str | None = None):
    """The generator of a model file (or the packaged default), on device."""
    from stylegan.io import default_model_path, load_generator

    if network is None and not default_model_path().exists():
        raise click.ClickException("no --network given and no default model is installed; pass --network PATH")
    with user_errors():
        return load_generator(network, device=device, which=which)


def parse_seeds(text: str, what: str = "seeds") -> list[int]:
    from stylegan.editing.generate import parse_range

    with user_errors():
        return parse_range(text, what=what)


def check_psi(psi: float) -> float:
    if not -1.0 <= psi <= 2.0:
        raise click.ClickException(f"--trunc {psi} is out of range: use a truncation psi between -1 and 2 (1 = off)")
    return psi


trunc_option = click.option(
    "--trunc",
    "truncation_psi",
    type=float,
    default=None,
    help="Truncation psi in [-1, 2]; 1 = off. Default: the model's own (0.7 for StyleGAN1 models, else 1).",
)
cutoff_option = click.option(
    "--trunc-cutoff",
    "truncation_cutoff",
    type=click.IntRange(min=0),
    default=None,
    help="Truncate only the first N ws. Default: the model's own (8 for StyleGAN1 models, else all).",
)
class_option = click.option("--class", "class_idx", type=int, default=None, help="Class index for conditional models.")
noise_option = click.option(
    "--noise-mode",
    type=click.Choice(["const", "random", "none"]),
    default="const",
    show_default=True,
    help="Per-layer noise: stored constants, fresh draws, or none.",
)


def load_G_and_truncation(
    network: Path | None, device: str, truncation_psi: float | None, truncation_cutoff: int | None
):
    """(G, device, psi, cutoff): the model on its device, with unset truncation options taken from the model."""
    from stylegan.editing.figures import default_truncation

    if truncation_psi is not None:
        check_psi(truncation_psi)
    dev = get_device(device)
    G = load_G(network, dev)
    psi, cutoff = default_truncation(G)
    psi = truncation_psi if truncation_psi is not None else psi
    cutoff = truncation_cutoff if truncation_cutoff is not None else cutoff
    return G, dev, psi, cutoff

"""`stylegan convert`: any supported model file -> the native safetensors format."""

from __future__ import annotations

from pathlib import Path

import click

from stylegan.cli.common import user_errors


def convert_model(src: Path, dest: Path, which: str = "G_ema") -> list[str]:
    """Reads src safely and writes the chosen networks (G, D, G_ema or all) to dest. Returns the names written."""
    from stylegan.io import load_networks, save_networks

    nets = load_networks(src)
    names = [n for n in ("G", "D", "G_ema") if n in nets] if which == "all" else [which]
    missing = [n for n in names if n not in nets]
    if missing:
        raise ValueError(
            f"{src.name} holds no {', '.join(missing)} (it has {', '.join(nets)}); choose --which"
        )
    save_networks(dest, {n: nets[n] for n in names}, extra={"converted_from": src.name})
    return names


@click.command()
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--which",
    type=click.Choice(["G_ema", "G", "D", "all"]),
    default="G_ema",
    show_default=True,
    help="Which network(s) to keep.",
)
def convert(src, dest, which):
    """Convert an NVIDIA .pkl (stylegan2-ada-pytorch, TensorFlow StyleGAN/StyleGAN2) to .safetensors.

    The pickle is read by a restricted reader: code embedded in it is never executed, and anything that is not
    part of a network pickle is refused.

    \b
    Example:
      stylegan convert network-snapshot-025000.pkl ffhq.safetensors --which all
    """
    if dest.suffix != ".safetensors":
        raise click.ClickException(f"{dest}: the output must end in .safetensors")
    with user_errors():
        names = convert_model(src, dest, which)
    click.echo(f"wrote {dest} ({', '.join(names)})")

"""`stylegan convert`: any supported model file -> the native safetensors format (stylegan.io.convert_model)."""

from __future__ import annotations

from pathlib import Path

import click

from stylegan.cli.common import user_errors


@click.command()
@click.argument("src", type=str)  # a file, a zoo name or an http(s) URL (a Path would eat the '//')
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--which",
    type=click.Choice(["G_ema", "G", "D", "all"]),
    default="G_ema",
    show_default=True,
    help="Which network(s) to keep.",
)
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
def convert(src, dest, which, force):
    """Convert an NVIDIA .pkl (stylegan2-ada-pytorch, stylegan3, TensorFlow StyleGAN/StyleGAN2/ADA) to .safetensors.

    SRC is a file, a model name (`stylegan models`) or an http(s) URL.

    The pickle is read by a restricted reader: code embedded in it is never executed, and anything that is not
    part of a network pickle is refused. DEST is written atomically and never overwritten without --force.

    \b
    Examples:
      stylegan convert network-snapshot-025000.pkl ffhq.safetensors --which all
      stylegan convert stylegan3-r-ffhqu-256 sg3r-ffhqu-256.safetensors
    """
    from stylegan.io import OutputExistsError, convert_model

    with user_errors():
        try:
            names = convert_model(src, dest, which, force=force)
        except OutputExistsError:
            raise click.ClickException(f"{dest} exists; pass --force to overwrite it") from None
    click.echo(f"wrote {dest} ({', '.join(names)})")

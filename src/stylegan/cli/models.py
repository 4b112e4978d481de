"""`stylegan models`: the model zoo (names for --network), the cache, and fetching ahead of offline use."""

from __future__ import annotations

import click

from stylegan.cli.common import user_errors


def _table(cache_dir) -> list[str]:
    from stylegan.io.cache import cache_state
    from stylegan.io.zoo import MODELS

    rows = [("NAME", "FAMILY", "RESOLUTION", "CACHED")]
    rows += [(e.name, e.family, e.resolution, cache_state(e.name, cache_dir) or "-") for e in MODELS.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths + [0], strict=True)).rstrip() for row in rows
    ]


@click.command()
@click.option("--fetch", "fetch", multiple=True, metavar="NAME|URL", help="Download and convert now (repeatable).")
@click.option("--urls", is_flag=True, help="Show each name's URL and where a file downloaded by hand goes.")
def models(fetch, urls):
    """List NVIDIA's published models that --network accepts by name, and fetch them ahead of time.

    A name (or any http(s) URL) given to --network is downloaded once into the cache with a progress bar,
    resumed if interrupted, checked by sha256 and converted to safetensors; later runs read the converted file.
    The cache is $STYLEGAN_CACHE/models (default ~/.cache/stylegan/models). STYLEGAN_OFFLINE=1 forbids
    downloads; a file downloaded by hand goes where `--urls` says.

    \b
    Examples:
      stylegan models
      stylegan models --fetch stylegan3-r-ffhqu-256
      stylegan generate --network stylegan3-r-ffhqu-256 --seeds 0-3
    """
    from stylegan.io.cache import fetch_model, manual_path, model_cache_dir
    from stylegan.io.zoo import MODELS, mirrored, zoo_mirror

    root = model_cache_dir()
    for spec in fetch:
        with user_errors():
            click.echo(f"{spec}: {fetch_model(spec, progress=True)}")
    if fetch:
        return
    if urls:
        for entry in MODELS.values():
            click.echo(f"{entry.name}  {mirrored(entry, zoo_mirror())}  -> {manual_path(entry.name, root)}")
        return
    click.echo("\n".join(_table(root)))
    click.echo(f"cache: {root}")

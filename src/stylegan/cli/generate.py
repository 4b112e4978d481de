"""`stylegan generate` and `stylegan mix`."""

from __future__ import annotations

from pathlib import Path

import click
from PIL import Image

from stylegan.cli.common import (
    class_option,
    cutoff_option,
    device_option,
    load_G_and_truncation,
    network_option,
    noise_option,
    parse_seeds,
    trunc_option,
    user_errors,
)


@click.command()
@network_option
@click.option("--seeds", default="0-7", show_default=True, help="Seeds, e.g. 0-7,12.")
@trunc_option
@cutoff_option
@class_option
@noise_option
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("out"), show_default=True)
@click.option("--grid", is_flag=True, help="Also write all images as one grid, grid.png.")
@device_option
def generate(network, seeds, truncation_psi, truncation_cutoff, class_idx, noise_mode, outdir, grid, device):
    """Generate one PNG per seed (seed0000.png, ...).

    \b
    Example:
      stylegan generate --network ffhq.pkl --seeds 0-7,12 --trunc 0.7 --outdir out
    """
    from stylegan.editing.generate import generate_images, image_from_array, make_grid

    seed_list = parse_seeds(seeds)
    G, dev, truncation_psi, truncation_cutoff = load_G_and_truncation(
        network, device, truncation_psi, truncation_cutoff
    )
    with user_errors():
        images = generate_images(
            G,
            seed_list,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            class_idx=class_idx,
            noise_mode=noise_mode,
            device=dev,
        )
        outdir.mkdir(parents=True, exist_ok=True)
        for seed, img in zip(seed_list, images, strict=True):
            image_from_array(img).save(outdir / f"seed{seed:04d}.png")
        if grid:
            image_from_array(make_grid(images, pad=2)).save(outdir / "grid.png")
    click.echo(f"wrote {len(images)} images to {outdir}")


@click.command()
@network_option
@click.option(
    "--rows",
    "row_seeds",
    default="85,100,75,458,1500",
    show_default=True,
    help="Source A seeds, one per row.",
)
@click.option(
    "--cols",
    "col_seeds",
    default="55,821,1789,293",
    show_default=True,
    help="Source B seeds, one per column.",
)
@click.option(
    "--styles",
    default=None,
    help="Layers that take B's styles, e.g. 0-6. Default: the coarse half (0 .. num_ws/2-1).",
)
@trunc_option
@cutoff_option
@class_option
@noise_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("out/mixing.png"),
    show_default=True,
)
@click.option(
    "--zoom",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Enlarge the figure by this factor (nearest neighbour), for small models.",
)
@device_option
def mix(
    network,
    row_seeds,
    col_seeds,
    styles,
    truncation_psi,
    truncation_cutoff,
    class_idx,
    noise_mode,
    out,
    zoom,
    device,
):
    """The paper's style-mixing figure: rows are sources A, columns sources B; each cell is A with B's styles
    in the layers --styles (coarse 0-3 at 1024²: pose/shape; middle; fine: colours).

    \b
    Example:
      stylegan mix --network ffhq.pkl --rows 85,100,75 --cols 55,821,1789 --styles 0-6 --out fig.png
    """
    from stylegan.editing.generate import image_from_array, style_mixing_figure

    rows, cols = parse_seeds(row_seeds, "--rows"), parse_seeds(col_seeds, "--cols")
    G, dev, truncation_psi, truncation_cutoff = load_G_and_truncation(
        network, device, truncation_psi, truncation_cutoff
    )
    style_list = parse_seeds(styles, "--styles") if styles else list(range(max(G.num_ws // 2, 1)))
    with user_errors():
        fig = style_mixing_figure(
            G,
            rows,
            cols,
            style_list,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            class_idx=class_idx,
            noise_mode=noise_mode,
            device=dev,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        image = image_from_array(fig)
        if zoom > 1:
            image = image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)
        image.save(out)
    click.echo(f"wrote {out} ({len(rows)} rows x {len(cols)} columns, styles {style_list})")

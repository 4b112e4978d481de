"""`stylegan generate` and `stylegan mix`: thin wrappers over stylegan.editing."""

from __future__ import annotations

from pathlib import Path

import click

from stylegan.cli.common import (
    class_option,
    cutoff_option,
    device_option,
    image_metadata,
    load_G_and_truncation,
    load_signing,
    mark_option,
    network_option,
    noise_option,
    out_option,
    parse_seeds,
    refuse_existing,
    resolve_zoom,
    sign_options,
    sign_written,
    signed_note,
    trunc_option,
    user_errors,
    zoom_option,
)


@click.command()
@network_option
@click.option("--seeds", default="0-7", show_default=True, help="Seeds, e.g. 0-7,12.")
@trunc_option
@cutoff_option
@class_option
@noise_option
@click.option(
    "--outdir",
    type=click.Path(path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for seedNNNN.png (and grid.png); files of those names already there are replaced.",
)
@click.option("--grid", is_flag=True, help="Also write all images as one grid, grid.png.")
@click.option(
    "--translate",
    default="0,0",
    show_default=True,
    help="StyleGAN3: move the content by TX,TY (canvas units, 1/resolution = one pixel).",
)
@click.option("--rotate", type=float, default=0.0, show_default=True, help="StyleGAN3: turn the content (degrees).")
@zoom_option("grid.png (the seed images stay at the model's size)")
@mark_option
@sign_options
@device_option
def generate(
    network,
    seeds,
    truncation_psi,
    truncation_cutoff,
    class_idx,
    noise_mode,
    outdir,
    grid,
    translate,
    rotate,
    zoom,
    no_mark,
    sign_cert,
    sign_key,
    device,
):
    """Generate one PNG per seed (seed0000.png, ...) into --outdir.

    Like NVIDIA's generate.py, an existing seedNNNN.png for the same seed is replaced; other files are kept.
    Each image carries an invisible provenance mark (model hash prefix and seed; `stylegan detect` reads it) and PNG
    metadata (model, seed, settings, AI-generated); --no-mark leaves out the mark, not the metadata. With
    --sign-cert/--sign-key each PNG also gets a signed C2PA manifest (content credentials).

    \b
    Examples:
      stylegan generate --network ffhq.pkl --seeds 0-7,12 --trunc 0.7 --outdir out
      stylegan generate --network stylegan3-r.pkl --seeds 0-3 --translate 0.1,0 --rotate 15
    """
    from stylegan.editing.figures import PAD
    from stylegan.editing.generate import generate_images
    from stylegan.images import save_png, tile
    from stylegan.images import zoom as enlarge

    seed_list = parse_seeds(seeds)
    credentials = load_signing(sign_cert, sign_key)
    shift = _parse_pair(translate, "--translate")
    if outdir.exists() and not outdir.is_dir():
        raise click.ClickException(f"--outdir {outdir} is a file; give a folder name")
    G, dev, truncation_psi, truncation_cutoff = load_G_and_truncation(
        network, device, truncation_psi, truncation_cutoff
    )
    with user_errors():
        if shift != (0.0, 0.0) or rotate:
            from stylegan.networks.stylegan3 import set_transform

            set_transform(G, shift, rotate)
        images = generate_images(
            G,
            seed_list,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            class_idx=class_idx,
            noise_mode=noise_mode,
            device=dev,
        )
        meta = image_metadata(network, truncation_psi, truncation_cutoff, noise_mode, class_idx)
        for seed, img in zip(seed_list, images, strict=True):
            path = save_png(img, outdir / f"seed{seed:04d}.png", mark=not no_mark, metadata={**meta, "seed": seed})
            sign_written(path, credentials)
        if grid:
            sign_written(
                save_png(
                    enlarge(tile(images, pad=PAD), resolve_zoom(zoom, G)),
                    outdir / "grid.png",
                    mark=not no_mark,
                    metadata=meta,
                ),
                credentials,
            )
    click.echo(f"wrote {len(images)} images to {outdir}" + (" and grid.png" if grid else "") + signed_note(credentials))


def _parse_pair(text: str, flag: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise click.ClickException(f"{flag} takes two numbers, e.g. 0.1,-0.05; got {text!r}") from None
    return x, y


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
    help="Layers (ws indices) that take B's styles, e.g. 0-6. Default: the model's coarse layers "
    "(printed; computed from its resolution).",
)
@trunc_option
@cutoff_option
@class_option
@noise_option
@out_option("out/mixing.png")
@zoom_option("the figure")
@mark_option
@sign_options
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
    force,
    zoom,
    no_mark,
    sign_cert,
    sign_key,
    device,
):
    """The paper's style-mixing figure: rows are sources A, columns sources B; each cell is A with B's styles
    in the layers --styles (low ws indices: coarse styles such as pose and shape; high ones: colours).

    \b
    Example:
      stylegan mix --network ffhq.pkl --rows 85,100,75 --cols 55,821,1789 --styles 0-6 --out fig.png
    """
    from stylegan.editing.figures import layer_groups, style_mixing_figure
    from stylegan.editing.generate import format_range
    from stylegan.images import save_png
    from stylegan.images import zoom as enlarge

    rows, cols = parse_seeds(row_seeds, "--rows"), parse_seeds(col_seeds, "--cols")
    style_list = parse_seeds(styles, "--styles") if styles else None
    refuse_existing(out, force)
    credentials = load_signing(sign_cert, sign_key)
    G, dev, truncation_psi, truncation_cutoff = load_G_and_truncation(
        network, device, truncation_psi, truncation_cutoff
    )
    with user_errors():
        style_list = style_list if style_list is not None else layer_groups(G)["coarse"]
        fig = style_mixing_figure(
            G,
            cols,
            [(seed, style_list) for seed in rows],
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            class_idx=class_idx,
            noise_mode=noise_mode,
            device=dev,
        )
        meta = image_metadata(network, truncation_psi, truncation_cutoff, noise_mode, class_idx)
        fig = enlarge(fig, resolve_zoom(zoom, G))
        sign_written(save_png(fig, out, mark=not no_mark, metadata=meta), credentials)
    click.echo(
        f"wrote {out} ({len(rows)} rows x {len(cols)} columns, B's styles in ws {format_range(style_list)})"
        + signed_note(credentials)
    )

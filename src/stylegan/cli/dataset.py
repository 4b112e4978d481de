"""`stylegan dataset`: make a training dataset (zip of square PNGs) from a folder, a zip or Fashion-MNIST."""

from __future__ import annotations

import click

from stylegan.data.images import RESIZE_FILTERS
from stylegan.data.tool import DATASET_TRANSFORMS


@click.command()
@click.option(
    "--source",
    required=True,
    metavar="DIR|ZIP",
    help="Folder (recursive) or zip of png/jpg/webp/pgm/ppm/bmp images, with optional dataset.json "
    "labels; or 'fashion-mnist' / 'fashion-mnist:test' (Debian package dataset-fashion-mnist, "
    "padded 28->32) or a folder holding its IDX files.",
)
@click.option("--dest", required=True, metavar="ZIP|DIR", help="Output .zip (or an empty folder).")
@click.option("--resolution", required=True, type=int, help="Output side in pixels, a power of two.")
@click.option(
    "--transform",
    type=click.Choice(DATASET_TRANSFORMS),
    default="center-crop",
    show_default=True,
    help="How non-square images become square: central square, central 4:3 band padded "
    "top and bottom, the whole image padded with black, or align-face: the largest face, aligned as FFHQ was "
    "(needs the faces extra; images without a face are skipped and listed).",
)
@click.option(
    "--channels",
    type=click.Choice(["1", "3"]),
    default=None,
    help="Output channels; default: what most images have. Alpha is composited onto black.",
)
@click.option("--max-images", type=click.IntRange(min=1), default=None, help="Stop after this many images.")
@click.option(
    "--resize-filter",
    type=click.Choice(list(RESIZE_FILTERS)),
    default="lanczos",
    show_default=True,
    help="Resampling filter (PIL). Lanczos is sharp; 'box' is what NVIDIA used for the FID numbers of "
    "its papers when downscaling by an integer factor (FID depends on this choice).",
)
@click.option("--force", is_flag=True, help="Replace an existing --dest (a zip, or a folder holding only a dataset).")
def dataset(source, dest, resolution, transform, channels, max_images, resize_filter, force) -> None:
    """Make a dataset of RESOLUTION² PNGs named 00000/img00000000.png (NVIDIA's layout), with labels.

    Unreadable, truncated, empty and non-image files are skipped and listed. The output is written to a
    temporary name and renamed when complete, so an error or Ctrl-C leaves no partial dataset; an existing
    --dest is refused unless --force is given.

    \b
    Examples:
      stylegan dataset --source ~/photos --dest faces64.zip --resolution 64 --transform center-crop
      stylegan dataset --source fashion-mnist --dest fmnist32.zip --resolution 32
      stylegan dataset --source att-faces --dest faces64.zip --resolution 64 --transform align-face
    """
    from stylegan.data import DatasetError, DestinationExistsError, make_dataset

    try:
        report = make_dataset(
            source,
            dest,
            resolution=resolution,
            transform=transform,
            channels=int(channels) if channels else None,
            max_images=max_images,
            resize_filter=resize_filter,
            overwrite=force,
        )
    except DestinationExistsError:
        raise click.ClickException(f"{dest} already exists; pass --force to replace it") from None
    except DatasetError as err:
        raise click.ClickException(str(err)) from None
    click.echo(report.summary())

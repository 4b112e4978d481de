"""`stylegan align PHOTOS... --dest DIR`: detect faces and align them as FFHQ was aligned, one PNG per face."""

from __future__ import annotations

from pathlib import Path

import click

from stylegan.faces.detect import DETECTORS


@click.command()
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--resolution", default=256, show_default=True, type=int, help="Output side, a power of two.")
@click.option("--largest", is_flag=True, help="Only the largest face of each photo (default: every face).")
@click.option(
    "--detector",
    type=click.Choice(DETECTORS),
    default=DETECTORS[0],
    show_default=True,
    help="dlib's HOG detector, its CNN (slower, finds turned faces), or HOG then the CNN when HOG finds none.",
)
@click.option("--force", is_flag=True, help="Replace existing output files.")
def align(photos, dest, resolution, largest, detector, force) -> None:
    """Align the faces in PHOTOS (files, or folders searched recursively) into DEST as RESOLUTION² PNGs.

    A photo's largest face is written as DEST/NAME.png, others as NAME_1.png, NAME_2.png, ... (folders keep
    their layout under DEST). Unreadable photos, photos without a face and existing outputs (without --force)
    get one line each and the rest go on; the exit status is 0 when every photo gave a face. Needs the faces
    extra: pip install "stylegan[faces]".

    \b
    Examples:
      stylegan align me.jpg group.jpg --dest aligned --resolution 256
      stylegan align att-faces --dest aligned64 --resolution 64 --largest
    """
    from stylegan.faces import FaceError, FacesUnavailableError, require_faces
    from stylegan.faces.align import check_resolution
    from stylegan.faces.files import OutputExistsError, align_file

    try:
        require_faces()
        check_resolution(resolution)
    except (FacesUnavailableError, FaceError) as err:
        raise click.ClickException(str(err)) from None
    jobs, missing = _jobs(photos, dest)
    written, failed = 0, missing
    for photo, stem in jobs:
        try:
            paths = align_file(photo, stem, resolution=resolution, largest=largest, overwrite=force, detector=detector)
        except OutputExistsError as err:
            click.echo(f"{photo}: skipped: {err.path} already exists; pass --force to replace it")
        except (FaceError, OSError) as err:
            click.echo(f"{photo}: skipped: {str(err).removeprefix(f'{photo}: ')}")
        else:
            written += len(paths)
            click.echo(f"{photo}: {len(paths)} face(s) -> {', '.join(str(p) for p in paths)}")
            continue
        failed += 1
    click.echo(f"aligned {written} face(s) from {len(jobs) + missing} photo(s); {failed} photo(s) skipped")
    if failed:
        raise SystemExit(1)


def _jobs(photos: tuple[Path, ...], dest: Path) -> tuple[list[tuple[Path, Path]], int]:
    """(photo, output stem) for every photo file given or found in a given folder; the count of missing paths."""
    from stylegan.data.images import is_image_name

    jobs, missing = [], 0
    for path in photos:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p.name))
            found = [p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts)]
            jobs += [(p, dest / p.relative_to(path).with_suffix("")) for p in found]
        elif path.exists():
            jobs.append((path, dest / path.stem))
        else:
            click.echo(f"{path}: skipped: no such file or folder")
            missing += 1
    _check_unique(jobs)
    return jobs, missing


def _check_unique(jobs: list[tuple[Path, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for photo, stem in jobs:
        if stem in seen:
            raise click.ClickException(
                f"{seen[stem]} and {photo} would both be written as {stem}.png; align their folders instead"
            )
        seen[stem] = photo

"""Shared pieces of the thin CLI layer: options, model loading and turning user mistakes into one-line errors."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import torch

from stylegan.editing.generate import NOISE_MODE

network_option = click.option(
    "--network",
    "network",
    type=str,  # not click.Path: a URL's "//" must survive
    default=None,
    help="Model: a .safetensors or NVIDIA .pkl file, a built-in model (default: Fashion-MNIST 32²; faces: AT&T "
    "faces 64²), a zoo name (`stylegan models` lists them) or an http(s) URL; zoo names and URLs are downloaded once "
    "into the cache. Default: the built-in Fashion-MNIST model.",
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
    except OSError as err:
        raise click.ClickException(os_error_line(err)) from None
    except ValueError as err:
        raise click.ClickException(_first_line(err)) from None


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err).strip() else type(err).__name__


# What a failed system call means for someone who asked us to read or write a path.
_OS_ERRORS = {
    errno.ENOENT: "{path}: no such file or folder",
    errno.EEXIST: "{path} already exists; choose another name",
    errno.EISDIR: "{path} is a folder; give a file name",
    errno.ENOTDIR: "{path}: a part of this path is a file, not a folder",
    errno.EACCES: "{path}: permission denied",
    errno.EPERM: "{path}: permission denied",
    errno.ENOSPC: "no space left on the disk while writing {path}",
    errno.EROFS: "{path} is on a read-only file system",
}


def os_error_line(err: OSError) -> str:
    """One sentence for an OSError: no `[Errno N]` prefix, and the path it is about."""
    if err.errno is None or not err.strerror:  # raised by our code with its own message
        return _first_line(err)
    path = err.filename if err.filename is not None else "a file"
    if err.errno == errno.EEXIST and Path(path).is_file():  # mkdir met a file: the usual EEXIST a user causes
        return f"{path} is a file, but a folder is needed there; choose another name"
    template = _OS_ERRORS.get(err.errno, "{path}: {reason}")
    return template.format(path=path, reason=err.strerror.lower())


def refuse_existing(out: Path, force: bool) -> None:
    """--out FILE is never overwritten silently: an error unless --force (checked before any work is done)."""
    if out.is_dir():
        raise click.ClickException(f"--out {out} is a folder; give a file name")
    if out.exists() and not force:
        raise click.ClickException(f"--out {out} already exists; pass --force to replace it, or choose another name")


def out_option(default: str) -> Callable:
    """--out FILE and --force, for commands that write one file."""

    def decorate(command: Callable) -> Callable:
        command = click.option(
            "--force", is_flag=True, help="Replace --out if it already exists (otherwise an existing file is an error)."
        )(command)
        return click.option(
            "--out",
            type=click.Path(path_type=Path),
            default=Path(default),
            show_default=True,
            help="Output file (written atomically; never replaced without --force).",
        )(command)

    return decorate


def get_device(name: str) -> torch.device:
    from stylegan.device import select_device

    with user_errors():
        return select_device(name)


def load_G(network: str | Path | None, device: torch.device, which: str | None = None):
    """The generator of a model file, zoo name or URL (or the packaged default), on device."""
    from stylegan.io import default_model_path, load_generator

    if network is None and not default_model_path().exists():
        raise click.ClickException(
            "no --network given and no default model is installed; pass --network PATH, NAME or URL"
        )
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


class ZoomType(click.ParamType):
    """--zoom: 'auto' or a whole factor 1-16."""

    name = "auto|1-16"

    def convert(self, given, option, context):
        if given is None or given == "auto" or isinstance(given, int):
            return given
        try:
            factor = int(given)
        except ValueError:
            factor = 0
        if not 1 <= factor <= 16:
            self.fail(f"{given!r}: give 'auto' or a whole number from 1 to 16", option, context)
        return factor


def zoom_option(what: str) -> Callable:
    """--zoom for commands that write figures or frames; 'auto' (the default) enlarges small models' output."""
    return click.option(
        "--zoom",
        type=ZoomType(),
        default="auto",
        show_default=True,
        help=f"Enlarge {what} by this factor (nearest neighbour). auto: enough for each image to be >= 128 px a side "
        "in figures (4x for a 32² model, 2x for 64², 1x from 128² up) and >= 256 px in MP4 videos, so small "
        "models' output is viewable and carries a findable provenance mark.",
    )


def resolve_zoom(zoom: str | int, G, out: Path | None = None) -> int:
    """The --zoom factor for G writing `out`: 'auto' -> the smallest factor that makes one image >= 128 px a side
    in a figure, >= 256 px in an .mp4 (where H.264 leaves the mark findable in every frame from 192 px up)."""
    if zoom != "auto":
        return int(zoom)
    min_side = 256 if out is not None and Path(out).suffix.lower() == ".mp4" else 128
    side = max(int(getattr(G, "img_resolution", min_side)), 1)
    return max(1, -(-min_side // side))


mark_option = click.option(
    "--no-mark",
    "no_mark",
    is_flag=True,
    help="Leave out the invisible provenance mark (images stay tagged AI-generated in their PNG metadata).",
)


def sign_options(command: Callable) -> Callable:
    """--sign-cert and --sign-key: a signed C2PA manifest in every PNG, GIF and MP4 written (the c2pa extra)."""
    command = click.option(
        "--sign-key", type=click.Path(path_type=Path), default=None, help="PEM private key for --sign-cert."
    )(command)
    return click.option(
        "--sign-cert",
        type=click.Path(path_type=Path),
        default=None,
        help="PEM certificate chain (end-entity first): add signed C2PA content credentials to every generated PNG, "
        "GIF and MP4 written (needs --sign-key and pip install stylegan[c2pa]).",
    )(command)


def load_signing(sign_cert: Path | None, sign_key: Path | None):
    """The C2PA credentials for --sign-cert/--sign-key (None when neither is given), checked before any work: the
    files are read, the key must match the certificate, and a trial signature must pass."""
    if sign_cert is None and sign_key is None:
        return None
    if sign_cert is None or sign_key is None:
        raise click.ClickException("--sign-cert and --sign-key go together; give both")
    from stylegan.forensics.c2pa import load_credentials

    with user_errors():
        return load_credentials(sign_cert, sign_key)


def sign_written(path: Path, credentials, chunks: dict[str, str] | None = None, *, composite: bool = False) -> Path:
    """Adds the signed C2PA manifest to a PNG, GIF or MP4 just written (no-op without credentials), in place.

    chunks: the manifest's settings (default for a PNG: its text chunks); composite: the file mixes a real picture
    with generated parts. If signing fails the unsigned file is removed (forensics.c2pa.sign_output).
    """
    if credentials is None:
        return path
    from stylegan.forensics import c2pa

    source_type = c2pa.COMPOSITE if composite else c2pa.DIGITAL_SOURCE_TYPE
    with user_errors():
        return c2pa.sign_output(path, credentials, chunks, source_type=source_type)


def signed_note(credentials) -> str:
    """' (C2PA-signed)' for the line a command prints when it has signed what it wrote, else ''."""
    return " (C2PA-signed)" if credentials is not None else ""


def image_metadata(network, truncation_psi=None, truncation_cutoff=None, noise_mode=None, class_idx=None) -> dict:
    """The settings save_png records in every image's metadata (and the model field the mark's payload hashes)."""
    return {
        "model": network if network is not None else "default",
        "truncation_psi": truncation_psi,
        "truncation_cutoff": truncation_cutoff,
        "noise_mode": noise_mode,
        "class_idx": class_idx,
    }


noise_option = click.option(
    "--noise-mode",
    type=click.Choice(["const", "random", "none"]),
    default=NOISE_MODE,
    show_default=True,
    help="Per-layer noise: the model's stored constants (same image for a seed every time), fresh draws, or none.",
)


def load_G_and_truncation(
    network: str | Path | None, device: str, truncation_psi: float | None, truncation_cutoff: int | None
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

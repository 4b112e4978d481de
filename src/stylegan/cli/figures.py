"""`stylegan figure ...`: the StyleGAN paper's figures from any model (thin wrappers over editing.figures)."""

from __future__ import annotations

from pathlib import Path

import click

from stylegan.cli.common import (
    check_psi,
    class_option,
    cutoff_option,
    device_option,
    get_device,
    image_metadata,
    load_G,
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


def _setup(network, device, truncation_psi, truncation_cutoff, out: Path, force: bool):
    """(G, device, psi, cutoff) with the model's defaults filled in, once --out is known to be free."""
    refuse_existing(out, force)
    return load_G_and_truncation(network, device, truncation_psi, truncation_cutoff)


def _credentials(out: Path, force: bool, sign_cert, sign_key):
    """--out is free and the signing credentials (or None) load: both checked before the model is loaded."""
    refuse_existing(out, force)
    return load_signing(sign_cert, sign_key)


def _save(
    image, out: Path, note: str = "", *, mark: bool = True, metadata: dict | None = None, credentials=None, zoom=1
) -> None:
    """Writes a figure [C, H, W], enlarged `zoom` times, atomically (with the provenance mark unless mark=False, and
    `metadata`; signed C2PA content credentials with `credentials`) and says where, how big, and `note`."""
    from stylegan.images import save_png
    from stylegan.images import zoom as enlarge

    image = enlarge(image, zoom)
    sign_written(save_png(image, out, mark=mark, metadata=metadata), credentials)
    click.echo(
        f"wrote {out} ({image.shape[2]}x{image.shape[1]}{'; ' + note if note else ''}){signed_note(credentials)}"
    )


@click.group()
def figure() -> None:
    """The paper's figures: style mixing, stochastic variation, noise per layer, truncation, interpolation.

    StyleGAN3 models have no noise inputs: `noise` and `noise-layers` refuse them; the others work.

    \b
    Example:
      stylegan figure mixing --network ffhq.pkl --out fig3.png
    """


@figure.command()
@network_option
@click.option(
    "--cols",
    "col_seeds",
    default="639,701,687,615,2268",
    show_default=True,
    help="Sources B (top row): their styles are copied into the rows.",
)
@click.option(
    "--coarse",
    default="888,829,1898",
    show_default=True,
    help="Sources A taking B's coarse styles (pose, shape); '' for none.",
)
@click.option(
    "--middle",
    default="1733,1614",
    show_default=True,
    help="Sources A taking B's middle styles (features); '' for none.",
)
@click.option(
    "--fine",
    default="845",
    show_default=True,
    help="Sources A taking B's fine styles (colours, microstructure); '' for none.",
)
@trunc_option
@cutoff_option
@class_option
@noise_option
@out_option("out/figure3-mixing.png")
@zoom_option("the figure")
@mark_option
@sign_options
@device_option
def mixing(
    network,
    col_seeds,
    coarse,
    middle,
    fine,
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
    """Style mixing (paper figure 3): coarse, middle or fine styles of sources B copied into sources A.

    The groups follow the model's resolution and are printed: on models of 64² and above coarse is 4²-8²,
    middle 16²-32², fine 64² and up (the paper's); smaller models split their resolutions in thirds
    (a 32² model: 4²-8², 16², 32²). StyleGAN3 has no resolution blocks: each of its ws counts at twice the
    cutoff frequency of the layer it drives (rounded to a power of two).

    \b
    Example:
      stylegan figure mixing --network ffhq.pkl --cols 639,701,687 --coarse 888,829 --middle 1733 --fine 845
    """
    from stylegan.editing.figures import describe_groups, group_rows, style_mixing_figure

    cols = parse_seeds(col_seeds, "--cols")
    rows = {
        g: parse_seeds(s, f"--{g}") if s.strip() else []
        for g, s in (("coarse", coarse), ("middle", middle), ("fine", fine))
    }
    if not any(rows.values()):
        raise click.ClickException("give at least one of --coarse, --middle or --fine")
    credentials = _credentials(out, force, sign_cert, sign_key)
    G, dev, psi, cutoff = _setup(network, device, truncation_psi, truncation_cutoff, out, force)
    with user_errors():
        fig = style_mixing_figure(
            G,
            cols,
            group_rows(G, rows),
            truncation_psi=psi,
            truncation_cutoff=cutoff,
            class_idx=class_idx,
            noise_mode=noise_mode,
            device=dev,
        )
        meta = image_metadata(network, psi, cutoff, noise_mode, class_idx)
        _save(
            fig, out, describe_groups(G), mark=not no_mark, metadata=meta, credentials=credentials,
            zoom=resolve_zoom(zoom, G),
        )  # fmt: skip


@figure.command()
@network_option
@click.option("--seeds", default="1157,1012", show_default=True, help="One row per seed.")
@click.option("--draws", type=click.IntRange(min=1), default=4, show_default=True, help="Noise draws shown per seed.")
@click.option(
    "--std-draws",
    type=click.IntRange(min=2),
    default=32,
    show_default=True,
    help="Noise draws behind the std-dev image (the paper used 100).",
)
@click.option("--noise-seed", type=int, default=0, show_default=True, help="Seed of the noise draws.")
@trunc_option
@cutoff_option
@class_option
@out_option("out/figure4-noise.png")
@zoom_option("the figure")
@mark_option
@sign_options
@device_option
def noise(
    network,
    seeds,
    draws,
    std_draws,
    noise_seed,
    truncation_psi,
    truncation_cutoff,
    class_idx,
    out,
    force,
    zoom,
    no_mark,
    sign_cert,
    sign_key,
    device,
):
    """Stochastic variation (paper figure 4): one w, several noise draws, and the per-pixel std-dev image.

    \b
    Example:
      stylegan figure noise --network ffhq.pkl --seeds 1157,1012 --draws 4 --std-draws 100 --out fig4.png
    """
    from stylegan.editing.figures import stochastic_variation_figure

    seed_list = parse_seeds(seeds)
    credentials = _credentials(out, force, sign_cert, sign_key)
    G, dev, psi, cutoff = _setup(network, device, truncation_psi, truncation_cutoff, out, force)
    with user_errors():
        _save(
            stochastic_variation_figure(
                G,
                seed_list,
                num_draws=draws,
                std_draws=std_draws,
                noise_seed=noise_seed,
                truncation_psi=psi,
                truncation_cutoff=cutoff,
                class_idx=class_idx,
                device=dev,
            ),
            out,
            mark=not no_mark,
            metadata=image_metadata(network, psi, cutoff, None, class_idx),
            credentials=credentials,
            zoom=resolve_zoom(zoom, G),
        )


@figure.command("noise-layers")
@network_option
@click.option("--seeds", default="1157,1012", show_default=True, help="One row per seed.")
@click.option("--noise-seed", type=int, default=0, show_default=True, help="Seed of the noise draw.")
@trunc_option
@cutoff_option
@class_option
@out_option("out/figure5-noise-layers.png")
@zoom_option("the figure")
@mark_option
@sign_options
@device_option
def noise_layers(
    network,
    seeds,
    noise_seed,
    truncation_psi,
    truncation_cutoff,
    class_idx,
    out,
    force,
    zoom,
    no_mark,
    sign_cert,
    sign_key,
    device,
):
    """Noise per layer (paper figure 5): in all layers, none, fine layers only, coarse (and middle) only.

    "Fine" is the model's fine group, printed: 64² and up on models of 64² and above, the top third of the
    resolutions on smaller ones (32² on a 32² model).

    \b
    Example:
      stylegan figure noise-layers --network ffhq.pkl --seeds 1157 --out fig5.png
    """
    from stylegan.editing.figures import describe_groups, noise_layers_figure

    seed_list = parse_seeds(seeds)
    credentials = _credentials(out, force, sign_cert, sign_key)
    G, dev, psi, cutoff = _setup(network, device, truncation_psi, truncation_cutoff, out, force)
    with user_errors():
        _save(
            noise_layers_figure(
                G,
                seed_list,
                noise_seed=noise_seed,
                truncation_psi=psi,
                truncation_cutoff=cutoff,
                class_idx=class_idx,
                device=dev,
            ),
            out,
            describe_groups(G),
            mark=not no_mark,
            metadata=image_metadata(network, psi, cutoff, None, class_idx),
            credentials=credentials,
            zoom=resolve_zoom(zoom, G),
        )


def _parse_psis(text: str) -> list[float]:
    try:
        psis = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise click.ClickException(f"--psis {text!r}: use comma-separated numbers like 1,0.7,0,-1") from None
    if not psis:
        raise click.ClickException("--psis is empty: use comma-separated numbers like 1,0.7,0,-1")
    for psi in psis:
        check_psi(psi)
    return psis


@figure.command()
@network_option
@click.option("--seeds", default="91,388", show_default=True, help="One row per seed.")
@click.option("--psis", default="1,0.7,0.5,0,-0.5,-1", show_default=True, help="One column per psi.")
@cutoff_option
@class_option
@noise_option
@out_option("out/figure8-truncation.png")
@zoom_option("the figure")
@mark_option
@sign_options
@device_option
def truncation(
    network, seeds, psis, truncation_cutoff, class_idx, noise_mode, out, force, zoom, no_mark, sign_cert, sign_key,
    device,
):  # fmt: skip
    """The truncation trick (paper figure 8): w_avg + psi (w - w_avg) in W, from psi = 1 to -1.

    \b
    Example:
      stylegan figure truncation --network ffhq.pkl --seeds 91,388 --psis 1,0.7,0.5,0,-0.5,-1
    """
    from stylegan.editing.figures import truncation_figure

    seed_list, psi_list = parse_seeds(seeds), _parse_psis(psis)
    credentials = _credentials(out, force, sign_cert, sign_key)
    dev = get_device(device)
    G = load_G(network, dev)
    with user_errors():
        fig = truncation_figure(
            G,
            seed_list,
            psi_list,
            truncation_cutoff=truncation_cutoff,
            class_idx=class_idx,
            noise_mode=noise_mode,
            device=dev,
        )
        meta = image_metadata(network, None, truncation_cutoff, noise_mode, class_idx)
        _save(fig, out, mark=not no_mark, metadata=meta, credentials=credentials, zoom=resolve_zoom(zoom, G))


@figure.command()
@network_option
@click.option("--seeds", default="0-3", show_default=True, help="Key frames: the walk visits their ws in order.")
@click.option("--frames", type=click.IntRange(min=1), default=24, show_default=True, help="Frames per transition.")
@click.option("--fps", type=click.IntRange(min=1, max=120), default=24, show_default=True)
@zoom_option("the frames")
@trunc_option
@cutoff_option
@class_option
@noise_option
@out_option("out/interpolation.gif")
@mark_option
@sign_options
@device_option
def interpolate(
    network,
    seeds,
    frames,
    fps,
    zoom,
    truncation_psi,
    truncation_cutoff,
    class_idx,
    noise_mode,
    out,
    force,
    no_mark,
    sign_cert,
    sign_key,
    device,
):
    """Interpolation video: a loop through the seeds' ws in W. .gif always works; .mp4 needs imageio-ffmpeg.

    Every .mp4 frame of >= 128 px a side carries the invisible mark (model, first seed); --zoom enlarges small
    models' frames to get there. .gif frames carry none (GIF's 256-colour palette would wipe it out): there the
    provenance is the GIF comment. --sign-cert/--sign-key sign .gif and .mp4 alike.

    \b
    Example:
      stylegan figure interpolate --network ffhq.pkl --seeds 0-3 --frames 30 --out walk.mp4
    """
    from stylegan.editing.figures import interpolation_frames, write_video
    from stylegan.editing.video_mark import FrameMarker, frame_payload
    from stylegan.images import zoom as enlarge

    seed_list = parse_seeds(seeds)
    if len(seed_list) < 2:
        raise click.ClickException("--seeds: an interpolation needs at least 2 seeds")
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise click.ClickException(f"--out {out}: use a .gif or .mp4 file name")
    credentials = _credentials(out, force, sign_cert, sign_key)
    G, dev, psi, cutoff = _setup(network, device, truncation_psi, truncation_cutoff, out, force)
    from stylegan.forensics.metadata import generation_metadata

    meta = image_metadata(network, psi, cutoff, noise_mode, class_idx)
    marker = None if no_mark else FrameMarker(frame_payload(meta.get("model"), seed_list[0]))
    with user_errors():
        frame_iter = interpolation_frames(
            G,
            seed_list,
            frames_per_seed=frames,
            truncation_psi=psi,
            truncation_cutoff=cutoff,
            class_idx=class_idx,
            noise_mode=noise_mode,
            device=dev,
        )
        factor = resolve_zoom(zoom, G, out)
        frame_iter = (enlarge(frame, factor) for frame in frame_iter)
        written = write_video(frame_iter, out, fps=fps, metadata=generation_metadata(**meta), mark=marker)
    sign_written(out, credentials, written.metadata)
    count = written.frames
    click.echo(f"wrote {out} ({count} frames){signed_note(credentials)}")

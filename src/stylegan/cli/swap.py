"""`stylegan swap --source A.jpg --target B.jpg --out C.png`: face swap on a photo or, frame by frame, a video."""

from __future__ import annotations

import time
from pathlib import Path

import click

from stylegan.cli.common import (
    device_option,
    get_device,
    load_G,
    load_signing,
    mark_option,
    sign_options,
    signed_note,
    user_errors,
)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


@click.command()
@click.option("--source", required=True, type=click.Path(path_type=Path), help="Photo whose face (identity) is used.")
@click.option("--target", required=True, type=click.Path(path_type=Path), help="Photo or video that gets the face.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output: .png (photo) or .mp4 (video).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option(
    "--network",
    default="faces",
    show_default=True,
    help="Model: a built-in name (faces: grey 64² AT&T faces), a file or a URL (see `stylegan models`).",
)
@click.option(
    "--mode",
    type=click.Choice(["pti", "w+", "w"]),
    default="pti",
    show_default=True,
    help="How the target is projected (pti: tuned G, closest; w / w+: latent only).",
)
@click.option("--steps", type=click.IntRange(min=1), default=300, show_default=True, help="Projection steps in W.")
@click.option("--plus-steps", type=click.IntRange(min=0), default=150, show_default=True, help="Steps in W+ (w+).")
@click.option("--tune-steps", type=click.IntRange(min=0), default=300, show_default=True, help="PTI tuning steps.")
@click.option(
    "--layers",
    default="coarse,middle",
    show_default=True,
    help="ws rows taken from the source: indices (0-7) or groups coarse / middle / fine.",
)
@click.option(
    "--blend",
    type=click.Choice(["alpha", "poisson"]),
    default="alpha",
    show_default=True,
    help="Feathered alpha mask, or screened Poisson blending inside the mask.",
)
@click.option(
    "--render",
    type=click.Choice(["source", "target"]),
    default="source",
    show_default=True,
    help="Photos: whose projection's G draws the swapped face, the source's (tuned with --mode pti on the "
    "source face: its identity stays) or the target's. Videos always use the target's.",
)
@click.option("--no-colour", "no_colour", is_flag=True, help="Do not match the face's colour to the target's.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the projections.")
@click.option(
    "--frame-steps",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Video: W+ steps per frame, warm-started from the previous frame.",
)
@click.option("--keep-frames", is_flag=True, help="Video: keep the work folder of finished frames.")
@mark_option
@sign_options
@device_option
def swap(
    source,
    target,
    out,
    force,
    network,
    mode,
    steps,
    plus_steps,
    tune_steps,
    layers,
    blend,
    render,
    no_colour,
    seed,
    frame_steps,
    keep_frames,
    no_mark,
    sign_cert,
    sign_key,
    device,
) -> None:
    """Put the face of SOURCE onto the face in TARGET (a photo, or a video frame by frame).

    Both faces are projected into the model (PTI by default), the identity layers come from the source and the
    rest from the target, and the new face is blended into the target with a landmark mask; the target's other
    pixels stay as they were. The output is declared AI-generated: PNG metadata or the mp4's comment, and the
    provenance mark (photos, and every frame of a video, of at least 128 px a side; --no-mark leaves it out). A
    video's finished frames wait in .OUT.swap/ next to the output, so an interrupted run resumes.
    --sign-cert/--sign-key add signed C2PA content credentials (photo and mp4) declaring a composite of a real
    picture and generated parts. Needs the faces extra
    (pip install "stylegan[faces]"); videos the video extra (pip install "stylegan[video]").

    \b
    Examples:
      stylegan swap --source me.jpg --target friend.jpg --out swapped.png
      stylegan swap --source me.jpg --target clip.mp4 --out swapped.mp4 --frame-steps 5
    """
    is_video = target.suffix.lower() in VIDEO_SUFFIXES
    _check_extras(is_video, out)
    _check_paths(source, target, out, force, is_video)
    credentials = load_signing(sign_cert, sign_key)
    from stylegan.editing.swap import SwapSettings
    from stylegan.faces import load_photo

    with user_errors():
        settings = SwapSettings(
            mode=mode,
            steps=steps,
            plus_steps=plus_steps,
            tune_steps=tune_steps,
            layers=layers,
            blend=blend,
            colour=not no_colour,
            seed=seed,
            render=render,
        )
        source_photo = load_photo(source)
    dev = get_device(device)
    G = load_G(network, dev)
    run = _swap_video if is_video else _swap_photo
    with user_errors():
        run(
            G,
            source_photo,
            source,
            target,
            out,
            settings,
            network,
            (not no_mark, credentials),
            frame_steps,
            keep_frames,
            dev,
        )


def _check_extras(is_video: bool, out: Path) -> None:
    from stylegan.faces import FacesUnavailableError, require_faces

    try:
        require_faces()
    except FacesUnavailableError as err:
        raise click.ClickException(str(err)) from None
    if is_video:
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            hint = 'swapping a video needs the video extra: pip install "stylegan[video]"'
            raise click.ClickException(hint) from None


def _check_paths(source: Path, target: Path, out: Path, force: bool, is_video: bool) -> None:
    want = ".mp4" if is_video else ".png"
    if out.suffix.lower() != want:
        raise click.ClickException(f"--out {out}: a {'video' if is_video else 'photo'} swap writes {want}")
    for name, path in (("--source", source), ("--target", target)):
        if not path.is_file():
            raise click.ClickException(f"{name} {path}: no such file")
    if out.is_dir():
        raise click.ClickException(f"--out {out} is a folder; give a file name")
    if out.exists() and not force:
        raise click.ClickException(f"--out {out} already exists; pass --force to replace it, or choose another name")


def _swap_photo(G, source_photo, source, target, out, settings, network, provenance, frame_steps, keep_frames, dev):
    """provenance: (mark, C2PA credentials or None)."""
    from stylegan.editing import swap as S
    from stylegan.faces import load_photo

    target_photo = load_photo(target)
    total = 2 * settings.steps + settings.tune_steps * (settings.mode == "pti")
    total += 2 * settings.plus_steps * (settings.mode == "w+")
    faces = S.find_faces(G, source_photo, target_photo, settings)
    with click.progressbar(length=total, label="projecting both faces", show_eta=True) as bar:
        result = S.swap_aligned(G, *faces, target_photo, settings, device=dev, callback=lambda _role, _p: bar.update(1))
    info = S.swap_metadata(source, target, settings, result.layers)
    mark, credentials = provenance
    S.write_swap(
        result.image, out, model=str(network), settings=settings, info=info, mark=mark, credentials=credentials
    )
    changed = int((result.mask > 0).sum())
    click.echo(f"wrote {out} (face region {changed} px; layers {info['layers']}){signed_note(credentials)}")


def _swap_video(G, source_photo, source, target, out, settings, network, provenance, frame_steps, keep_frames, dev):
    """provenance: (mark every frame, C2PA credentials or None)."""
    from stylegan.editing import swap as S
    from stylegan.editing import video_mark as M
    from stylegan.editing import video_swap as V
    from stylegan.forensics.metadata import PREFIX, comment_text, generation_metadata

    video = V.VideoSettings(frame_steps=frame_steps, keep_frames=keep_frames)
    info = V.probe(target)
    layers = S.swap_layers(G, settings.layers)
    marker = M.FrameMarker(M.frame_payload(network, settings.seed), psnr=S.SWAP_MARK_PSNR) if provenance[0] else None
    note = M.OFF_NOTE if marker is None else marker.note(info.size[1], info.size[0])
    chunks = generation_metadata(model=network, seed=settings.seed, mark=note)
    meta = S.swap_metadata(source, target, settings, layers)
    chunks.update({PREFIX + k: v for k, v in meta.items()})
    comment = comment_text(chunks)
    credentials = provenance[1]
    signing = None if credentials is None else (credentials, chunks)
    job = {"source": str(Path(source).resolve()), "target": str(Path(target).resolve()), "network": network}
    started = time.monotonic()
    with click.progressbar(length=info.frames, label="swapping frames", show_eta=True, show_pos=True) as bar:
        reports = V.swap_video(
            G,
            source_photo,
            target,
            out,
            settings,
            video,
            job=job,
            comment=comment,
            signing=signing,
            mark=marker,
            device=dev,
            callback=lambda _r: bar.update(1),
        )
    reused = sum(r.reused for r in reports)
    no_face = sum(not r.face for r in reports)
    click.echo(
        f"wrote {out} ({len(reports)} frames at {info.fps:g} fps, audio {'copied' if info.audio else 'none'}; "
        f"{reused} reused from an earlier run, {no_face} without a face; {time.monotonic() - started:.0f} s)"
        + signed_note(credentials)
    )

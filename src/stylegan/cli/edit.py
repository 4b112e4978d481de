"""`stylegan edit` and `stylegan directions`: thin wrappers over stylegan.editing.edit and editing.directions."""

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
    signed_note,
    trunc_option,
    user_errors,
    zoom_option,
)

samples_option = click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=None,
    help="Sampled w for GANSpace (default 20000) or sampled images for a boundary (default 2000).",
)


@click.command()
@network_option
@click.option("--seeds", default=None, help="Source seeds, e.g. 0-3 (default 0-3 unless --projected-w).")
@click.option(
    "--projected-w",
    type=click.Path(path_type=Path),
    default=None,
    help="Sources from a projection: .npz with key w [N, num_ws, w_dim] (NVIDIA's projected_w.npz).",
)
@click.option(
    "--direction",
    "direction_specs",
    multiple=True,
    default=("sefa:0",),
    show_default=True,
    help="sefa:K[@LAYERS], ganspace:K, boundary:FILE or a direction .npz path (FILE:K for the K-th in a file). "
    "Repeat for a grid of several directions.",
)
@click.option(
    "--strengths",
    default="-3:3:7",
    show_default=True,
    help="START:STOP:COUNT or a list (-2,0,2), in standard deviations of the model's w along the direction.",
)
@click.option(
    "--layers",
    default=None,
    help="ws indices to edit (0-5), or coarse / middle / fine (the paper's groups; printed for the model). "
    "Default: the direction's own layers (all, or those after @ in sefa:K@LAYERS).",
)
@trunc_option
@cutoff_option
@class_option
@noise_option
@out_option("out/edit.png")
@zoom_option("the figure or frames")
@click.option("--frames", type=click.IntRange(min=2), default=48, show_default=True, help="Video: frames per loop.")
@click.option("--fps", type=click.IntRange(min=1), default=24, show_default=True, help="Video: frames per second.")
@samples_option
@mark_option
@sign_options
@device_option
def edit(
    network,
    seeds,
    projected_w,
    direction_specs,
    strengths,
    layers,
    truncation_psi,
    truncation_cutoff,
    class_idx,
    noise_mode,
    out,
    force,
    zoom,
    frames,
    fps,
    samples,
    no_mark,
    sign_cert,
    sign_key,
    device,
):
    """Move sources along latent directions: a strip (a row per source, a column per strength), a grid of
    several directions (a row per source and direction), or a video (.mp4 or .gif) sweeping the strength.

    Outputs carry the provenance mark (every .mp4 frame too, with the first seed; a .gif's frames none, its palette
    would wipe the mark out) and metadata (model, seeds, directions, strengths, layers); with
    --sign-cert/--sign-key also signed C2PA content credentials (PNG, MP4 and GIF alike).

    \b
    Examples:
      stylegan edit --seeds 0-3 --direction sefa:0 --strengths -3:3:7 --out strip.png
      stylegan edit --seeds 0 --direction sefa:0 --direction ganspace:1 --layers coarse --out grid.png
      stylegan edit --projected-w projected_w.npz --direction boundary:smile.npz --out smile.mp4
    """
    from stylegan.editing import edit as E

    if seeds is not None and projected_w is not None:
        raise click.ClickException("give either --seeds or --projected-w, not both")
    if out.suffix.lower() == ".mp4" and not E.video_available():
        raise click.ClickException("writing .mp4 needs the video extra: pip install stylegan[video] (or write a .gif)")
    if out.suffix.lower() not in (".png", *E.VIDEO_SUFFIXES):
        raise click.ClickException(f"--out {out}: use .png (strip or grid), .mp4 or .gif (video)")
    refuse_existing(out, force)
    credentials = load_signing(sign_cert, sign_key)
    seed_list = None if projected_w is not None else parse_seeds(seeds or "0-3")
    with user_errors():
        strength_list = E.parse_strengths(strengths)
    G, dev, psi, cutoff = load_G_and_truncation(network, device, truncation_psi, truncation_cutoff)
    with user_errors():
        ws, meta = _sources(G, dev, seed_list, projected_w, psi, cutoff, class_idx)
        chosen = _directions(G, direction_specs, samples)
        layer_list = _layers(G, layers)
        E.write_edit(
            G,
            ws,
            chosen,
            strength_list,
            out,
            layers=layer_list,
            metadata={**image_metadata(network, class_idx=class_idx), **meta},
            seeds=seed_list,
            mark=not no_mark,
            scale=resolve_zoom(zoom, G, out),
            frames=frames,
            fps=fps,
            noise_mode=noise_mode,
            credentials=credentials,
        )
    click.echo(
        f"wrote {out} ({len(ws)} source(s) x {len(chosen)} direction(s) x {len(strength_list)} strength(s); "
        f"{_layer_note(G, chosen, layer_list)})" + signed_note(credentials)
    )


def _sources(G, dev, seed_list, projected_w, psi, cutoff, class_idx):
    """(ws [N, num_ws, w_dim] on dev, metadata of how they were made)."""
    from stylegan.editing.edit import load_projected_w
    from stylegan.editing.generate import compute_ws

    if projected_w is not None:
        return load_projected_w(projected_w, G).to(dev), {"truncation_psi": None}
    ws = compute_ws(G, seed_list, truncation_psi=psi, truncation_cutoff=cutoff, class_idx=class_idx, device=dev)
    return ws, {"truncation_psi": psi, "truncation_cutoff": cutoff}


def _directions(G, specs, samples):
    from stylegan.editing.directions import GANSPACE_SAMPLES, resolve_direction

    return [resolve_direction(G, spec, ganspace_samples=samples or GANSPACE_SAMPLES) for spec in specs]


def _layers(G, layers):
    from stylegan.editing.directions import parse_layers

    return None if layers is None else parse_layers(G, layers)


def _layer_note(G, chosen, layer_list) -> str:
    from stylegan.editing.figures import describe_groups
    from stylegan.editing.generate import format_range

    used = sorted({i for d in chosen for i in (d.layers if layer_list is None else layer_list)})
    return f"edited ws {format_range(used)}; groups: {describe_groups(G)}"


@click.command()
@network_option
@click.option(
    "--method",
    type=click.Choice(["sefa", "ganspace", "boundary"]),
    default="sefa",
    show_default=True,
    help="sefa: closed form from the style weights; ganspace: PCA of sampled w; boundary: a linear classifier on w.",
)
@click.option(
    "--layers",
    default=None,
    help="ws indices or coarse/middle/fine: SeFa factorises these layers' styles; all methods record them as "
    "where the directions apply. Default: all.",
)
@click.option(
    "--classifier",
    default=None,
    help="boundary from a classifier's scores: fmnist:K (the shipped Fashion-MNIST classifier, class K's log-odds).",
)
@click.option("--class", "class_idx", type=int, default=None, help="boundary of a conditional model's class K.")
@click.option(
    "--ratio",
    type=float,
    default=0.25,
    show_default=True,
    help="boundary from scores: train on the top and bottom fraction of the samples.",
)
@samples_option
@click.option("--num", type=click.IntRange(min=1), default=10, show_default=True, help="Directions to list.")
@click.option(
    "--out",
    "outdir",
    type=click.Path(path_type=Path),
    default=Path("out/directions"),
    show_default=True,
    help="Folder for the .npz file (named after the method, layers and label).",
)
@click.option("--force", is_flag=True, help="Replace an existing file of the same name.")
@device_option
def directions(network, method, layers, classifier, class_idx, ratio, samples, num, outdir, force, device):
    """Compute latent directions, save them (.npz with the model's hash, method and layers) and list the top ones.

    \b
    Examples:
      stylegan directions --method sefa --layers coarse --out dirs
      stylegan directions --method ganspace --samples 50000 --out dirs
      stylegan directions --method boundary --classifier fmnist:7 --out dirs   # towards "sneaker"
      stylegan directions --network cond.pkl --method boundary --class 3 --out dirs
    Use a saved file with `stylegan edit --direction dirs/FILE.npz:K`.
    """
    from stylegan.editing import directions as D

    _check_method_options(method, classifier, class_idx)
    G, _, _, _ = load_G_and_truncation(network, device, None, None)
    with user_errors():
        layer_list = None if layers is None else D.parse_layers(G, layers)
        dirs, name = _compute(G, method, layer_list, classifier, class_idx, ratio, samples)
        path = outdir / f"{name}.npz"
        refuse_existing(path, force)
        D.save_directions(dirs, path)
    click.echo(f"wrote {path}: {len(dirs)} {method} direction(s), model {dirs.model_hash}, w_dim {dirs.w_dim}")
    click.echo(_table(dirs, num))


def _check_method_options(method, classifier, class_idx) -> None:
    if method != "boundary" and (classifier or class_idx is not None):
        raise click.ClickException("--classifier and --class are for --method boundary")
    if method == "boundary" and (classifier is None) == (class_idx is None):
        raise click.ClickException("--method boundary needs a label: --classifier fmnist:K or --class K (not both)")


def _compute(G, method, layer_list, classifier, class_idx, ratio, samples):
    """(DirectionSet, file stem)."""
    from stylegan.editing import directions as D
    from stylegan.editing.generate import format_range

    suffix = "" if layer_list is None else "-" + format_range(layer_list).replace(",", "_")
    if method == "sefa":
        return D.sefa(G, layers=layer_list), "sefa" + suffix
    if method == "ganspace":
        return D.ganspace(G, samples=samples or D.GANSPACE_SAMPLES, layers=layer_list), "ganspace" + suffix
    if class_idx is not None:
        return D.class_boundary(G, class_idx, samples=samples or 2000, layers=layer_list), f"boundary-class{class_idx}"
    score_fn = D.classifier_scores(classifier, next(G.parameters()).device)
    dirs = D.classifier_boundary(G, score_fn, samples=samples or 2000, ratio=ratio, label=classifier, layers=layer_list)
    return dirs, "boundary-" + classifier.replace(":", "")


def _table(dirs, num: int) -> str:
    label = {"sefa": "eigenvalue", "ganspace": "variance", "boundary": "train acc"}.get(dirs.method, "value")
    total = float(dirs.values.sum()) or 1.0
    lines = [f"{'index':>5}  {label:>10}  {'share':>6}  {'sigma':>7}  name"]
    for k in range(min(num, len(dirs))):
        share = f"{100 * dirs.values[k] / total:5.1f}%" if dirs.method != "boundary" else "     -"
        lines.append(f"{k:>5}  {dirs.values[k]:>10.4g}  {share:>6}  {dirs.scales[k]:>7.3g}  {dirs.method}:{k}")
    return "\n".join(lines)

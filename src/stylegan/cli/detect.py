"""`stylegan detect FILES...` (mark, metadata, C2PA, detectors; one line per file) and `stylegan detect-train`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from stylegan.cli.common import user_errors


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of text.")
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a self-contained HTML page (images, spectra, verdicts) to this file.",
)
@click.option(
    "--detector",
    "detector_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Detector file(s) from `stylegan detect-train` (repeatable). Default: the shipped spectral and CNN ones.",
)
@click.option(
    "--trust-anchors",
    "anchor_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    envvar="STYLEGAN_TRUST_ANCHORS",
    help="PEM file(s) of root/CA certificates whose signers you trust (repeatable; or STYLEGAN_TRUST_ANCHORS, "
    "paths separated like PATH). A valid C2PA signature whose certificate chains up to one is 'trusted'.",
)
def detect(files, as_json, report, detector_paths, anchor_paths):
    """Report, per image or video: the invisible provenance mark (found? payload? bit errors), the metadata, the
    C2PA content credentials and the detectors' calibrated p(generated).

    Animations (GIF, APNG, WebP) and videos (MP4, MOV, WebM, AVI; decoding needs the video extra, pip install
    stylegan[video]) have 3 frames spread over their length checked for the mark and by the detectors (their mean
    p(generated)); a video's comment (our writers' provenance text) and C2PA are read without the extra.

    C2PA, as C2PA's own tools decide: 'valid, trusted (signer: CN=...)' when the signature verifies and the
    signer's certificate chains up to a --trust-anchors certificate; 'valid, untrusted signer (CN=...)' when it
    verifies but the signer is not vouched for; 'invalid: <why>' when the file was changed after signing (or the
    certificate is bad); 'none' without a manifest. --json has the same as c2pa.verdict / status / trusted.

    Files that are neither images nor videos, or are broken or truncated, get one line saying so; the others are
    still checked.
    The exit status is 0 when every file could be read.

    \b
    Example:
      stylegan detect out/*.png
      stylegan detect photo.jpg --json
      stylegan detect out/*.png photo.jpg --report report.html
      stylegan detect walk.mp4 --trust-anchors my-ca.pem
    """
    from stylegan.forensics.report import inspect_file, load_detectors

    with user_errors():
        anchors = _trust_anchors(anchor_paths)
        detectors = load_detectors(list(detector_paths))
    results, failed = [], 0
    for path in files:
        result = inspect_file(path, detectors=detectors, trust_anchors=anchors)
        failed += "error" in result
        click.echo(json.dumps(result) if as_json else _line(result))
        results.append(result)
    if report is not None:
        from stylegan.forensics.html import write_report

        spectral = next((d for d in detectors if d.kind == "spectral"), None)
        with user_errors():
            write_report(results, report, spectral)
        if not as_json:
            click.echo(f"wrote {report}")
    if failed:
        raise SystemExit(1)


def _trust_anchors(paths) -> str | None:
    """The PEM text of --trust-anchors (None when none given); checked before any file is read."""
    if not paths:
        return None
    from stylegan.forensics import c2pa

    c2pa.require()
    return c2pa.load_trust_anchors(paths)


def _line(result: dict) -> str:
    if "error" in result:
        return f"{result['file']}: error: {result['error']}"
    from stylegan.forensics.html import verdicts

    parts = [f"{label}: {text}" if label != "mark" else _mark_phrase(text) for label, text in verdicts(result)]
    return f"{result['file']}: " + "; ".join(parts)


def _mark_phrase(text: str) -> str:
    return f"mark {text}" if text.startswith("found") else f"no mark{text.removeprefix('none')}"


@click.command("detect-train")
@click.option("--real", "real_dir", required=True, type=click.Path(path_type=Path), help="Folder of real images.")
@click.option("--fake", "fake_dir", required=True, type=click.Path(path_type=Path), help="Folder of generated images.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Detector file to write (.safetensors).")
@click.option("--kind", type=click.Choice(["spectral", "cnn"]), default="spectral", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the held-out split and of training.")
@click.option(
    "--augment",
    type=click.Choice(["wang-resize", "wang", "light", "none"]),
    default=None,
    help="Laundering seen in training: 'wang' Gaussian blur sigma 0-3 and JPEG q30-100 (each p=1/2; the cnn's "
    "default), 'wang-resize' also a random resize to 50-100 % (the spectral default), 'light' resize + JPEG q60-95.",
)
@click.option("--no-augment", is_flag=True, help="Train on the images as they are (same as --augment none).")
@click.option(
    "--residual",
    type=click.Choice(["npr+local", "npr", "local", "none"]),
    default="npr+local",
    show_default=True,
    help="What the cnn reads: each pixel minus its 2x2 block's corner (npr) or minus its 3x3 mean (local), both "
    "divided by their local RMS; 'none': minus its 3x3 mean, scaled by 10; 'npr+local': one CNN on each, their "
    "scores averaged (twice the training time). The spectral kind ignores it.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def detect_train(real_dir, fake_dir, out, kind, seed, augment, no_augment, residual, force):
    """Train a detector for unmarked generated images: real vs generated folders (images are read recursively;
    unreadable files are skipped with a note). A quarter of each folder is held out to calibrate p(generated).

    \b
    Example:
      stylegan detect-train --real photos/ --fake out/ --out my-detector.safetensors --kind cnn
      stylegan detect --detector my-detector.safetensors new/*.png
    """
    from stylegan.cli.common import refuse_existing
    from stylegan.forensics.detector import read_folder, train_detector

    refuse_existing(out, force)
    with user_errors():
        real, real_skipped = read_folder(real_dir, "--real")
        fake, fake_skipped = read_folder(fake_dir, "--fake")
        for note in real_skipped + fake_skipped:
            click.echo(f"skipped {note}", err=True)
        recipe = "none" if no_augment else augment or True  # True: the kind's default
        detector = train_detector(real, fake, kind=kind, seed=seed, augment=recipe, norm=residual)
        detector.save(out)
    click.echo(f"wrote {out} ({len(real)} real, {len(fake)} generated): {detector.calibration_note}")

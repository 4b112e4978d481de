"""`stylegan detect IMAGES...`: is there a provenance mark, and what does the metadata say? One line per file."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of text.")
def detect(images, as_json):
    """Report the invisible provenance mark (found? payload? bit errors) and the metadata of each image.

    Files that are not images, or are broken, get one line saying so; the others are still checked.
    The exit status is 0 when every file could be read.

    \b
    Example:
      stylegan detect out/*.png
      stylegan detect photo.jpg --json
    """
    from stylegan.forensics.report import inspect_file

    failed = 0
    for path in images:
        report = inspect_file(path)
        failed += "error" in report
        click.echo(json.dumps(report) if as_json else _line(report))
    if failed:
        raise SystemExit(1)


def _line(report: dict) -> str:
    if "error" in report:
        return f"{report['file']}: error: {report['error']}"
    mark = report["mark"]
    if mark["found"]:
        text = (
            f"mark found (tool {mark['tool']}, model {mark['model']}, seed {mark['seed']}, "
            f"{mark['bit_errors']}/{mark['coded_bits']} coded bits corrected)"
        )
    else:
        text = f"no mark ({mark['reason']})"
    meta = report["metadata"]
    said = "metadata: AI-generated" if meta.get("ai_generated") else "metadata: none saying AI-generated"
    extras = ", ".join(f"{k}={meta[k]}" for k in ("software", "model", "seed") if meta.get(k))
    return f"{report['file']}: {text}; {said}" + (f" ({extras})" if extras else "")

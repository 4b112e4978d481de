"""`stylegan metrics`: compute FID/KID/PR/IS/PPL/LS (and the offline *_fmnist metrics) of a generator."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from stylegan.cli.common import device_option, get_device, load_G, network_option, user_errors

_weights = dict(type=click.Path(dir_okay=False, path_type=Path), default=None)


def _parse_metrics(text: str) -> list[str]:
    from stylegan.metrics import list_metrics

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in list_metrics()]
    if unknown or not names:
        raise click.ClickException(
            f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(list_metrics())}"
        )
    return names


@click.command()
@network_option
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Real images: a folder or .zip (needed by fid/kid/pr metrics).",
)
@click.option(
    "--metrics",
    "metric_names",
    default="fid50k_full",
    show_default=True,
    help="Comma-separated metric names, e.g. fid50k_full,kid50k_full,pr50k3_full,is50k,ppl2_wend,fid_fmnist.",
)
@click.option(
    "--num-gen", type=click.IntRange(min=2), default=None, help="Generated images (default: the metric's)."
)
@click.option(
    "--inception", **_weights, help="FID Inception weights (pytorch-fid's pt_inception-2015-12-05-*.pth)."
)
@click.option("--vgg16", **_weights, help="torchvision VGG16 weights (vgg16-397923af.pth), for pr* and ppl*.")
@click.option("--lpips", **_weights, help="A full LPIPS VGG state dict (lpips key names), for ppl*.")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append one JSON line per metric to this file (as NVIDIA's metric-*.jsonl).",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write cached dataset features.")
@device_option
def metrics(
    network, data, metric_names, num_gen, inception, vgg16, lpips, batch_size, out_path, no_cache, device
):
    """Compute metrics of a generator against real data, print one JSON line per metric.

    \b
    Example:
      stylegan metrics --network G.safetensors --data ffhq.zip --metrics fid50k_full,kid50k_full \\
          --inception pt_inception-2015-12-05-6726825d.pth
    """
    from stylegan.metrics.metric_main import iter_metrics

    names = _parse_metrics(metric_names)
    dev = get_device(device)
    G = load_G(network, dev)
    kwargs = dict(G=G, dataset=data, num_gen=num_gen, device=dev, batch_size=batch_size, inception=inception,
                  vgg16=vgg16, lpips=lpips, use_cache=not no_cache)
    with user_errors():
        for result in iter_metrics(names, **kwargs):
            _report(result, network, out_path)


def _report(result: dict, network: Path | None, out_path: Path | None) -> None:
    """Print one JSON line (and append it to --out)."""
    line = json.dumps(dict(result, snapshot=str(network) if network else None, timestamp=time.time()))
    click.echo(line)
    if out_path is not None:
        with open(out_path, "a") as f:
            f.write(line + "\n")

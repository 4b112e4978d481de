"""`stylegan metrics`: compute FID/KID/PR/IS/PPL/LS (and the offline *_fmnist metrics) of a generator."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import torch

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
@click.option("--num-gen", type=click.IntRange(min=2), default=None, help="Generated images (default: the metric's).")
@click.option("--inception", **_weights, help="FID Inception weights (pytorch-fid's pt_inception-2015-12-05-*.pth).")
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
@click.option(
    "--download",
    is_flag=True,
    help="Fetch missing feature-network weights into the cache (progress bar, sha256 check). Without it a "
    "missing file is an error that names the file and where to put it.",
)
@click.option(
    "--gpus",
    type=int,
    default=1,
    show_default=True,
    help="Processes: one GPU each on CUDA (NCCL, cuda:0..N-1), or CPU processes (gloo). Under torchrun: its "
    "world size.",
)
@device_option
def metrics(
    network,
    data,
    metric_names,
    num_gen,
    inception,
    vgg16,
    lpips,
    batch_size,
    out_path,
    no_cache,
    download,
    gpus,
    device,
):
    """Compute metrics of a generator against real data, print one JSON line per metric.

    \b
    Example:
      stylegan metrics --network G.safetensors --data ffhq.zip --metrics fid50k_full,kid50k_full \\
          --inception pt_inception-2015-12-05-6726825d.pth --gpus 4
      torchrun --nproc_per_node 4 -m stylegan metrics --network G.safetensors --data ffhq.zip
    """
    from stylegan import distributed as dist_utils

    names = _parse_metrics(metric_names)
    _check_ready(names, dict(inception=inception, vgg16=vgg16, lpips=lpips), download, data)
    job = dict(
        names=names,
        network=network,
        out_path=out_path,
        device=device,
        kwargs=dict(
            dataset=data,
            num_gen=num_gen,
            batch_size=batch_size,
            inception=inception,
            vgg16=vgg16,
            lpips=lpips,
            use_cache=not no_cache,
            download=download,
        ),
    )
    if dist_utils.launched_by_torchrun():
        info = dist_utils.init_from_env(get_device(device).type)
        try:
            _run_rank(info, job)
        finally:
            dist_utils.shutdown()
        return
    dev_type = _check_gpus(gpus, get_device(device))
    if gpus == 1:
        _run_rank(dist_utils.ProcessInfo(), job)
        return
    job["threads"] = max(1, torch.get_num_threads() // gpus)  # the CPU cores shared out, not oversubscribed
    with user_errors():
        dist_utils.spawn(_run_rank, (job,), gpus, dev_type)


def _check_ready(names: list[str], weights: dict, download: bool, data: Path | None) -> None:
    """Packages, weights files and --data of every metric, checked before any image is made (one line each)."""
    from stylegan.metrics import METRICS, MissingDependencyError, check_metrics_ready

    need_data = [n for n in names if METRICS[n].needs_data]
    if need_data and data is None:
        raise click.ClickException(f"{', '.join(need_data)} need real images: pass --data FOLDER_OR_ZIP")
    try:
        check_metrics_ready(names, weights, download)
    except (MissingDependencyError, OSError, ValueError) as err:
        raise click.ClickException(str(err)) from None


def _check_gpus(gpus: int, dev: torch.device) -> str:
    """The device type for --gpus processes, or a one-line error."""
    if gpus < 1:
        raise click.ClickException(f"--gpus {gpus}: use 1 or more processes")
    if gpus > 1 and dev.type not in ("cuda", "cpu"):
        raise click.ClickException(f"--gpus {gpus} needs CUDA or the CPU, not {dev.type}; use --device cpu")
    if dev.type == "cuda" and gpus > torch.cuda.device_count():
        raise click.ClickException(
            f"--gpus {gpus}: only {torch.cuda.device_count()} CUDA GPU(s) are visible; use --gpus "
            f"{torch.cuda.device_count()} or fewer (or --device cpu)"
        )
    return dev.type


def _rank_device(info, device: str) -> torch.device:
    """One process: --device as given; several: the rank's own GPU (cuda:local_rank), or the CPU."""
    dev = get_device(device)
    if info.world_size == 1 or dev.type != "cuda":
        return dev
    if info.local_rank >= torch.cuda.device_count():
        raise click.ClickException(
            f"rank {info.rank} wants cuda:{info.local_rank} but {torch.cuda.device_count()} GPU(s) are visible"
        )
    torch.cuda.set_device(info.local_rank)
    return torch.device("cuda", info.local_rank)


def _run_rank(info, job: dict) -> None:
    """One process's part: load G, compute the metrics together with the other ranks; rank 0 reports."""
    from stylegan.metrics.metric_main import iter_metrics

    if "threads" in job:
        torch.set_num_threads(job["threads"])
    dev = _rank_device(info, job["device"])
    G = load_G(job["network"], dev)
    with user_errors():
        results = iter_metrics(
            job["names"],
            G=G,
            device=dev,
            progress=info.is_main,
            rank=info.rank,
            num_gpus=info.world_size,
            **job["kwargs"],
        )
        for result in results:
            if info.is_main:
                _report(result, job["network"], job["out_path"])


def _report(result: dict, network: Path | None, out_path: Path | None) -> None:
    """Print one JSON line (and append it to --out)."""
    line = json.dumps(dict(result, snapshot=str(network) if network else None, timestamp=time.time()))
    click.echo(line)
    if out_path is not None:
        with open(out_path, "a") as f:
            f.write(line + "\n")

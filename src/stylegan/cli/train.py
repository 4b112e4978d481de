"""`stylegan train`: a thin click wrapper over stylegan.training.train."""

from __future__ import annotations

import json

import click

from stylegan.networks.presets import PRESETS

_UPDATABLE = ("kimg", "snap", "tick", "metrics", "device")


def _metrics_list(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    return () if names in ((), ("none",)) else names


@click.command(context_settings={"show_default": True})
@click.option("--data", type=click.Path(), help="Training images: a folder or .zip (see `stylegan dataset`).")
@click.option("--outdir", default="runs", type=click.Path(file_okay=False), help="Where run folders go.")
@click.option("--cfg", default="auto", type=click.Choice(list(PRESETS)), help="Base configuration.")
@click.option("--gpus", default=1, type=click.IntRange(min=1), help="Processes (GPUs) to spawn.")
@click.option("--batch", type=click.IntRange(min=1), help="Global batch size [default: from --cfg].")
@click.option("--batch-gpu", type=click.IntRange(min=1), help="Images per process per step (accumulate the rest).")
@click.option(
    "--gamma",
    type=click.FloatRange(min=0),
    help="R1 weight [default: from --cfg; stylegan3-t/-r: 0.0002 * resolution^2 / batch].",
)
@click.option("--kimg", default=25000.0, type=click.FloatRange(min=0, min_open=True), help="Length in kimg.")
@click.option("--snap", default=50, type=click.IntRange(min=1), help="Snapshot every N ticks.")
@click.option("--tick", default=4.0, type=click.FloatRange(min=0, min_open=True), help="kimg per tick (stats).")
@click.option("--resume", help="'latest' (newest run in --outdir), a run folder or a training-state-*.pt.")
@click.option("--cond", is_flag=True, help="Condition on dataset.json labels.")
@click.option("--mirror", is_flag=True, help="Add x-flipped copies of the images.")
@click.option("--resolution", type=int, help="Resize images to this side on the fly.")
@click.option("--aug", default="ada", type=click.Choice(["ada", "fixed", "noaug"]), help="Augmentation mode.")
@click.option("--augpipe", default="bgc", help="Augmentation preset.")
@click.option("--p", "p", type=click.FloatRange(0, 1), help="Augment probability (initial for ada, fixed).")
@click.option(
    "--target", default=0.6, type=click.FloatRange(0, 1, min_open=True, max_open=True), help="ADA r_t target."
)
@click.option(
    "--ada-kimg",
    default=500.0,
    type=click.FloatRange(min=0, min_open=True),
    help="ADA speed: kimg for p to move by 1.",
)
@click.option("--seed", default=0, type=int, help="Random seed.")
@click.option("--metrics", default="none", help="Comma-separated metrics at each snapshot, or 'none'.")
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Device.")
@click.option("--fp32", is_flag=True, help="No fp16 layers (fp16 is used only on CUDA anyway).")
@click.option("--cbase", type=click.IntRange(min=1), help="Channel base [default: from --cfg].")
@click.option("--cmax", type=click.IntRange(min=1), help="Max channels per layer [default: 512].")
@click.option("--map-depth", type=click.IntRange(min=1), help="Mapping layers [default: from --cfg].")
@click.option(
    "--num-layers", type=click.IntRange(min=3), help="StyleGAN3 synthesis layers [default: 14]; fewer for CPU runs."
)
@click.option("--mbstd-group", type=click.IntRange(min=1), help="Minibatch-std group size.")
@click.option("--z-dim", default=512, type=click.IntRange(min=1), help="Latent z size.")
@click.option("--w-dim", default=512, type=click.IntRange(min=1), help="Latent w size.")
@click.option("--glr", type=click.FloatRange(min=0, min_open=True), help="G learning rate.")
@click.option("--dlr", type=click.FloatRange(min=0, min_open=True), help="D learning rate.")
@click.option("--ema-kimg", type=click.FloatRange(min=0), help="G_ema half-life in kimg [default: from --cfg].")
@click.option("--pl-weight", type=click.FloatRange(min=0), help="Path-length weight, 0 = off [default: from --cfg].")
@click.option("--style-mixing", type=click.FloatRange(0, 1), help="Style-mixing probability [default: from --cfg].")
@click.option("--desc", help="Suffix for the run folder name.")
@click.option("--dry-run", is_flag=True, help="Print the resolved options and exit.")
@click.pass_context
def train(ctx: click.Context, resume: str | None, dry_run: bool, metrics: str, **kwargs) -> None:
    """Train a StyleGAN2(-ADA), StyleGAN3 (alias-free, T or R) or StyleGAN (2019) generator; writes
    OUTDIR/NNNNN-<desc>/ (snapshots, stats, sample grids). `--resume latest` continues a run exactly (kimg,
    optimizers, EMA, augment p, RNG).
    Ctrl-C (or SIGTERM) stops at the next step with a snapshot; `--resume latest` goes on from there.

    \b
    Examples:
      stylegan train --data faces64.zip --outdir runs --cfg auto --kimg 1000 --mirror --aug ada
      stylegan train --data afhq256.zip --outdir runs --cfg stylegan3-t --batch 32 --gamma 2 --mirror
      stylegan train --outdir runs --resume latest
      torchrun --nproc_per_node 2 -m stylegan train --data faces64.zip --outdir runs
    \b
    On a CPU (the default network is GPU-sized), a small network, and a smoke run of a few seconds:
      stylegan train --data faces32.zip --cfg cifar --batch 32 --cbase 1024 --cmax 64 \\
          --z-dim 64 --w-dim 64 --map-depth 2 --aug noaug --kimg 100
      stylegan train --data faces32.zip --cfg cifar --batch 8 --cbase 256 --cmax 32 \\
          --z-dim 32 --w-dim 32 --map-depth 2 --aug noaug --kimg 0.04 --tick 0.008
      stylegan train --data faces16.zip --cfg stylegan3-t --batch 8 --cbase 512 --cmax 64 --num-layers 6 \\
          --z-dim 64 --w-dim 64 --aug noaug --kimg 1
    """
    from stylegan.data import DatasetError
    from stylegan.training import TrainingDiverged, TrainingInterrupted, TrainingOptions, prepare, train_run
    from stylegan.training.options import OptionsError
    from stylegan.training.state import ResumeError

    kwargs = {k: v for k, v in kwargs.items()}
    opts = TrainingOptions(**kwargs, metrics=_metrics_list(metrics))
    given = {
        name: (opts.metrics if name == "metrics" else kwargs[name])
        for name in _UPDATABLE
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    if not resume and not opts.data:
        raise click.UsageError("--data is required (unless --resume)")
    try:
        if dry_run:
            click.echo(json.dumps(prepare(opts, resume, given)[2], indent=2))
            return
        run_dir = train_run(opts, resume=resume, resume_updates=given)
    except (OptionsError, DatasetError, ResumeError, TrainingDiverged) as err:
        raise click.ClickException(str(err)) from None
    except TrainingInterrupted as err:
        click.echo(str(err), err=True)
        ctx.exit(130)
    except KeyboardInterrupt:
        raise click.ClickException(
            "interrupted without a snapshot of this session; --resume latest continues from the last one saved"
        ) from None
    click.echo(f"done: {run_dir}")

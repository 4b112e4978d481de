"""Starting a run: one process, `--gpus N` (spawned processes) or torchrun; resolving `--resume`."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from stylegan import distributed as dist_utils
from stylegan.device import select_device
from stylegan.training.loop import open_dataset, resume_options, run_description, training_loop
from stylegan.training.options import OptionsError, TrainingOptions, resolve_hyper
from stylegan.training.state import find_resume_state

RESUME_OVERRIDABLE = ("kimg", "snap", "tick", "metrics", "device")


def prepare(
    opts: TrainingOptions, resume: str | None = None, resume_updates: dict | None = None
) -> tuple[TrainingOptions, Path | None, dict, object]:
    """Validates options against the data before any process starts.

    Returns (options, state file to resume or None, a summary of the resolved run for --dry-run, the
    opened dataset).
    For a resumed run the options are those of its config.json, with `resume_updates` (kimg, snap, tick,
    metrics, device) applied.
    """
    state_path = find_resume_state(resume, opts.outdir) if resume else None
    if state_path is not None:
        updates = {k: v for k, v in (resume_updates or {}).items() if k in RESUME_OVERRIDABLE}
        opts = resume_options(state_path, **updates)
    opts.validate()
    _check_metrics(opts.metrics)
    _check_augpipe(opts)
    world = int(os.environ["WORLD_SIZE"]) if dist_utils.launched_by_torchrun() else opts.gpus
    opts = replace(opts, gpus=world)
    _device(opts)
    dataset = open_dataset(opts)
    hyper = resolve_hyper(opts, dataset.resolution, world)
    summary = {
        "options": opts.to_dict(),
        "num_images": len(dataset),
        "resolution": dataset.resolution,
        "channels": dataset.num_channels,
        "c_dim": dataset.label_dim,
        "batch": hyper.batch,
        "batch_gpu": hyper.batch_gpu,
        "rounds": hyper.rounds,
        "gamma": hyper.gamma,
        "run_dir": str(state_path.parent)
        if state_path
        else str(Path(opts.outdir) / f"NNNNN-{run_description(opts, dataset, hyper)}"),
    }
    return opts, state_path, summary, dataset


def _device(opts: TrainingOptions):
    try:
        return select_device(opts.device)
    except ValueError as err:
        raise OptionsError(str(err)) from None


def train(
    opts: TrainingOptions,
    resume: str | None = None,
    resume_updates: dict | None = None,
    progress: bool = True,
) -> Path:
    """Trains a StyleGAN2 per `opts`, continuing a run if `resume` is 'latest' or a path; returns its folder.

    Under torchrun (RANK/WORLD_SIZE set) this process joins the group; with opts.gpus > 1 it spawns that many
    processes (gloo on CPU, NCCL on CUDA).
    """
    opts, state_path, _, dataset = prepare(opts, resume, resume_updates)
    device_type = _device(opts).type
    if dist_utils.launched_by_torchrun():
        info = dist_utils.init_from_env(device_type)
        try:
            return training_loop(opts, info, state_path, progress, dataset)
        finally:
            dist_utils.shutdown()
    if opts.gpus == 1:
        return training_loop(opts, None, state_path, progress, dataset)
    return _spawn(opts, state_path, device_type, progress)


def _spawn(opts: TrainingOptions, state_path: Path | None, device_type: str, progress: bool) -> Path:
    """opts.gpus processes; an error in any rank (e.g. TrainingDiverged) is raised again here, as one line."""
    dist_utils.spawn(_train_rank, (opts, state_path, progress), opts.gpus, device_type)
    from stylegan.training.state import find_resume_state as find

    return find("latest", opts.outdir).parent if state_path is None else state_path.parent


def _train_rank(info, opts: TrainingOptions, state_path, progress: bool) -> None:
    training_loop(opts, info, state_path, progress)


def _check_metrics(names) -> None:
    """--metrics: known names, their packages (scipy for FID) and weights files, checked before training starts."""
    if not names:
        return
    from stylegan.metrics import MissingDependencyError, check_metrics_ready

    try:
        check_metrics_ready(list(names))
    except (MissingDependencyError, OSError, ValueError) as err:
        raise OptionsError(f"--metrics: {err}; or train with --metrics none") from None


def _check_augpipe(opts: TrainingOptions) -> None:
    if opts.aug == "noaug":
        return
    from stylegan.training.augment import augment_config

    try:
        augment_config(opts.augpipe)
    except (ValueError, KeyError) as err:
        raise OptionsError(f"--augpipe {opts.augpipe!r}: {err}") from None

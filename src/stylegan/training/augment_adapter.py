"""Builds the augmentation pipe and ADA controller (stylegan.training.augment) for the loop's options."""

from __future__ import annotations

import torch
from torch import nn

from stylegan.training.options import TrainingOptions


def build_augment_pipe(opts: TrainingOptions, batch: int, device: torch.device):
    """(pipe, controller): None, None for --aug noaug; the pipe alone for fixed; both for ada."""
    if opts.aug == "noaug":
        return None, None
    from stylegan.training.augment import AdaController, AugmentPipe

    pipe: nn.Module = AugmentPipe(opts.augpipe, p=opts.p if opts.p is not None else 0.0)
    pipe = pipe.train().requires_grad_(False).to(device)
    if opts.aug == "fixed":
        return pipe, None
    return pipe, AdaController(
        pipe, batch_size=batch, target=opts.target, interval=opts.ada_interval, kimg=opts.ada_kimg
    )

"""G_ema: an exponential moving average of G's weights with NVIDIA's half-life in kimg and ramp-up."""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch: int, ema_kimg: float, cur_nimg: int, ema_rampup: float | None = None) -> float:
    """The per-step decay: half-life of `ema_kimg` thousand images, capped at cur_nimg * ema_rampup early on.

    Args:
        batch: global batch size (images per step).
        ema_kimg: half-life in thousands of images.
        cur_nimg: images shown so far (before this step).
        ema_rampup: None, or the fraction of cur_nimg the half-life may not exceed (NVIDIA: 0.05).
    """
    half_lives = [ema_kimg * 1000]  # in images
    if ema_rampup is not None:
        half_lives.append(ema_rampup * cur_nimg)
    return 0.5 ** (batch / max(min(half_lives), 1e-8))


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """G_ema <- G + beta * (G_ema - G) for parameters; buffers (w_avg, noise constants) are copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b.detach())

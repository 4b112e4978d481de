"""What every generator family shares: the call conventions of G, the truncation trick and w_avg tracking.

A generator is `synthesis(mapping(z, c))`. The mapping network turns z [N, z_dim] (and an optional label c
[N, c_dim]) into one w per synthesis input, ws [N, num_ws, w_dim]; it also keeps a running mean of w, `w_avg`, that
the truncation trick pulls towards: w' = w_avg + psi (w - w_avg) on the first `cutoff` ws.
"""

from __future__ import annotations

import torch
from torch import nn

NOISE_MODES = ("random", "const", "none")


def check_resolution(img_resolution: int) -> None:
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")


def check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")


def check_ws(ws: torch.Tensor, num_ws: int, w_dim: int) -> None:
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (num_ws, w_dim):
        raise ValueError(f"ws must have shape [N, {num_ws}, {w_dim}], got {list(ws.shape)}")


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick: w_avg + psi (w - w_avg).

    Args:
        ws: [N, num_ws, w_dim] (or a single w [N, w_dim]).
        w_avg: [w_dim], the running mean of w.
        psi: 1 leaves ws unchanged, 0 gives w_avg, negative values mirror through w_avg.
        cutoff: only ws[:, :cutoff] are truncated; None truncates all of them.
    Returns:
        A new tensor shaped like ws.
    """
    pulled = torch.lerp(w_avg.to(ws.dtype), ws, psi)
    if cutoff is None or ws.ndim == 2 or cutoff >= ws.shape[1]:
        return pulled
    keep = torch.arange(ws.shape[1], device=ws.device) >= cutoff  # [num_ws]: True where ws stay as they are
    return torch.where(keep[:, None], ws, pulled)


def track_mean(w_avg: torch.Tensor, w: torch.Tensor, beta: float) -> None:
    """Moves the running mean towards this batch: w_avg <- beta w_avg + (1 - beta) mean(w)."""
    batch_mean = w.detach().mean(dim=0).to(w_avg.dtype)
    w_avg.copy_(torch.lerp(batch_mean, w_avg, beta))


class StyleGenerator(nn.Module):
    """G(z, c) = synthesis(mapping(z, c)) with NVIDIA's call conventions; families supply the two networks.

    Attributes mirror NVIDIA's: z_dim, c_dim, w_dim, num_ws, img_resolution, img_channels, mapping, synthesis.
    """

    def __init__(self, config, synthesis: nn.Module, mapping: nn.Module):
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.num_ws = synthesis.num_ws
        self.synthesis = synthesis
        self.mapping = mapping

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        update_emas: bool = False,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] or None -> images [N, img_channels, R, R], float32, about [-1, 1]."""
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_emas)


def add_stages(module: nn.Module, resolutions: list[int], build) -> None:
    """Registers `build(res)` as `module.b{res}` for each resolution (the names state dicts use)."""
    for name, stage in ((f"b{res}", build(res)) for res in resolutions):
        module.add_module(name, stage)


def stages(module: nn.Module, resolutions: list[int]) -> list[nn.Module]:
    """The modules registered by `add_stages`, in the order of `resolutions`."""
    return [module.get_submodule(f"b{res}") for res in resolutions]

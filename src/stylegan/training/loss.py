"""StyleGAN2 loss: non-saturating logistic, lazy R1, path-length regularisation, style mixing.

The loss owns the regularisers and style mixing (the networks never do). `accumulate_gradients` runs one
phase on one chunk of the batch and calls backward; the training loop sums chunks and steps the optimizers.
Phases: 'Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth' (NVIDIA's names).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")


@dataclass(frozen=True)
class LossConfig:
    """Hyper-parameters of the StyleGAN2 loss (NVIDIA's defaults)."""

    r1_gamma: float = 10.0
    style_mixing_prob: float = 0.9
    pl_weight: float = 2.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01

    def __post_init__(self):
        if self.r1_gamma < 0 or self.pl_weight < 0:
            raise ValueError("r1_gamma (--gamma) and pl_weight must be >= 0")
        if not 0 <= self.style_mixing_prob <= 1:
            raise ValueError(f"style_mixing_prob must be in [0, 1], got {self.style_mixing_prob}")
        if self.pl_batch_shrink < 1:
            raise ValueError(f"pl_batch_shrink must be >= 1, got {self.pl_batch_shrink}")


class StyleGAN2Loss:
    """Computes and back-propagates the losses of one phase; keeps pl_mean and the statistics ADA needs.

    Args:
        G, D: the networks being trained (their gradients accumulate here).
        config: LossConfig.
        augment_pipe: a module applied to every D input (real and fake), or None.
        on_real_logits: called with D's logits on real images in the main D phase (ADA's statistic).
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        config: LossConfig,
        augment_pipe: nn.Module | None = None,
        on_real_logits=None,
    ):
        self.G, self.D, self.config, self.augment_pipe = G, D, config, augment_pipe
        self.on_real_logits = on_real_logits
        device = next(G.parameters()).device
        self.pl_mean = torch.zeros([], device=device)
        self._pl_sum = torch.zeros([], device=device)  # sum of chunk pl means in the current phase
        self._pl_count = 0

    # ---- network calls ------------------------------------------------------------------------------------
    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        """Returns (img [N, C, H, W], ws [N, num_ws, w_dim]) with style-mixing regularisation."""
        ws = self.G.mapping(z, c, update_emas=update_emas)  # [N, num_ws, w_dim]
        if self.config.style_mixing_prob > 0:
            ws = self._mix_styles(ws, z, c)
        img = self.G.synthesis(ws)  # [N, C, H, W]
        return img, ws

    def _mix_styles(self, ws: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        num_ws = ws.shape[1]
        cutoff = int(torch.randint(1, num_ws, [])) if num_ws > 1 else num_ws
        if float(torch.rand([])) >= self.config.style_mixing_prob:
            cutoff = num_ws
        if cutoff == num_ws:
            return ws
        ws2 = self.G.mapping(torch.randn_like(z), c, update_emas=False)
        return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)

    def run_D(self, img: torch.Tensor, c: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        """Augments (when a pipe is set) and returns D logits [N, 1]."""
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c, update_emas=update_emas)

    # ---- phases -------------------------------------------------------------------------------------------
    def accumulate_gradients(
        self,
        phase: str,
        real_img: torch.Tensor,
        real_c: torch.Tensor,
        gen_z: torch.Tensor,
        gen_c: torch.Tensor,
        gain: float,
    ) -> dict[str, torch.Tensor]:
        """Runs `phase` on one chunk and calls backward with loss * gain.

        Args:
            real_img: [N, C, H, W] float in [-1, 1]; real_c, gen_c: [N, c_dim]; gen_z: [N, z_dim].
            gain: the phase interval divided by the number of chunks in the global batch.
        Returns:
            Detached per-chunk means of each loss term computed, by name (e.g. 'G/loss', 'D/r1').
        """
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        stats: dict[str, torch.Tensor] = {}
        if phase in ("Gmain", "Gboth"):
            stats.update(self._g_main(gen_z, gen_c, gain))
        if phase in ("Greg", "Gboth") and self.config.pl_weight > 0:
            stats.update(self._g_pl(gen_z, gen_c, gain))
        if phase in ("Dmain", "Dboth"):
            stats.update(self._d_fake(gen_z, gen_c, gain))
        if phase in ("Dmain", "Dreg", "Dboth"):
            stats.update(self._d_real(real_img, real_c, gain, main=phase != "Dreg", reg=phase != "Dmain"))
        return stats

    def _g_main(self, gen_z, gen_c, gain) -> dict[str, torch.Tensor]:
        gen_img, _ = self.run_G(gen_z, gen_c)
        gen_logits = self.run_D(gen_img, gen_c)
        loss = F.softplus(-gen_logits)  # -log(sigmoid(D(G(z))))
        loss.mean().mul(gain).backward()
        return {"G/loss": loss.detach().mean(), "D/scores_fake": gen_logits.detach().mean()}

    def _g_pl(self, gen_z, gen_c, gain) -> dict[str, torch.Tensor]:
        n = max(gen_z.shape[0] // self.config.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
        pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        (pl_grads,) = torch.autograd.grad((gen_img * pl_noise).sum(), gen_ws, create_graph=True)
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()  # [n]
        # Every chunk of a phase uses the pl_mean from before the phase, so results do not depend on how the
        # batch is split over processes and accumulation rounds; end_phase() folds in the phase mean.
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.config.pl_decay)
        self._pl_sum = self._pl_sum + pl_lengths.detach().mean()
        self._pl_count += 1
        loss = (pl_lengths - pl_mean).square() * self.config.pl_weight  # [n]
        (gen_img[:, 0, 0, 0] * 0 + loss).mean().mul(gain).backward()
        return {
            "G/pl_penalty": (pl_lengths - pl_mean).detach().square().mean(),
            "G/reg": loss.detach().mean(),
        }

    def _d_fake(self, gen_z, gen_c, gain) -> dict[str, torch.Tensor]:
        gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
        gen_logits = self.run_D(gen_img.detach(), gen_c, update_emas=True)
        loss = F.softplus(gen_logits)  # -log(1 - sigmoid(D(G(z))))
        loss.mean().mul(gain).backward()
        return {"D/loss_fake": loss.detach().mean()}

    def _d_real(self, real_img, real_c, gain, main: bool, reg: bool) -> dict[str, torch.Tensor]:
        real_img = real_img.detach().requires_grad_(reg)
        real_logits = self.run_D(real_img, real_c)  # [N, 1]
        stats = {"D/scores_real": real_logits.detach().mean()}
        if self.on_real_logits is not None:  # ADA's r_t: the real logits of the R1 phase count too, as NVIDIA's
            self.on_real_logits(real_logits.detach())
        loss = torch.zeros_like(real_logits)
        if main:
            loss_real = F.softplus(-real_logits)
            loss = loss + loss_real
            stats["D/loss_real"] = loss_real.detach().mean()
            stats["D/signs_real"] = real_logits.detach().sign().mean()
        if reg and self.config.r1_gamma > 0:
            (r1_grads,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True)
            r1_penalty = r1_grads.square().sum([1, 2, 3])  # [N]
            loss = loss + (r1_penalty * (self.config.r1_gamma / 2)).unsqueeze(1)
            stats["D/r1_penalty"] = r1_penalty.detach().mean()
        loss.mean().mul(gain).backward()
        return stats

    # ---- pl_mean bookkeeping ------------------------------------------------------------------------------
    def pop_pl_update(self) -> tuple[torch.Tensor, int]:
        """(sum of chunk pl-length means, chunk count) since the last call; for an all-reduce across ranks."""
        out = (self._pl_sum, self._pl_count)
        self._pl_sum, self._pl_count = torch.zeros_like(self.pl_mean), 0
        return out

    def update_pl_mean(self, mean_pl_length: torch.Tensor) -> None:
        """pl_mean <- lerp(pl_mean, mean path length of the phase over all chunks and ranks, pl_decay)."""
        self.pl_mean.copy_(self.pl_mean.lerp(mean_pl_length.to(self.pl_mean.device), self.config.pl_decay))

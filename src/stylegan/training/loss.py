"""StyleGAN2 loss: non-saturating logistic, lazy R1, path-length regularisation, style mixing.

Per sample, with D's logit D(.) and the generated image G(z):
    G main   softplus(-D(G(z)))                          (= -log sigmoid D(G(z)))
    D main   softplus(D(G(z))) + softplus(-D(x))
    R1       gamma / 2 * ||grad_x D(x)||^2               (Mescheder et al. 2018, on reals only)
    PL       pl_weight * (a - mu)^2,  a = ||J_w^T y||_2,  y ~ N(0, I) / sqrt(H W)
where J_w is the Jacobian of the image with respect to w (its norm averaged over the num_ws copies) and mu an
exponential moving average of a (Karras et al. 2020, eq. 4). Each term is averaged over the chunk.

StyleGAN3-R (Karras et al. 2021) blurs every image D sees, real or generated, with a Gaussian whose width fades
linearly to zero early in training (`blur_sigma_at`); the blur sits before the augmentation, inside R1's graph.
The fakes D is trained on are made with update_emas, so G's running statistics (w_avg, magnitude_ema) track them.

The loss owns the regularisers and style mixing (the networks never do). `accumulate_gradients` runs one
phase on one chunk of the batch and calls backward; the training loop sums chunks and steps the optimizers.
Phases: 'Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth' (NVIDIA's names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The terms each phase is made of ("real" and "r1" share one D pass over the real images).
PHASE_TERMS = {
    "Gmain": ("gen",),
    "Greg": ("pl",),
    "Gboth": ("gen", "pl"),
    "Dmain": ("fake", "real"),
    "Dreg": ("r1",),
    "Dboth": ("fake", "real", "r1"),
}
PHASES = tuple(PHASE_TERMS)


@dataclass(frozen=True)
class LossConfig:
    """Hyper-parameters of the StyleGAN2 loss (NVIDIA's defaults)."""

    r1_gamma: float = 10.0
    style_mixing_prob: float = 0.9
    pl_weight: float = 2.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    blur_sigma: float = 0.0  # D-input blur at cur_nimg 0 (half width at half maximum, pixels) ...
    blur_fade_kimg: float = 0.0  # ... reaching 0 at this kimg; 0 = no blur

    def __post_init__(self):
        if self.r1_gamma < 0 or self.pl_weight < 0:
            raise ValueError("r1_gamma (--gamma) and pl_weight must be >= 0")
        if self.blur_sigma < 0 or self.blur_fade_kimg < 0:
            raise ValueError("blur_sigma and blur_fade_kimg must be >= 0")
        if not 0 <= self.style_mixing_prob <= 1:
            raise ValueError(f"style_mixing_prob must be in [0, 1], got {self.style_mixing_prob}")
        if self.pl_batch_shrink < 1:
            raise ValueError(f"pl_batch_shrink must be >= 1, got {self.pl_batch_shrink}")


# ---- the regularisers as functions of a graph ------------------------------------------------------------


def path_lengths(img: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    """a = ||J_w^T y||_2 per sample, y ~ N(0, I) / sqrt(H W) drawn here; differentiable (create_graph).

    Args:
        img: [N, C, H, W] images computed from ws.
        ws: [N, num_ws, w_dim]; the squared norm is summed over w_dim and averaged over num_ws.
    Returns:
        [N] path lengths.
    """
    height, width = img.shape[-2:]
    y = torch.randn_like(img) * (height * width) ** -0.5
    (jty,) = torch.autograd.grad(torch.sum(img * y), ws, create_graph=True)  # J_w^T y: [N, num_ws, w_dim]
    return (jty * jty).sum(-1).mean(-1).sqrt()


def r1_squared_norms(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """||grad_x D(x)||^2 per sample [N]; `real` [N, C, H, W] must require grad; differentiable (create_graph)."""
    (grad_x,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad_x.flatten(1).pow(2).sum(1)


def blur_sigma_at(config: LossConfig, cur_nimg: int) -> float:
    """The D-input blur after cur_nimg images: blur_sigma, falling linearly to 0 at blur_fade_kimg."""
    if config.blur_fade_kimg <= 0:
        return 0.0
    remaining = 1 - cur_nimg / (config.blur_fade_kimg * 1000)
    return config.blur_sigma * max(remaining, 0.0)


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable blur with taps 2^-(x/sigma)^2 at x = -r..r, r = floor(3 sigma), normalised; zeros outside.

    sigma is the half width at half maximum in pixels; below 1/3 there is a single tap and img comes back as is.
    Args:
        img: [N, C, H, W]. Returns the same shape, differentiable in img.
    """
    radius = math.floor(3 * sigma)
    if radius < 1:
        return img
    offsets = torch.arange(-radius, radius + 1, device=img.device, dtype=img.dtype)
    taps = torch.exp2(-(offsets / sigma).square())
    taps = taps / taps.sum()  # [2r + 1]
    n, c, h, w = img.shape
    flat = img.reshape(n * c, 1, h, w)
    flat = F.conv2d(flat, taps.view(1, 1, 1, -1), padding=(0, radius))  # along W
    flat = F.conv2d(flat, taps.view(1, 1, -1, 1), padding=(radius, 0))  # along H
    return flat.reshape(n, c, h, w)


def mixing_cutoff(num_ws: int, prob: float) -> int:
    """Where the second latent takes over (1..num_ws-1) with probability `prob`, else num_ws (no mixing)."""
    if num_ws < 2:
        return num_ws
    cutoff = int(torch.randint(1, num_ws, []))
    return cutoff if float(torch.rand([])) < prob else num_ws


class StyleGAN2Loss:
    """Computes and back-propagates the losses of one phase; keeps pl_mean and the statistics ADA needs.

    Args:
        G, D: the networks being trained (their gradients accumulate here).
        config: LossConfig.
        augment_pipe: a module applied to every D input (real and fake), or None.
        on_real_logits: called with D's logits on real images in every D pass over reals (ADA's statistic).
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
        self.blur_sigma = 0.0  # of the phase being run (set from cur_nimg by accumulate_gradients)
        ref = next(G.parameters())
        self.pl_mean = torch.tensor(0.0, device=ref.device, dtype=ref.dtype)  # mu, the running mean path length
        self._pl_sum = torch.zeros_like(self.pl_mean)  # sum of chunk mean path lengths this phase
        self._pl_count = 0

    # ---- network calls ------------------------------------------------------------------------------------
    def generate(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        """(img [N, C, H, W], ws [N, num_ws, w_dim]); with style_mixing_prob, ws after the cutoff come from
        a second random z. update_emas moves G's running statistics (w_avg; StyleGAN3's magnitude_ema)."""
        mapping = self.G.mapping
        ws = mapping(z, c, update_emas=update_emas)
        if self.config.style_mixing_prob > 0:
            cut = mixing_cutoff(ws.shape[1], self.config.style_mixing_prob)
            if cut < ws.shape[1]:
                other = mapping(torch.randn_like(z), c, update_emas=False)
                ws = torch.cat([ws[:, :cut], other[:, cut:]], dim=1)
        return self.G.synthesis(ws, update_emas=update_emas), ws

    def discriminate(self, img: torch.Tensor, c: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        """D logits [N, 1] of the images, blurred (while blur_sigma > 0), then augmented (when a pipe is set)."""
        seen = gaussian_blur(img, self.blur_sigma) if self.blur_sigma > 0 else img
        seen = seen if self.augment_pipe is None else self.augment_pipe(seen)
        return self.D(seen, c, update_emas=update_emas)

    # ---- phases -------------------------------------------------------------------------------------------
    def active_terms(self, phase: str) -> tuple[str, ...]:
        """The terms `phase` computes; a regulariser with weight 0 is left out (a phase may then be empty)."""
        if phase not in PHASE_TERMS:
            raise ValueError(f"unknown phase {phase!r}")
        off = {"pl"} if self.config.pl_weight == 0 else set()
        off |= {"r1"} if self.config.r1_gamma == 0 else set()
        return tuple(t for t in PHASE_TERMS[phase] if t not in off)

    def accumulate_gradients(
        self,
        phase: str,
        real_img: torch.Tensor,
        real_c: torch.Tensor,
        gen_z: torch.Tensor,
        gen_c: torch.Tensor,
        gain: float,
        cur_nimg: int = 0,
    ) -> dict[str, torch.Tensor]:
        """Runs `phase` on one chunk and calls backward with loss * gain.

        Args:
            real_img: [N, C, H, W] float in [-1, 1]; real_c, gen_c: [N, c_dim]; gen_z: [N, z_dim].
            gain: the phase interval divided by the number of chunks in the global batch.
            cur_nimg: images shown before this step (sets the D-input blur).
        Returns:
            Detached per-chunk means of each loss term computed, by name (e.g. 'G/loss', 'D/r1_penalty').
        """
        terms = self.active_terms(phase)
        self.blur_sigma = blur_sigma_at(self.config, cur_nimg)
        stats: dict[str, torch.Tensor] = {}
        if "gen" in terms:
            stats.update(self._generator_term(gen_z, gen_c, gain))
        if "pl" in terms:
            stats.update(self._path_length_term(gen_z, gen_c, gain))
        if "fake" in terms:
            stats.update(self._fake_term(gen_z, gen_c, gain))
        if "real" in terms or "r1" in terms:
            stats.update(self._real_terms(real_img, real_c, gain, "real" in terms, "r1" in terms))
        return stats

    def _generator_term(self, z, c, gain) -> dict[str, torch.Tensor]:
        logits = self.discriminate(self.generate(z, c)[0], c)
        loss = F.softplus(-logits)
        loss.mean().mul(gain).backward()
        return {"G/loss": loss.detach().mean(), "D/scores_fake": logits.detach().mean()}

    def _path_length_term(self, z, c, gain) -> dict[str, torch.Tensor]:
        keep = max(len(z) // self.config.pl_batch_shrink, 1)
        img, ws = self.generate(z[:keep], c[:keep])
        a = path_lengths(img, ws)  # [keep]
        # mu for this chunk: the phase-start pl_mean moved one step toward this chunk's mean length. The
        # phase-wide update waits for update_pl_mean(), so chunks and ranks all start from the same mu.
        mu = torch.lerp(self.pl_mean, a.mean(), self.config.pl_decay)
        self._pl_sum = self._pl_sum + a.detach().mean()
        self._pl_count += 1
        deviation = (a - mu).square()  # [keep]
        penalty = self.config.pl_weight * deviation
        penalty.mean().mul(gain).backward()
        return {"G/pl_penalty": deviation.detach().mean(), "G/reg": penalty.detach().mean()}

    def _fake_term(self, z, c, gain) -> dict[str, torch.Tensor]:
        img = self.generate(z, c, update_emas=True)[0].detach()
        loss = F.softplus(self.discriminate(img, c, update_emas=True))
        loss.mean().mul(gain).backward()
        return {"D/loss_fake": loss.detach().mean()}

    def _real_terms(self, real_img, real_c, gain, main: bool, r1: bool) -> dict[str, torch.Tensor]:
        x = real_img.detach().requires_grad_(r1)
        logits = self.discriminate(x, real_c)  # [N, 1]
        if self.on_real_logits is not None:  # ADA's r_t counts the logits of every pass over reals
            self.on_real_logits(logits.detach())
        stats = {"D/scores_real": logits.detach().mean()}
        per_sample = torch.zeros_like(logits[:, 0])  # [N]
        if main:
            fool = F.softplus(-logits[:, 0])
            per_sample = per_sample + fool
            stats["D/loss_real"] = fool.detach().mean()
            stats["D/signs_real"] = logits.detach().sign().mean()
        if r1:
            norms = r1_squared_norms(logits, x)  # [N]
            per_sample = per_sample + norms * (self.config.r1_gamma / 2)
            stats["D/r1_penalty"] = norms.detach().mean()
        per_sample.mean().mul(gain).backward()
        return stats

    # ---- pl_mean bookkeeping ------------------------------------------------------------------------------
    def pop_pl_update(self) -> tuple[torch.Tensor, int]:
        """(sum of chunk pl-length means, chunk count) since the last call; for an all-reduce across ranks."""
        out = (self._pl_sum, self._pl_count)
        self._pl_sum, self._pl_count = torch.zeros_like(self.pl_mean), 0
        return out

    def update_pl_mean(self, mean_pl_length: torch.Tensor) -> None:
        """pl_mean <- pl_mean + pl_decay * (mean path length of the phase over all chunks and ranks - pl_mean)."""
        target = mean_pl_length.to(self.pl_mean.device)
        self.pl_mean.add_(self.config.pl_decay * (target - self.pl_mean))

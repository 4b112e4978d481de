"""Perceptual path length (Karras et al. 2019): LPIPS distance of images eps apart along interpolations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of a and b [N, D] at t [N, 1]; unit-norm result.

    On the great circle through the unit vectors a', b' (angle omega = acos(a'.b')): the point at angle t*omega
    from a' is cos(t omega) a' + sin(t omega) u, with u the unit vector of the circle's plane orthogonal to a'.
    This equals the textbook sin((1-t) omega)/sin(omega) a' + sin(t omega)/sin(omega) b' without dividing by
    sin(omega).
    """
    a, b = _unit(a), _unit(b)
    cos_omega = torch.sum(a * b, dim=-1, keepdim=True).clamp(-1, 1)
    u = _unit(b - cos_omega * a)
    angle = t * torch.acos(cos_omega)
    return _unit(torch.cos(angle) * a + torch.sin(angle) * u)


def filter_and_mean(dist: np.ndarray) -> float:
    """Mean of the distances between the 1st ('lower') and 99th ('higher') percentiles, both included."""
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(lo <= dist) & (dist <= hi)].mean())


def interpolated_ws(G, z: torch.Tensor, c: torch.Tensor, t: torch.Tensor, eps: float, space: str) -> torch.Tensor:
    """ws [2N, num_ws, w_dim] for latents at t and t + eps between z[0::2] and z[1::2]."""
    z0, z1 = z[0::2], z[1::2]
    c0 = c[0::2]
    if space == "z":
        zt = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + eps)])
        return G.mapping(zt, torch.cat([c0, c0]))
    w0, w1 = G.mapping(torch.cat([z0, z1]), torch.cat([c0, c0])).chunk(2)
    t = t[:, :, None]
    return torch.cat([w0.lerp(w1, t), w0.lerp(w1, t + eps)])


def prepare_for_lpips(img: torch.Tensor, crop: bool) -> torch.Tensor:
    """Generator images [N, C, H, W] in [-1, 1] -> LPIPS input: face crop, area-downsampled to <= 256, RGB."""
    if crop:  # the central face region of FFHQ-aligned images, as in the paper
        c = img.shape[2] // 8
        img = img[:, :, c * 3 : c * 7, c * 2 : c * 6]
    factor = img.shape[2] // 256
    if factor > 1:
        img = torch.nn.functional.avg_pool2d(img, factor)
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    return img


@torch.no_grad()
def ppl_distances(
    G,
    lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    c: torch.Tensor,
    *,
    space: str,
    sampling: str,
    epsilon: float,
    crop: bool,
    generator: torch.Generator,
) -> torch.Tensor:
    """Scaled LPIPS distances [N] for one batch; c [N, c_dim] are the conditioning labels."""
    n, device = len(c), c.device
    z = torch.randn([2 * n, G.z_dim], generator=generator, device="cpu").to(device)
    t = torch.rand([n, 1], generator=generator, device="cpu").to(device) * (1.0 if sampling == "full" else 0.0)
    ws = interpolated_ws(G, z, c.repeat_interleave(2, dim=0), t, epsilon, space)
    img = prepare_for_lpips(G.synthesis(ws, noise_mode="const").float(), crop)
    img0, img1 = img.chunk(2)
    return lpips(img0, img1) / epsilon**2

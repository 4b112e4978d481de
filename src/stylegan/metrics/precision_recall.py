"""Improved precision and recall (Kynkäänniemi et al. 2019): k-NN hyperspheres around each feature."""

from __future__ import annotations

import torch


def knn_radii(features: torch.Tensor, k: int = 3, batch_size: int = 10000) -> torch.Tensor:
    """Distance from each feature [N, D] to its k-th nearest other feature -> [N]."""
    radii = []
    for i in range(0, len(features), batch_size):
        dist = torch.cdist(features[i : i + batch_size], features)  # [B, N], includes the 0 to itself
        radii.append(dist.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def manifold_coverage(
    manifold: torch.Tensor, probes: torch.Tensor, k: int = 3, batch_size: int = 10000
) -> float:
    """Fraction of `probes` inside at least one k-NN ball of `manifold` (balls include their boundary)."""
    radii = knn_radii(manifold, k, batch_size)
    inside = []
    for i in range(0, len(probes), batch_size):
        dist = torch.cdist(probes[i : i + batch_size], manifold)  # [B, N_manifold]
        inside.append((dist <= radii[None]).any(dim=1))
    return torch.cat(inside).float().mean().item()


def precision_recall(real: torch.Tensor, gen: torch.Tensor, k: int = 3, batch_size: int = 10000) -> dict:
    """Precision: generated samples on the real manifold; recall: real samples on the generated manifold."""
    real, gen = real.double(), gen.double()
    return {
        "precision": manifold_coverage(real, gen, k, batch_size),
        "recall": manifold_coverage(gen, real, k, batch_size),
    }

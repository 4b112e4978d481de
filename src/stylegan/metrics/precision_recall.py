"""Improved precision and recall (Kynkäänniemi et al. 2019): k-NN hyperspheres around each feature."""

from __future__ import annotations

import torch

BLOCK_ELEMENTS = 1 << 27  # distances held at once (512 MB in float32)


def _rows(num_cols: int, batch_size: int | None) -> int:
    return batch_size if batch_size is not None else max(1, BLOCK_ELEMENTS // max(num_cols, 1))


def knn_radii(features: torch.Tensor, k: int = 3, batch_size: int | None = None) -> torch.Tensor:
    """Distance from each feature [N, D] to its k-th nearest other feature -> [N]."""
    rows = _rows(len(features), batch_size)
    radii = []
    for i in range(0, len(features), rows):
        dist = torch.cdist(features[i : i + rows], features)  # [B, N], includes the 0 to itself
        radii.append(dist.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def manifold_coverage(manifold: torch.Tensor, probes: torch.Tensor, k: int = 3, batch_size: int | None = None) -> float:
    """Fraction of `probes` inside at least one k-NN ball of `manifold` (balls include their boundary)."""
    radii = knn_radii(manifold, k, batch_size)
    rows = _rows(len(manifold), batch_size)
    inside = []
    for i in range(0, len(probes), rows):
        dist = torch.cdist(probes[i : i + rows], manifold)  # [B, N_manifold]
        inside.append((dist <= radii[None]).any(dim=1))
    return torch.cat(inside).float().mean().item()


def precision_recall(real: torch.Tensor, gen: torch.Tensor, k: int = 3, batch_size: int | None = None) -> dict:
    """Precision: generated samples on the real manifold; recall: real samples on the generated manifold.

    Distances are computed in the features' dtype, in blocks of about 2^27 distances unless `batch_size` rows.
    """
    return {
        "precision": manifold_coverage(real, gen, k, batch_size),
        "recall": manifold_coverage(gen, real, k, batch_size),
    }

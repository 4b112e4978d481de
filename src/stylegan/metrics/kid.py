"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with the kernel (x.y / D + 1)^3."""

from __future__ import annotations

import numpy as np


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between samples x [m, D] and y [n, D] under k(a, b) = (a.b / D + 1)^3."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def kid_from_features(
    real: np.ndarray,
    gen: np.ndarray,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int | None = None,
) -> float:
    """Mean of `num_subsets` unbiased MMD^2 estimates on random subsets of min(N_real, N_gen, max_subset_size)
    samples."""
    rng = np.random.default_rng(seed)
    real = np.asarray(real, dtype=np.float64)
    gen = np.asarray(gen, dtype=np.float64)
    m = min(len(real), len(gen), max_subset_size)
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        total += polynomial_mmd2(x, y)
    return total / num_subsets

"""Fréchet distance between two Gaussians fitted to features (FID, Heusel et al. 2017)."""

from __future__ import annotations

import warnings

import numpy as np


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features [N, D] -> mean [D] and covariance [D, D] (unbiased, float64)."""
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)); the imaginary part of the root is numerical noise."""
    import scipy.linalg

    with warnings.catch_warnings(record=True):  # rank-deficient covariances (few samples, dead units): expected
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if isinstance(covmean, tuple):  # older SciPy returns (root, error estimate)
        covmean = covmean[0]
    diff = np.square(mu1 - mu2).sum()
    return float(np.real(diff + np.trace(sigma1 + sigma2 - 2 * covmean)))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets [N1, D] and [N2, D]."""
    return frechet_distance(*feature_stats(features1), *feature_stats(features2))

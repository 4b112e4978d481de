"""Metric formulas against independent NumPy references and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.metrics.fid import feature_stats, fid_from_features, frechet_distance
from stylegan.metrics.inception_score import inception_score
from stylegan.metrics.kid import kid_from_features, polynomial_mmd2
from stylegan.metrics.linear_separability import conditional_entropy, linear_separability
from stylegan.metrics.ppl import filter_and_mean, ppl_distances, slerp
from stylegan.metrics.precision_recall import precision_recall

pytest.importorskip("scipy")


def _features(seed: int, n: int = 300, d: int = 12, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + shift


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """FID via eigen-decompositions: Tr (S1 S2)^(1/2) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a.T), np.cov(b.T)
    vals, vecs = np.linalg.eigh(s1)
    root1 = vecs @ np.diag(np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(middle, 0, None)).sum())


def test_fid_identical_sets_is_zero():
    a = _features(0)
    assert abs(fid_from_features(a, a)) < 1e-6


def test_fid_symmetric_and_matches_reference():
    a, b = _features(1), _features(2, shift=0.5)
    ab, ba = fid_from_features(a, b), fid_from_features(b, a)
    assert ab == pytest.approx(ba, rel=1e-7)
    assert ab == pytest.approx(_fid_reference(a, b), rel=1e-7)


def test_fid_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, 1.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    # |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2 = 4 + (1 - 3)^2 + (2 - 1)^2
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(9.0)
    mu, sigma = feature_stats(_features(3, d=4))
    assert mu.shape == (4,) and sigma.shape == (4, 4)


def _mmd2_loops(x: np.ndarray, y: np.ndarray) -> float:
    k = lambda a, b: (a @ b / len(a) + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_loop_reference():
    x, y = _features(4, n=15, d=5), _features(5, n=12, d=5, shift=0.3)
    assert polynomial_mmd2(x, y) == pytest.approx(_mmd2_loops(x, y), rel=1e-9)
    # one subset holding all samples is the plain estimate, whatever the order drawn
    assert kid_from_features(y, x[:12], num_subsets=1, max_subset_size=1000, seed=0) == pytest.approx(
        polynomial_mmd2(x[:12], y), rel=1e-9
    )


def test_kid_is_unbiased_for_equal_distributions():
    rng = np.random.default_rng(6)
    estimates = [polynomial_mmd2(rng.normal(size=(8, 3)), rng.normal(size=(8, 3))) for _ in range(4000)]
    mean, sem = np.mean(estimates), np.std(estimates) / np.sqrt(len(estimates))
    assert abs(mean) < 4 * sem  # the biased (V-statistic) estimate would sit well above 0
    biased = [
        np.mean((a @ a.T / 3 + 1) ** 3) + np.mean((b @ b.T / 3 + 1) ** 3) - 2 * np.mean((a @ b.T / 3 + 1) ** 3)
        for a, b in (rng.normal(size=(2, 8, 3)) for _ in range(500))
    ]
    assert np.mean(biased) > 10 * sem
    assert (
        kid_from_features(
            _features(7, n=400), _features(8, n=400, shift=1.0), num_subsets=10, max_subset_size=100, seed=0
        )
        > 0.1
    )


def test_precision_recall_constructed_case():
    real = torch.arange(10.0)[:, None]  # k=3 radii: 3 at the ends, 2 inside
    gen = torch.tensor([[4.5], [20.0], [-10.0], [9.5]])
    pr = precision_recall(real, gen, k=3)
    assert pr["precision"] == 0.5  # 4.5 and 9.5 lie in real balls; 20 and -10 do not
    assert pr["recall"] == 1.0  # the 4 generated points' 3-NN balls are huge and cover every real point
    same = precision_recall(real, real.clone(), k=3)
    assert same == {"precision": 1.0, "recall": 1.0}


def test_precision_recall_matches_numpy_bruteforce():
    real, gen = _features(9, n=60, d=4), _features(10, n=50, d=4, shift=0.7)

    def coverage(manifold, probes, k=3):
        d_mm = np.linalg.norm(manifold[:, None] - manifold[None], axis=-1)
        radii = np.sort(d_mm, axis=1)[:, k]
        d_pm = np.linalg.norm(probes[:, None] - manifold[None], axis=-1)
        return float((d_pm <= radii[None]).any(axis=1).mean())

    pr = precision_recall(torch.from_numpy(real), torch.from_numpy(gen), k=3, batch_size=7)
    assert pr["precision"] == pytest.approx(coverage(real, gen))
    assert pr["recall"] == pytest.approx(coverage(gen, real))


def test_inception_score_known_logits():
    k = 10
    confident = np.eye(k)[np.arange(200) % k] * 50.0  # sure of each class, classes balanced
    assert inception_score(confident, num_splits=1)[0] == pytest.approx(k, rel=1e-6)
    assert inception_score(np.zeros((100, k)), num_splits=10) == pytest.approx((1.0, 0.0))
    mean, std = inception_score(confident, num_splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std < 1e-6
    # two equiprobable classes predicted with p = (0.9, 0.1) and (0.1, 0.9): exp(KL) = exp(ln 2 - H(0.9))
    logits = np.log(np.array([[0.9, 0.1], [0.1, 0.9]] * 50))
    h = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))
    assert inception_score(logits, num_splits=1)[0] == pytest.approx(np.exp(np.log(2) - h))


def test_ppl_filter_percentiles():
    d = np.arange(1.0, 201.0)
    lo, hi = np.sort(d)[1], np.sort(d)[198]  # 1st percentile 'lower', 99th 'higher' of 200 values
    assert filter_and_mean(d) == pytest.approx(d[(d >= lo) & (d <= hi)].mean())
    assert filter_and_mean(np.r_[np.ones(198), 1e9, -1e9]) == pytest.approx(1.0)


def test_slerp_endpoints_and_norm():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    torch.testing.assert_close(slerp(a, b, torch.zeros(4, 1)), a / a.norm(dim=1, keepdim=True))
    torch.testing.assert_close(slerp(a, b, torch.ones(4, 1)), b / b.norm(dim=1, keepdim=True), atol=1e-5, rtol=0)
    assert torch.allclose(slerp(a, b, torch.rand(4, 1)).norm(dim=1), torch.ones(4))


class LinearG(torch.nn.Module):
    """img = A w, mapping = identity to num_ws: PPL in w under squared L2 is ||A (w1 - w0)||^2 exactly."""

    z_dim = w_dim = 3
    c_dim = 0
    num_ws = 2
    img_resolution, img_channels = 4, 1

    def __init__(self) -> None:
        super().__init__()
        self.A = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))

    def mapping(self, z, c):
        return z[:, None].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const"):
        return (ws[:, 0] @ self.A.T).view(-1, 1, 4, 4)


def test_ppl_distances_scale_by_epsilon():
    G = LinearG()
    sq_l2 = lambda a, b: (a - b).square().flatten(1).sum(1)  # noqa: E731
    gen = torch.Generator().manual_seed(2)
    c = torch.zeros(5, 0)
    dist = ppl_distances(G, sq_l2, c, space="w", sampling="end", epsilon=1e-4, crop=False, generator=gen)
    z = torch.randn(10, 3, generator=torch.Generator().manual_seed(2)).double()
    expected = 3 * ((z[1::2] - z[0::2]) @ G.A.double().T).square().sum(1)  # gray -> 3 equal RGB channels
    torch.testing.assert_close(dist.double(), expected, rtol=2e-3, atol=0)  # float32 images, eps = 1e-4


def test_linear_separability_extremes():
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(400, 4, generator=gen)
    separable = torch.sigmoid(8 * (z[:, 0] - z[:, 2]))[:, None]
    assert linear_separability(z, separable) == pytest.approx(1.0, abs=0.05)
    random = torch.rand(400, 1, generator=gen)
    assert linear_separability(z, random) > 1.6  # near exp(ln 2) = 2 when z says nothing about the label
    y = np.array([0, 0, 1, 1, 0, 1], dtype=bool)
    assert conditional_entropy(y, y) == 0.0
    assert conditional_entropy(y, np.zeros(6, dtype=bool)) == pytest.approx(np.log(2))

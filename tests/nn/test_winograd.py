"""Winograd F(m x m, 3 x 3) against F.conv2d in float64 (the oracle), and conv.py's routing to it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.nn import conv, derived, winograd

SHAPES = [  # (C_in, C_out, H, W): odd channel counts, sizes not divisible by the tile, 1x1 images
    (1, 1, 1, 1), (3, 5, 4, 4), (7, 4, 9, 13), (16, 8, 33, 17), (5, 6, 2, 5), (12, 3, 64, 64), (9, 11, 6, 31),
]  # fmt: skip


def _reference(x, w, s, d, b):
    """float64 F.conv2d(x * s, w, padding=1) * d + b."""
    y = F.conv2d(x * s[:, None, None], w, padding=1)
    return y * d[:, None, None] + b[:, None, None]


@pytest.mark.parametrize("m", sorted(winograd.POINTS))
def test_transforms_compose_to_a_correlation(m):
    a_t, g, b_t = winograd.transforms(m)
    rng = np.random.default_rng(m)
    taps, data = rng.standard_normal(3), rng.standard_normal(m + 2)
    expected = np.correlate(data, taps, mode="valid")  # y[a] = sum_k taps[k] data[a + k]
    np.testing.assert_allclose(a_t @ ((g @ taps) * (b_t @ data)), expected, atol=1e-12)


@pytest.mark.parametrize("m", sorted(winograd.POINTS))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("band_bytes", [1, winograd.BAND_BYTES])  # one tile row per band, or the default
def test_conv3x3_equals_conv2d_float64(m, shape, band_bytes):
    c_in, c_out, h, w = shape
    gen = torch.Generator().manual_seed(h * 100 + w)
    x = torch.randn(1, c_in, h, w, generator=gen, dtype=torch.float64)
    weight = torch.randn(c_out, c_in, 3, 3, generator=gen, dtype=torch.float64)
    s, d, b = (torch.randn(c, generator=gen, dtype=torch.float64) for c in (c_in, c_out, c_out))
    u = winograd.weight_transform(weight, m)
    y = winograd.conv3x3(x, u, m, in_scale=s, out_scale=d, bias=b, band_bytes=band_bytes)
    torch.testing.assert_close(y, _reference(x, weight, s, d, b), rtol=0, atol=1e-11)
    assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("m", sorted(winograd.POINTS))
def test_conv3x3_without_scales_or_bias(m):
    x = torch.randn(1, 6, 10, 7, dtype=torch.float64)
    weight = torch.randn(4, 6, 3, 3, dtype=torch.float64)
    y = winograd.conv3x3(x, winograd.weight_transform(weight, m), m)
    torch.testing.assert_close(y, F.conv2d(x, weight, padding=1), rtol=0, atol=1e-11)


@pytest.mark.parametrize(("m", "bar"), [(2, 1e-6), (4, 2e-5)])
def test_float32_error_relative_to_the_output_peak(m, bar):
    """fp32 rounding on a 256-channel layer: F(2) stays within 1e-6 * max|y| (direct: ~3e-7), F(4), whose transforms
    have entries up to 5, reaches ~1e-5 * max|y|: above the 5e-6 clamp parity bar, so it is never a default."""
    gen = torch.Generator().manual_seed(m)
    x = torch.randn(1, 256, 32, 32, generator=gen, dtype=torch.float64).mul(2).relu()  # post-lrelu-like
    weight = torch.randn(256, 256, 3, 3, generator=gen, dtype=torch.float64)
    s = torch.randn(256, generator=gen, dtype=torch.float64)
    d = torch.rsqrt((weight * s[None, :, None, None]).square().sum((1, 2, 3)))
    b = torch.zeros(256, dtype=torch.float64)
    ref = _reference(x, weight, s, d, b)
    fast = winograd.conv3x3(x.float(), winograd.weight_transform(weight.float(), m), m, in_scale=s.float(),
                            out_scale=d.float())  # fmt: skip
    assert (fast.double() - ref).abs().max() <= bar * ref.abs().max()


@pytest.fixture
def routed(monkeypatch):
    """conv.py's fast path on for every width and size, counting its calls."""
    calls = []
    original = winograd.conv3x3
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(winograd, "MIN_SIZE", 1)
    monkeypatch.setattr(winograd, "conv3x3", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


@pytest.mark.parametrize(("tile", "atol"), [(2, 1e-5), (4, 1e-4)])
def test_modulated_conv2d_routes_and_matches_float64(routed, monkeypatch, tile, atol):
    monkeypatch.setattr(winograd, "TILE", tile)
    gen = torch.Generator().manual_seed(tile)
    x = torch.randn(2, 8, 12, 12, generator=gen).contiguous(memory_format=torch.channels_last)
    weight, styles = torch.randn(6, 8, 3, 3, generator=gen), torch.randn(2, 8, generator=gen)
    bias, noise = torch.randn(6, generator=gen), torch.randn(1, 1, 12, 12, generator=gen)
    with torch.no_grad():
        y = conv.modulated_conv2d(x, weight, styles, noise, padding=1, bias=bias, act="lrelu", fused=True)
    assert len(routed) == 2  # once per sample
    x64, w64, s64 = x.double(), weight.double(), styles.double()
    w_n = w64[None] * s64[:, None, :, None, None]  # [N, C_out, C_in, 3, 3]
    w_n = w_n * torch.rsqrt(w_n.square().sum((2, 3, 4), keepdim=True) + 1e-8)
    ref = torch.cat([F.conv2d(x64[n : n + 1], w_n[n], padding=1) for n in range(2)]) + noise.double()
    ref = F.leaky_relu(ref + bias.double()[:, None, None], 0.2) * np.sqrt(2)
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=atol)


def test_autograd_and_other_layers_take_the_direct_path(routed, monkeypatch):
    monkeypatch.setattr(winograd, "TILE", 2)
    x, styles = torch.randn(1, 4, 8, 8), torch.randn(1, 4)
    weight = torch.randn(4, 4, 3, 3, requires_grad=True)
    conv.modulated_conv2d(x, weight, styles, padding=1)  # gradient wanted
    with torch.no_grad():
        conv.modulated_conv2d(x, weight, styles, padding=0)  # not 'same'
        conv.modulated_conv2d(x, weight, styles, padding=1, up=2, resample_filter=torch.ones(4, 4) / 16)
        conv.modulated_conv2d(x.double(), weight.double(), styles.double(), padding=1)  # float64
    monkeypatch.setattr(winograd, "TILE", None)
    with torch.no_grad():
        conv.modulated_conv2d(x, weight, styles, padding=1)  # path switched off
    assert routed == []


def test_cached_weight_transform_follows_in_place_updates():
    weight = torch.randn(3, 2, 3, 3)
    first = winograd.cached_weight_transform(weight, 2)
    assert winograd.cached_weight_transform(weight, 2) is first
    with torch.no_grad():
        weight.mul_(2)
    torch.testing.assert_close(winograd.cached_weight_transform(weight, 2), 2 * first)
    torch.testing.assert_close(winograd.cached_weight_transform(weight, 4), winograd.weight_transform(weight, 4))
    second = winograd.cached_weight_transform(weight, 2)
    assert winograd.cached_weight_transform(weight, 4) is winograd.cached_weight_transform(weight, 4)
    assert winograd.cached_weight_transform(weight, 2) is second  # tile sizes keep their own entries
    keys = [(id(weight), ("winograd", 2)), (id(weight), ("winograd", 4))]
    assert all(key in derived._CACHE for key in keys)
    del weight
    assert not any(key in derived._CACHE for key in keys)


def test_demodulation_energy_follows_the_weight():
    """The cached per-filter energies of a parameter follow in-place updates and a swap of its storage."""
    weight = torch.nn.Parameter(torch.randn(4, 3, 3, 3), requires_grad=False)
    styles = torch.randn(2, 3)
    expected = lambda: torch.rsqrt((weight[None] * styles[:, None, :, None, None]).square().sum((2, 3, 4)) + 1e-8)  # noqa: E731
    torch.testing.assert_close(conv._demodulation(weight, styles), expected())
    weight.mul_(3)
    torch.testing.assert_close(conv._demodulation(weight, styles), expected())
    weight.data = torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(conv._demodulation(weight, styles), expected())


@pytest.mark.parametrize("m", sorted(winograd.POINTS))
def test_factored_programs_equal_the_transform_matrices(m):
    """The tensor programs conv3x3 runs (factored for F(4, 3)) apply exactly Bᵀ and Aᵀ from `transforms`."""
    a_t, _, b_t = winograd.transforms(m)
    forward, backward = winograd._programs(m)
    for matrix, program in ((b_t, forward), (a_t, backward)):
        taps = [torch.tensor([float(j == k) for k in range(m + 2)], dtype=torch.float64) for j in range(m + 2)]
        outs = [torch.empty(m + 2, dtype=torch.float64) for _ in range(matrix.shape[0])]
        program(taps, outs, [torch.empty(m + 2, dtype=torch.float64) for _ in range(4)])
        np.testing.assert_array_equal(torch.stack(outs).numpy(), matrix)  # column j: the image of unit tap j

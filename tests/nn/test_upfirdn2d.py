"""upfirdn2d and its uses against a naive NumPy transcription of the definition.

The oracle does literally what the definition says: build the zero-filled upsampled image, pad (or crop), slide the
flipped filter over it with explicit loops, and keep every down-th sample.
"""

import itertools

import numpy as np
import pytest
import torch

from stylegan.nn.upfirdn2d import (
    downsample2d,
    filter2d,
    filter_size,
    parse_padding,
    setup_filter,
    upfirdn2d,
    upsample2d,
)

RNG = np.random.default_rng(0)


def naive_upfirdn2d(x, f, up=(1, 1), down=(1, 1), pads=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """x [N, C, H, W], f [fh, fw] (a separable [taps] is expanded first)."""
    f = np.asarray(f, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)
    (ux, uy), (dx, dy) = up, down
    n, c, h, w = x.shape
    zero_filled = np.zeros((n, c, h * uy, w * ux))
    zero_filled[:, :, ::uy, ::ux] = x
    px0, px1, py0, py1 = pads
    padded = np.pad(zero_filled, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    padded = padded[:, :, max(-py0, 0) : padded.shape[2] - max(-py1, 0), max(-px0, 0) : padded.shape[3] - max(-px1, 0)]
    fh, fw = f.shape
    kernel = f if flip_filter else f[::-1, ::-1]  # sliding window = correlation; a convolution flips
    out = np.zeros((n, c, padded.shape[2] - fh + 1, padded.shape[3] - fw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = (padded[:, :, i : i + fh, j : j + fw] * kernel).sum(axis=(2, 3))
    return out[:, :, ::dy, ::dx] * gain


def _check(x, f, up, down, pads, flip, gain=1.0, grad=False):
    xt = torch.from_numpy(x).requires_grad_(grad)
    out = upfirdn2d(xt, torch.from_numpy(np.asarray(f)), up=up, down=down, padding=pads, flip_filter=flip, gain=gain)
    up2 = up if isinstance(up, tuple) else (up, up)
    down2 = down if isinstance(down, tuple) else (down, down)
    ref = naive_upfirdn2d(x, f, up2, down2, parse_padding(pads), flip, gain)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-10, atol=1e-10)


ASYM = RNG.standard_normal((3, 2))  # non-symmetric, non-square: orientation and axis mix-ups show
BINOMIAL = setup_filter([1, 3, 3, 1]).double().numpy()
SEPARABLE = RNG.standard_normal(8)


@pytest.mark.parametrize(
    "up,down",
    [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1), (1, 3), ((2, 1), (1, 1)), ((1, 3), (2, 1)), ((3, 2), (1, 2))],
)
@pytest.mark.parametrize("pads", [0, (1, 2), (2, 1, 0, 3), (-1, 2, 1, -2), (3, -2, -1, 0)])
@pytest.mark.parametrize("flip", [False, True])
def test_general_filter_matches_definition(up, down, pads, flip):
    x = RNG.standard_normal((2, 3, 5, 6))
    _check(x, ASYM, up, down, pads, flip, gain=1.7)


@pytest.mark.parametrize("up,down,pads", [(1, 1, 1), (1, 2, 1), (2, 1, (2, 1, 2, 1)), (1, 1, (0, 2, 3, -1)), (2, 1, 0)])
@pytest.mark.parametrize("grad", [False, True])
def test_binomial_filter_shortcuts_match_definition(up, down, pads, grad):
    """The CPU shortcuts (box averages, bilinear) are taken without autograd; with it, the general path."""
    x = RNG.standard_normal((1, 4, 7, 8))
    for gain in (1.0, 4.0, 2.5):
        _check(x, BINOMIAL, up, down, pads, False, gain, grad)


@pytest.mark.parametrize("up,down,pads", [(1, 1, 3), (2, 1, (4, 3, 1, 2)), (1, 2, (-1, 3, 2, 2))])
def test_separable_filter_matches_its_outer_product(up, down, pads):
    x = RNG.standard_normal((1, 2, 9, 7))
    f = setup_filter(SEPARABLE, normalize=False)
    assert f.ndim == 1
    _check(x, f.double().numpy(), up, down, pads, False)


def test_identity_filter_is_pure_resampling():
    x = RNG.standard_normal((1, 2, 4, 5))
    out = upfirdn2d(torch.from_numpy(x), None, up=2, padding=(0, -1, 1, 0))
    np.testing.assert_allclose(out.numpy(), naive_upfirdn2d(x, [[1.0]], (2, 2), (1, 1), (0, -1, 1, 0)))


def test_setup_filter_conventions():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    np.testing.assert_allclose(f.numpy(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)
    assert setup_filter([1] * 8).shape == (8,)  # 8+ taps: separable by default
    assert setup_filter([1] * 8, separable=False).shape == (8, 8)
    assert setup_filter([1, 2], separable=True).shape == (2,)
    assert torch.allclose(setup_filter([1, 2, 1], gain=4).sum(), torch.tensor(4.0))
    assert torch.allclose(setup_filter([1] * 8, gain=4).sum(), torch.tensor(2.0))  # per axis: sqrt(gain)
    assert torch.equal(setup_filter([1, 2, 4], flip_filter=True), setup_filter([4, 2, 1]))
    assert torch.equal(setup_filter([2.0, 6.0], normalize=False), torch.tensor([[4.0, 12.0], [12.0, 36.0]]))
    assert setup_filter(None).shape == (1, 1)
    assert filter_size(setup_filter(ASYM)) == (2, 3) and filter_size(None) == (1, 1)
    with pytest.raises(ValueError):
        setup_filter(ASYM, separable=True)


def test_parse_padding():
    assert parse_padding(2) == (2, 2, 2, 2)
    assert parse_padding((1, 3)) == (1, 1, 3, 3)
    assert parse_padding([1, 2, 3, 4]) == (1, 2, 3, 4)
    with pytest.raises(ValueError):
        parse_padding((1, 2, 3))


@pytest.mark.parametrize("taps,factor", list(itertools.product([[1, 3, 3, 1], [1, 2, 1], [1] * 9, [2.0, 1.0]], [2, 3])))
@pytest.mark.parametrize("grad", [False, True])
def test_resampling_helpers_are_upfirdn_with_centring_pads(taps, factor, grad):
    """Same size / exactly factor x larger / smaller; explicit pads (before gets the odd sample) and gains."""
    x = RNG.standard_normal((1, 2, 6, 6))
    xt = torch.from_numpy(x).requires_grad_(grad)
    f = setup_filter(taps)
    fd = f.double().numpy()
    k = len(taps)
    same = (k // 2, (k - 1) // 2)
    extra_same = (same[0] + 1, same[1], same[0], same[1] + 2)
    up = ((k + factor - 1) // 2, (k - factor) // 2)
    down = ((k - factor + 1) // 2, (k - factor) // 2)
    cases = [
        (filter2d(xt, f, padding=(1, 0, 0, 2)), naive_upfirdn2d(x, fd, pads=extra_same)),
        (upsample2d(xt, f, up=factor), naive_upfirdn2d(x, fd, (factor,) * 2, pads=up * 2, gain=factor**2)),
        (downsample2d(xt, f, down=factor), naive_upfirdn2d(x, fd, down=(factor,) * 2, pads=down * 2)),
    ]
    for out, ref in cases:
        np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-10, atol=1e-10)
    assert cases[1][0].shape[-1] == 6 * factor and cases[2][0].shape[-1] == 6 // factor


def test_float32_channels_last_keeps_values():
    x = torch.randn(1, 8, 16, 16).to(memory_format=torch.channels_last)
    f = setup_filter([1, 3, 3, 1])
    with torch.no_grad():
        for op in (filter2d, upsample2d, downsample2d):
            ref = op(x.double().contiguous(), f.double())
            torch.testing.assert_close(op(x, f).double(), ref, rtol=1e-5, atol=1e-5)

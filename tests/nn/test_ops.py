"""Ops: known values, and first and second derivatives in float64 (R1 and path-length regularisation need both)."""

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from stylegan.nn.bias_act import bias_act
from stylegan.nn.conv import conv2d_resample, modulated_conv2d
from stylegan.nn.layers import MinibatchStdLayer, normalize_2nd_moment
from stylegan.nn.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

F14 = setup_filter([1, 3, 3, 1])


def _rand(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def test_setup_filter_normalised_and_separable_rule():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and math.isclose(f.sum().item(), 1.0, rel_tol=1e-6)
    assert setup_filter([1] * 8).shape == (8,)  # 8+ taps: separable
    assert torch.allclose(setup_filter([1, 2, 1], gain=4).sum(), torch.tensor(4.0))


def test_upfirdn2d_against_numpy_reference():
    x = np.random.RandomState(0).randn(2, 3, 5, 6)
    f = np.array([[1.0, 2.0, 0.5], [0.0, 1.0, -1.0]])
    # NumPy reference: zero-insert, pad, true 2-D convolution (flip), downsample.
    up, down, pad = 2, 2, (2, 1, 1, 2)
    u = np.zeros((2, 3, 10, 12))
    u[:, :, ::2, ::2] = x
    u = np.pad(u, ((0, 0), (0, 0), (pad[2], pad[3]), (pad[0], pad[1])))
    fk = f[::-1, ::-1]
    out_h, out_w = u.shape[2] - f.shape[0] + 1, u.shape[3] - f.shape[1] + 1
    ref = np.zeros((2, 3, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            ref[:, :, i, j] = (u[:, :, i : i + 2, j : j + 3] * fk).sum(axis=(2, 3))
    ref = ref[:, :, ::down, ::down]
    out = upfirdn2d(torch.from_numpy(x), torch.from_numpy(f), up=up, down=down, padding=pad)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)


def test_resampling_shapes_and_dc_gain():
    x = torch.ones(1, 2, 8, 8, dtype=torch.float64)
    assert upsample2d(x, F14).shape == (1, 2, 16, 16)
    assert downsample2d(x, F14).shape == (1, 2, 4, 4)
    assert filter2d(x, F14).shape == (1, 2, 8, 8)
    # DC is preserved away from the borders.
    assert torch.allclose(upsample2d(x, F14)[..., 4:12, 4:12], torch.ones(1, 2, 8, 8, dtype=torch.float64))
    assert torch.allclose(downsample2d(x, F14)[..., 1:3, 1:3], torch.ones(1, 2, 2, 2, dtype=torch.float64))


def test_bias_act_semantics():
    x = torch.tensor([[-1.0, 2.0]])
    out = bias_act(x, torch.tensor([0.5, -0.5]), act="lrelu", clamp=1.0)
    expected = torch.tensor([[-0.5 * 0.2 * math.sqrt(2), 1.0]])
    assert torch.allclose(out, expected)
    assert torch.equal(bias_act(x), x)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
def test_conv2d_resample_grads(up, down):
    x, w = _rand(1, 2, 4, 4), _rand(3, 2, 3, 3)
    f = F14.double()
    fn = lambda x, w: conv2d_resample(x, w, f, up=up, down=down, padding=1, flip_weight=(up == 1))  # noqa: E731
    assert gradcheck(fn, (x, w), fast_mode=True)
    assert gradgradcheck(fn, (x, w), fast_mode=True)


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv2d_grads_and_equivalence_to_grouped_form(up):
    x, w, s = _rand(2, 2, 3, 3), _rand(3, 2, 3, 3), _rand(2, 2)
    noise = _rand(1, 1, 3 * up, 3 * up)
    f = F14.double()
    def fn(x, w, s, n):
        return modulated_conv2d(x, w, s, noise=n, up=up, padding=1, resample_filter=f, flip_weight=(up == 1))

    assert gradcheck(fn, (x, w, s, noise), fast_mode=True)
    assert gradgradcheck(fn, (x, w, s, noise), fast_mode=True)
    # The per-sample (grouped) weight form gives the same result.
    with torch.no_grad():
        wm = w[None] * s[:, None, :, None, None]
        wm = wm * (wm.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        ref = (
            torch.cat(
                [
                    conv2d_resample(x[i : i + 1], wm[i], f, up=up, padding=1, flip_weight=(up == 1))
                    for i in range(2)
                ]
            )
            + noise
        )
        assert torch.allclose(fn(x, w, s, noise), ref, atol=1e-10)


def test_bias_act_and_layers_grads():
    x, b = _rand(2, 3, 2, 2), _rand(3)
    assert gradgradcheck(lambda x, b: bias_act(x, b, act="lrelu", clamp=0.5), (x, b))
    assert gradgradcheck(lambda x: normalize_2nd_moment(x), (_rand(3, 5),))
    assert gradgradcheck(lambda x: MinibatchStdLayer(2)(x), (_rand(4, 2, 2, 2),))
    assert gradgradcheck(lambda x: upfirdn2d(x, F14.double(), up=2, down=1, padding=1), (_rand(1, 1, 3, 3),))


def test_minibatch_std_groups():
    x = torch.randn(8, 4, 2, 2)
    y = MinibatchStdLayer(4)(x)
    assert y.shape == (8, 5, 2, 2)
    # samples n and n+2 share a group (n mod 2)
    assert torch.equal(y[0, 4], y[2, 4]) and not torch.equal(y[0, 4], y[1, 4])
    with pytest.raises(ValueError, match="divisible"):
        MinibatchStdLayer(4)(torch.randn(6, 4, 2, 2))

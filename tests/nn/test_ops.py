"""Ops: known values, and first and second derivatives in float64 (R1 and path-length regularisation need both).

Values against the definitions: test_upfirdn2d.py and test_conv.py."""

import math

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
def test_modulated_conv2d_grads(up):
    x, w, s = _rand(2, 2, 3, 3), _rand(3, 2, 3, 3), _rand(2, 2)
    noise = _rand(1, 1, 3 * up, 3 * up)
    f = F14.double()

    def fn(x, w, s, n):
        return modulated_conv2d(x, w, s, noise=n, up=up, padding=1, resample_filter=f, flip_weight=(up == 1))

    assert gradcheck(fn, (x, w, s, noise), fast_mode=True)
    assert gradgradcheck(fn, (x, w, s, noise), fast_mode=True)


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


@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv2d_with_epilogue_grads(fused):
    """Folding the activation gain and bias into the weights keeps first and second derivatives."""
    x, w, s, b = _rand(1, 2, 3, 3), _rand(3, 2, 3, 3), _rand(1, 2), _rand(3)
    f = F14.double()

    def fn(x, w, s, b):
        return modulated_conv2d(
            x, w, s, up=2, padding=1, resample_filter=f, flip_weight=False, fused=fused, bias=b, act="lrelu", clamp=0.8
        )

    assert gradcheck(fn, (x, w, s, b), fast_mode=True)
    assert gradgradcheck(fn, (x, w, s, b), fast_mode=True)

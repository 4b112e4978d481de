"""conv2d_resample, modulated_conv2d, bias_act and the layers against naive NumPy versions of their definitions."""

import math

import numpy as np
import pytest
import torch
from tests.nn.test_upfirdn2d import naive_upfirdn2d

from stylegan.nn.bias_act import ACTIVATIONS, bias_act
from stylegan.nn.conv import _binomial_up_by_phases, _transposed_by_phases, conv2d_resample, modulated_conv2d
from stylegan.nn.layers import Conv2dLayer, FullyConnectedLayer, MinibatchStdLayer, normalize_2nd_moment
from stylegan.nn.upfirdn2d import setup_filter

RNG = np.random.default_rng(1)
BINOMIAL = setup_filter([1, 3, 3, 1]).double().numpy()
ASYM = RNG.standard_normal((3, 2))


def naive_conv(x, w, groups=1):
    """Valid correlation, loops over taps: x [N, C_in, H, W], w [C_out, C_in / groups, kh, kw]."""
    n, c_in, h, w_ = x.shape
    c_out, per_group, kh, kw = w.shape
    out = np.zeros((n, c_out, h - kh + 1, w_ - kw + 1))
    for o in range(c_out):
        g = o // (c_out // groups)
        xs = x[:, g * per_group : (g + 1) * per_group]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i : i + out.shape[2], j : j + out.shape[3]]
                out[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, i, j])
    return out


def centring(taps, up, down):
    if up > 1:
        return (taps + up - 1) // 2, (taps - up) // 2
    if down > 1:
        return (taps - down + 1) // 2, (taps - down) // 2
    return 0, 0


def naive_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """Zero-fill by up, pad (padding + f's centring pads), filter with w then f (gain up²), keep every down-th."""
    f = np.ones((1, 1)) if f is None else f
    fh, fw = f.shape
    px0, px1, py0, py1 = padding
    (ax0, ax1), (ay0, ay1) = centring(fw, up, down), centring(fh, up, down)
    n, c, h, w_ = x.shape
    filled = np.zeros((n, c, h * up, w_ * up))
    filled[:, :, ::up, ::up] = x
    pads = (px0 + ax0, px1 + ax1, py0 + ay0, py1 + ay1)
    padded = naive_upfirdn2d(filled, [[1.0]], pads=pads)  # pure padding / cropping
    y = naive_conv(padded, w if flip_weight else w[:, :, ::-1, ::-1], groups)
    if up > 1 or down > 1:
        y = naive_upfirdn2d(y, f, flip_filter=flip_filter, gain=up * up)
    return y[:, :, ::down, ::down]


CONV_CASES = [
    # up, down, w shape [C_out, C_in / groups, kh, kw], groups, padding (x0, x1, y0, y1), f
    (1, 1, (4, 3, 3, 3), 1, (1, 1, 1, 1), None),
    (1, 1, (4, 3, 3, 2), 1, (2, 0, -1, 1), None),
    (1, 1, (4, 2, 1, 1), 2, (0, 0, 0, 0), None),
    (2, 1, (4, 3, 3, 3), 1, (1, 1, 1, 1), BINOMIAL),
    (2, 1, (4, 3, 3, 3), 1, (1, 1, 1, 1), ASYM),
    (2, 1, (4, 3, 2, 3), 1, (0, 2, 1, 0), BINOMIAL),
    (2, 1, (4, 3, 4, 5), 1, (3, 0, 2, 4), BINOMIAL),
    (2, 1, (6, 1, 3, 3), 3, (1, 1, 1, 1), BINOMIAL),
    (2, 1, (4, 3, 1, 1), 1, (0, 0, 0, 0), BINOMIAL),
    (3, 1, (2, 3, 3, 3), 1, (1, 1, 1, 1), ASYM),
    (1, 2, (4, 3, 3, 3), 1, (1, 1, 1, 1), BINOMIAL),
    (1, 2, (4, 3, 3, 3), 1, (0, 1, 2, 0), ASYM),
    (1, 2, (4, 3, 1, 1), 1, (0, 0, 0, 0), BINOMIAL),
    (1, 3, (6, 1, 3, 3), 3, (1, 1, 1, 1), ASYM),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("flip_weight", [True, False])
@pytest.mark.parametrize("flip_filter", [False, True])
@pytest.mark.parametrize("grad", [False, True])
def test_conv2d_resample_matches_definition(case, flip_weight, flip_filter, grad):
    up, down, w_shape, groups, padding, f = case
    x = RNG.standard_normal((2, w_shape[1] * groups, 5, 6))
    w = RNG.standard_normal(w_shape)
    ft = None if f is None else torch.from_numpy(f)
    xt = torch.from_numpy(x).requires_grad_(grad)
    out = conv2d_resample(xt, torch.from_numpy(w), ft, up, down, padding, groups, flip_weight, flip_filter)
    ref = naive_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kernel", [(3, 3), (2, 5), (4, 4), (5, 2)])
@pytest.mark.parametrize("crop", [(0, 0), (1, 1), (1, 0), (0, 2)])
@pytest.mark.parametrize("correlation", [True, False])
def test_transposed_convolution_by_phases(kernel, crop, correlation):
    """The four phase convolutions equal F.conv_transpose2d of stride 2 (the oracle), any kernel size and crop."""
    gen = torch.Generator().manual_seed(kernel[0] * 10 + kernel[1])
    x = torch.randn(1, 3, 5, 6, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 3, *kernel, generator=gen, dtype=torch.float64)
    applied = w.flip([2, 3]) if correlation else w  # the kernel conv_transpose2d applies as stored
    ref = torch.nn.functional.conv_transpose2d(x, (applied * 2.5).transpose(0, 1), stride=2, padding=crop)
    torch.testing.assert_close(_transposed_by_phases(x, w, crop, 2.5, correlation), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fir", [[1, 1, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]])
@pytest.mark.parametrize("band_bytes", [1, 5000, 1 << 30])  # one output row per band; two rows; the whole image
@pytest.mark.parametrize("kernel", [(3, 3), (4, 2)])  # odd and even transposed-output sizes
def test_binomial_upsampling_band_by_band(fir, band_bytes, kernel):
    """The phases, interleaved and filtered band by band, equal the naive [1, 3, 3, 1] filter of the whole
    transposed output."""
    gen = torch.Generator().manual_seed(len(fir) + band_bytes)
    x = torch.randn(1, 3, 15, 14, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 3, *kernel, generator=gen, dtype=torch.float64)
    t = torch.nn.functional.conv_transpose2d(x, w.flip([2, 3]).transpose(0, 1), stride=2).numpy()
    ref = naive_upfirdn2d(t, BINOMIAL * 64, pads=fir)
    y = _binomial_up_by_phases(x, w, (0, 0), 1.0, True, fir, band_bytes=band_bytes)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_conv2d_resample_bias_and_float32_channels_last():
    x = torch.randn(1, 8, 9, 9).to(memory_format=torch.channels_last)
    w, b, f = torch.randn(5, 8, 3, 3), torch.randn(5), setup_filter([1, 3, 3, 1])
    for up, down, flip in ((2, 1, False), (1, 2, True), (1, 1, True)):
        xd, wd, fd = x.double().numpy(), w.double().numpy(), f.double().numpy()
        ref = naive_conv2d_resample(xd, wd, fd, up, down, (1,) * 4, 1, flip, False) + b.double().numpy()[:, None, None]
        with torch.no_grad():
            out = conv2d_resample(x, w, f, up, down, 1, flip_weight=flip, bias=b)
        np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        conv2d_resample(x, w, f, up=2, down=2)


def naive_bias_act(x, b, act, alpha, gain, clamp):
    y = x + b.reshape(1, -1, *([1] * (x.ndim - 2)))
    y = {"linear": y, "relu": np.maximum(y, 0), "lrelu": np.where(y >= 0, y, alpha * y), "tanh": np.tanh(y)}[act]
    y = y * gain
    return y if clamp is None else np.clip(y, -clamp, clamp)


@pytest.mark.parametrize("act", ["linear", "relu", "lrelu", "tanh"])
@pytest.mark.parametrize("inplace", [False, True])
def test_bias_act_order_and_default_gains(act, inplace):
    x, b = RNG.standard_normal((2, 3, 4, 4)) * 3, RNG.standard_normal(3)
    alpha, gain = (0.2, math.sqrt(2)) if act in ("lrelu", "relu") else (0.0, 1.0)
    for clamp in (None, 1.5):
        with torch.no_grad():
            out = bias_act(torch.from_numpy(x.copy()), torch.from_numpy(b), act=act, clamp=clamp, inplace=inplace)
        np.testing.assert_allclose(out.numpy(), naive_bias_act(x, b, act, alpha, gain, clamp), rtol=1e-12)
    assert ACTIVATIONS["lrelu"].def_gain == math.sqrt(2) and ACTIVATIONS["lrelu"].def_alpha == 0.2
    out = bias_act(torch.from_numpy(x[:, :, 0, 0]), torch.from_numpy(b), act="lrelu", alpha=0.1, gain=0.5)
    np.testing.assert_allclose(out.numpy(), naive_bias_act(x[:, :, 0, 0], b, "lrelu", 0.1, 0.5, None))


def naive_modulated(x, w, s, noise, up, padding, f, demodulate, flip_weight, bias, act, gain, clamp):
    out = []
    for n in range(x.shape[0]):
        wn = w * s[n][None, :, None, None]
        if demodulate:
            wn = wn / np.sqrt((wn**2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
        pads = (padding,) * 4
        out.append(naive_conv2d_resample(x[n : n + 1], wn, f, up, 1, pads, 1, flip_weight, False))
    y = np.concatenate(out) + (0 if noise is None else noise)
    return naive_bias_act(y, bias, act, 0.2, gain, clamp)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("up,kernel,demodulate", [(1, 3, True), (2, 3, True), (1, 1, False), (1, 1, True)])
@pytest.mark.parametrize("fused", [None, True, False])
@pytest.mark.parametrize("grad", [False, True])
def test_modulated_conv2d_matches_definition(batch, up, kernel, demodulate, fused, grad):
    x = RNG.standard_normal((batch, 4, 5, 5))
    w, s = RNG.standard_normal((3, 4, kernel, kernel)), RNG.standard_normal((batch, 4)) + 1
    noise, bias = RNG.standard_normal((batch, 1, 5 * up, 5 * up)), RNG.standard_normal(3)
    padding, flip = kernel // 2, up == 1
    t = {k: torch.from_numpy(v) for k, v in dict(x=x, w=w, s=s, noise=noise, bias=bias).items()}
    t["x"].requires_grad_(grad)
    for act, gain, clamp in (("lrelu", None, 0.7), ("linear", 2.0, None), ("tanh", None, None)):
        out = modulated_conv2d(
            t["x"], t["w"], t["s"], t["noise"], up=up, padding=padding, resample_filter=torch.from_numpy(BINOMIAL),
            demodulate=demodulate, flip_weight=flip, fused=fused, bias=t["bias"], act=act, gain=gain, clamp=clamp,
        )  # fmt: skip
        g = ACTIVATIONS[act].def_gain if gain is None else gain
        ref = naive_modulated(x, w, s, noise, up, padding, BINOMIAL, demodulate, flip, bias, act, g, clamp)
        np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-9, atol=1e-9)


def test_modulated_conv2d_fp16_guard_cancels_in_demodulation():
    """The half-precision rescaling of weights and styles leaves the demodulated result unchanged."""
    from stylegan.nn.conv import _demodulation, _fp16_safe

    w, s = torch.randn(5, 4, 3, 3, dtype=torch.float64) * 30, torch.randn(2, 4, dtype=torch.float64) * 50
    w2, s2 = _fp16_safe(w, s)
    assert w2.flatten(1).norm(dim=1).allclose(torch.ones(5, dtype=torch.float64)) and s2.abs().amax() <= 1
    full = w[None] * s[:, None, :, None, None] * _demodulation(w, s)[:, :, None, None, None]
    safe = w2[None] * s2[:, None, :, None, None] * _demodulation(w2, s2)[:, :, None, None, None]
    torch.testing.assert_close(full, safe, rtol=1e-6, atol=1e-9)


def test_fully_connected_layer_equalised_lr():
    layer = FullyConnectedLayer(6, 4, activation="lrelu", lr_multiplier=0.01, bias_init=1).double()
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert np.allclose(b, 1.0) and layer.weight_gain == pytest.approx(0.01 / math.sqrt(6))
    x = RNG.standard_normal((3, 6))
    ref = naive_bias_act(x @ (w * 0.01 / math.sqrt(6)).T, b * 0.01, "lrelu", 0.2, math.sqrt(2), None)
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(), ref, rtol=1e-12)
    linear = FullyConnectedLayer(6, 4, lr_multiplier=2.0).double()
    ref = x @ (linear.weight.detach().numpy() * 2 / math.sqrt(6)).T + linear.bias.detach().numpy() * 2
    np.testing.assert_allclose(linear(torch.from_numpy(x)).detach().numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
def test_conv2d_layer(up, down):
    layer = Conv2dLayer(3, 4, 3, activation="lrelu", up=up, down=down, conv_clamp=0.5).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = RNG.standard_normal((2, 3, 6, 6))
    w = layer.weight.detach().numpy() / math.sqrt(27)
    conv = naive_conv2d_resample(x, w, BINOMIAL, up, down, (1,) * 4, 1, up == 1, False)
    for gain in (1.0, math.sqrt(0.5)):
        ref = naive_bias_act(conv, layer.bias.detach().numpy(), "lrelu", 0.2, math.sqrt(2) * gain, 0.5 * gain)
        np.testing.assert_allclose(layer(torch.from_numpy(x), gain=gain).detach().numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("group_size,num_channels,batch", [(4, 1, 8), (2, 2, 6), (None, 1, 3), (8, 1, 4)])
def test_minibatch_std_matches_loops(group_size, num_channels, batch):
    x = RNG.standard_normal((batch, 4, 3, 2))
    out = MinibatchStdLayer(group_size, num_channels)(torch.from_numpy(x)).numpy()
    members = batch if group_size is None else min(group_size, batch)
    groups = batch // members
    np.testing.assert_array_equal(out[:, :4], x)
    per = 4 // num_channels
    for n in range(batch):
        same_group = x[[m for m in range(batch) if m % groups == n % groups]]  # [G, C, H, W]
        for k in range(num_channels):
            block = same_group[:, k * per : (k + 1) * per]
            expected = np.sqrt(((block - block.mean(axis=0)) ** 2).mean(axis=0) + 1e-8).mean()
            np.testing.assert_allclose(out[n, 4 + k], expected, rtol=1e-12)


def test_normalize_2nd_moment():
    x = RNG.standard_normal((3, 5)) * 4
    ref = x / np.sqrt((x**2).mean(axis=1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(normalize_2nd_moment(torch.from_numpy(x)).numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("up", [1, 2])
def test_cached_weight_forms_follow_in_place_updates(up):
    """Low-resolution CPU inference packs a parameter's weight (and its phase taps) once per weight state: after an
    in-place update (an optimizer step) or a swap of its storage the output follows, against a float64 oracle."""
    gen = torch.Generator().manual_seed(up)
    weight = torch.nn.Parameter(torch.randn(16, 8, 3, 3, generator=gen), requires_grad=False)
    x = torch.randn(1, 8, 4, 4, generator=gen).contiguous(memory_format=torch.channels_last)
    styles, f = torch.randn(1, 8, generator=gen), setup_filter([1, 3, 3, 1])

    def check():
        with torch.no_grad():
            y = modulated_conv2d(x, weight, styles, up=up, padding=1, resample_filter=f, flip_weight=up == 1)
            ref = modulated_conv2d(x.double(), weight.detach().double().clone(), styles.double(), up=up, padding=1,
                                   resample_filter=f.double(), flip_weight=up == 1, fused=False)  # fmt: skip
        torch.testing.assert_close(y.double(), ref, rtol=0, atol=1e-5)

    check()
    check()  # from the cache
    with torch.no_grad():
        weight.mul_(-0.5)
    check()
    weight.data = torch.randn(16, 8, 3, 3, generator=gen)
    check()


@pytest.mark.parametrize("up", [1, 2])
def test_low_resolution_batch_in_one_convolution(up):
    """A batch of 3 through the scaled-activation path (shared, packed weight) equals a float64 oracle per sample."""
    gen = torch.Generator().manual_seed(10 + up)
    weight = torch.nn.Parameter(torch.randn(16, 8, 3, 3, generator=gen), requires_grad=False)
    x = torch.randn(3, 8, 4, 4, generator=gen).contiguous(memory_format=torch.channels_last)
    styles, bias, f = torch.randn(3, 8, generator=gen), torch.randn(16, generator=gen), setup_filter([1, 3, 3, 1])
    kwargs = dict(up=up, padding=1, flip_weight=up == 1, bias=bias, act="lrelu")
    with torch.no_grad():
        y = modulated_conv2d(x, weight, styles, resample_filter=f, **kwargs)
        w64, f64, kwargs["bias"] = weight.detach().double().clone(), f.double(), bias.double()
        for n in range(3):
            one = slice(n, n + 1)
            s64 = styles[one].double()
            ref = modulated_conv2d(x[one].double(), w64, s64, resample_filter=f64, fused=False, **kwargs)
            torch.testing.assert_close(y[one].double(), ref, rtol=0, atol=1e-5)

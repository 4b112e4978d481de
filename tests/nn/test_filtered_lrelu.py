"""filtered_lrelu against a direct numpy evaluation of its definition, and the Kaiser filter design against scipy."""

import numpy as np
import pytest
import torch

import stylegan.nn.filtered_lrelu as flr
from stylegan.nn.filter_design import lowpass_filter
from stylegan.nn.filtered_lrelu import filtered_lrelu, filtered_lrelu_reference


def _numpy_oracle(x, fu, fd, b, up, down, padding, gain, slope, clamp):
    """The definition with explicit loops over taps: zero insertion, pad, 2-D convolution, lrelu, filter, decimate."""
    x = x.astype(np.float64) + b.reshape(1, -1, 1, 1)
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * up, w * up))
    z[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = padding
    z = np.pad(z, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    z = z[:, :, max(-py0, 0) : z.shape[2] - max(-py1, 0), max(-px0, 0) : z.shape[3] - max(-px1, 0)]
    z = _conv2d_full_valid(z, _as_2d(fu) * up * up)
    z = np.where(z >= 0, z, z * slope) * gain
    z = np.clip(z, -clamp, clamp) if clamp is not None else z
    return _conv2d_full_valid(z, _as_2d(fd))[:, :, ::down, ::down]


def _as_2d(f):
    return np.outer(f, f) if f.ndim == 1 else f


def _conv2d_full_valid(z, f):
    """True convolution (flipped kernel), valid part: out[i, j] = sum f[a, b] z[i + T-1-a, j + T-1-b]."""
    th, tw = f.shape
    out = np.zeros((*z.shape[:2], z.shape[2] - th + 1, z.shape[3] - tw + 1))
    for a in range(th):
        for b_ in range(tw):
            out += f[a, b_] * z[:, :, th - 1 - a : th - 1 - a + out.shape[2], tw - 1 - b_ : tw - 1 - b_ + out.shape[3]]
    return out


CASES = [  # (input size, up taps, down taps, up, down, padding (x0, x1, y0, y1), radial down filter)
    (38, 12, 12, 2, 2, (9, 8, 9, 8), False),  # a StyleGAN3-T layer at constant rate
    (38, 24, 12, 4, 2, (-6, -9, -6, -9), False),  # rate doubles: up 4
    (54, 12, 12, 2, 2, (-11, -12, -11, -12), False),  # last layer: crops the margin
    (36, 12, 12, 2, 2, (11, 10, 11, 10), True),  # StyleGAN3-R: radial down filter
    (17, 12, 12, 2, 2, (3, 14, 0, 20), True),  # asymmetric padding
]


PATHS = {"separable": (False, False), "outer": (False, True), "bands": (True, True)}  # (bands, _OUTER_ON_CPU)


def _use_path(path: str, monkeypatch) -> None:
    bands, outer = PATHS[path]
    monkeypatch.setattr(flr, "_BAND_MIN_ROWS", {torch.get_num_threads(): 0} if bands else {})
    monkeypatch.setattr(flr, "_OUTER_ON_CPU", outer)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("size, tu, td, up, down, padding, radial", CASES)
def test_matches_definition(size, tu, td, up, down, padding, radial, path, monkeypatch):
    _use_path(path, monkeypatch)
    gen = torch.Generator().manual_seed(size + tu)
    x = torch.randn([2, 3, size, size + 3], generator=gen) * 3
    b = torch.randn([3], generator=gen)
    fu = torch.randn([tu], generator=gen)  # asymmetric on purpose: catches a flipped filter
    fd = lowpass_filter(td, 3.0, 4.0, 16.0, radial=radial)
    args = dict(up=up, down=down, padding=padding, gain=1.3, slope=0.2, clamp=4.0)
    want = _numpy_oracle(x.numpy(), fu.numpy(), fd.numpy(), b.numpy(), **args)
    for layout in (torch.contiguous_format, torch.channels_last):
        with torch.no_grad():
            got = filtered_lrelu(x.contiguous(memory_format=layout), fu, fd, b, **args)
        np.testing.assert_allclose(got.numpy(), want, atol=2e-4, rtol=1e-5)
    np.testing.assert_allclose(filtered_lrelu_reference(x, fu, fd, b, **args).numpy(), want, atol=2e-4, rtol=1e-5)


def test_gradients_match_reference():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([1, 4, 20, 20], generator=gen, requires_grad=True)
    b = torch.randn([4], generator=gen, requires_grad=True)
    fu, fd = torch.randn([12], generator=gen), torch.randn([12, 12], generator=gen)
    grads = []
    for fn in (filtered_lrelu, filtered_lrelu_reference):
        y = fn(x, fu, fd, b, up=2, down=2, padding=(9, 8, 9, 8), clamp=5.0)
        grads.append(torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum(), [x, b]))
    for g_fast, g_ref in zip(*grads, strict=True):
        torch.testing.assert_close(g_fast, g_ref, atol=1e-5, rtol=1e-5)


def test_no_filter_is_bias_and_clamp():
    x, b = torch.randn([2, 3, 5, 5]) * 10, torch.randn([3])
    y = filtered_lrelu(x, None, None, b, gain=1, slope=1, clamp=2.0)
    torch.testing.assert_close(y, (x + b.view(1, -1, 1, 1)).clamp(-2, 2))


def test_missing_filter_refused():
    with pytest.raises(ValueError, match="filter"):
        filtered_lrelu(torch.zeros([1, 1, 4, 4]), None, None, up=2)


@pytest.mark.parametrize("numtaps, cutoff, width, fs", [(12, 2.0, 12.0, 32), (24, 4.0, 8.0, 64), (12, 16.0, 7.4, 64)])
def test_separable_filter_is_kaiser_firwin(numtaps, cutoff, width, fs):
    signal = pytest.importorskip("scipy.signal")
    want = signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
    np.testing.assert_allclose(lowpass_filter(numtaps, cutoff, width, fs).numpy(), want, atol=1e-7)


def test_radial_filter_is_windowed_jinc():
    special = pytest.importorskip("scipy.special")
    numtaps, cutoff, width, fs = 12, 3.0, 10.0, 32
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(t, t))
    beta = 0.1102 * (2.285 * (numtaps - 1) * np.pi * width / (fs / 2) + 7.95 - 8.7)  # attenuation > 50 dB here
    want = special.j1(2 * np.pi * cutoff * r) / (np.pi * r) * np.outer(*[np.kaiser(numtaps, beta)] * 2)
    got = lowpass_filter(numtaps, cutoff, width, fs, radial=True).numpy()
    np.testing.assert_allclose(got, want / want.sum(), atol=1e-7)
    np.testing.assert_allclose(got, got.T)


def test_one_tap_means_no_filter():
    assert lowpass_filter(1, 2.0, 4.0, 16) is None


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("size, tu, td, up, down, padding, radial", CASES)
def test_float64_is_exact(size, tu, td, up, down, padding, radial, path, monkeypatch):
    """In float64 every formulation (band matrices, 2-D or separable convolutions) must agree with the definition
    to ~1e-12: a looser match would hide taps rounded to float32 or a misplaced gain."""
    _use_path(path, monkeypatch)
    gen = torch.Generator().manual_seed(size)
    x = torch.randn([2, 3, size, size + 5], generator=gen, dtype=torch.float64) * 30
    b = torch.randn([3], generator=gen, dtype=torch.float64)
    fu = torch.randn([tu], generator=gen, dtype=torch.float64)
    fd = lowpass_filter(td, 3.0, 4.0, 16.0, radial=radial).double()
    for clamp in (None, 40.0):  # 40 is active for some samples
        args = dict(up=up, down=down, padding=padding, gain=1.3, slope=0.2, clamp=clamp)
        want = _numpy_oracle(x.numpy(), fu.numpy(), fd.numpy(), b.numpy(), **args)
        with torch.no_grad():
            got = filtered_lrelu(x.contiguous(memory_format=torch.channels_last), fu, fd, b, **args)
        np.testing.assert_allclose(got.numpy(), want, atol=1e-9 * np.abs(want).max(), rtol=0)

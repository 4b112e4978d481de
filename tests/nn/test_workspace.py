"""nn/workspace.py: pooled CPU memory is handed out again only when no tensor uses it; the convolutions that write
into it (phases straight into the up-sampled image, large stride-1 outputs) equal their float64 oracles."""

import pytest
import torch

from stylegan.networks import Generator, GeneratorConfig
from stylegan.nn import conv, workspace
from stylegan.nn.conv import _transposed_by_phases, modulated_conv2d

MB = 1 << 20


@pytest.fixture(autouse=True)
def fresh_pool():
    workspace.clear()
    yield
    workspace.clear()


def test_block_is_reused_only_when_nothing_uses_it():
    a = workspace.empty((MB,), torch.float32)
    ptr = a.data_ptr()
    b = workspace.empty((MB,), torch.float32)
    assert b.data_ptr() != ptr  # a is alive: its memory is not handed out twice
    view = a[10:].view(-1, 2)
    del a
    c = workspace.empty((MB,), torch.float32)
    assert c.data_ptr() not in (ptr, b.data_ptr())  # a view keeps the block
    del view, c
    d = workspace.empty((MB // 4, 4), torch.float32)  # the same number of elements, another shape
    assert d.data_ptr() == ptr


def test_channels_last_views_and_small_requests():
    x = workspace.empty((1, 64, 64, 128), torch.float32, channels_last=True)
    assert x.shape == (1, 64, 64, 128) and x.is_contiguous(memory_format=torch.channels_last)
    small = workspace.empty((16,), torch.float32)
    assert small.shape == (16,) and workspace.pooled_bytes() == 64 * 64 * 128 * 4  # small ones are not pooled


def test_pool_stays_under_its_budget(monkeypatch):
    monkeypatch.setattr(workspace, "MAX_BYTES", 3 * 4 * MB)
    kept = [workspace.empty((MB,), torch.float32) for _ in range(5)]  # 5 live blocks: only 3 pooled
    assert workspace.pooled_bytes() <= workspace.MAX_BYTES
    del kept
    for size in (MB + 1, MB + 2, MB + 3):  # new sizes push the least recently used free blocks out
        workspace.empty((size,), torch.float32)
        assert workspace.pooled_bytes() <= workspace.MAX_BYTES


@pytest.mark.parametrize("kernel", [(3, 3), (4, 4), (2, 5)])
@pytest.mark.parametrize("crop", [(0, 0), (1, 1)])
def test_pooled_phases_match_the_transposed_convolution(kernel, crop, monkeypatch):
    """fp32 CPU: the phase convolutions write into pooled memory (oneDNN's in-place form) and are interleaved into
    a pooled output; equal to conv_transpose2d in float64, also when the memory is reused."""
    monkeypatch.setattr(conv, "POOLED_OUTPUT_BYTES", 1)  # config-f pools phases of 32 MB and more
    monkeypatch.setattr(workspace, "MIN_BYTES", 1)
    calls, original = [], conv._conv_into
    monkeypatch.setattr(conv, "_conv_into", lambda *a, **k: calls.append(1) or original(*a, **k))
    gen = torch.Generator().manual_seed(kernel[0] + 7 * crop[0])
    x = torch.randn(1, 16, 9, 10, generator=gen).contiguous(memory_format=torch.channels_last)
    w = torch.randn(8, 16, *kernel, generator=gen)
    ref = torch.nn.functional.conv_transpose2d(
        x.double(), (w.double().flip([2, 3]) * 2.5).transpose(0, 1), stride=2, padding=crop
    )
    with torch.no_grad():
        for _ in range(2):  # the second call reuses the pooled output
            out = _transposed_by_phases(x, w, crop, 2.5)
            torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    if conv.ONEDNN_INTO:
        assert len(calls) == 8  # four phases, twice


def test_pooled_layer_outputs_are_not_overwritten_while_kept(monkeypatch):
    """A modulated 3x3 layer whose output comes from the pool: a kept output survives the next call, and each
    output equals the float64 definition."""
    monkeypatch.setattr(conv, "POOLED_OUTPUT_BYTES", 1)
    monkeypatch.setattr(workspace, "MIN_BYTES", 1)  # small test tensors go through the pool too
    gen = torch.Generator().manual_seed(3)
    w, b = torch.randn(24, 16, 3, 3, generator=gen), torch.randn(24, generator=gen)
    outputs, refs = [], []
    for _ in range(3):
        x = torch.randn(1, 16, 20, 20, generator=gen).contiguous(memory_format=torch.channels_last)
        s = torch.rand(1, 16, generator=gen) + 0.5
        with torch.no_grad():
            outputs.append(modulated_conv2d(x, w, s, padding=1, demodulate=False, bias=b, act="linear"))
        refs.append(
            torch.nn.functional.conv2d(x.double() * s.double()[:, :, None, None], w.double(), b.double(), padding=1)
        )
    assert len({o.data_ptr() for o in outputs}) == 3
    for out, ref in zip(outputs, refs, strict=True):
        torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    kept = outputs[0]
    del outputs[1:], refs[1:]
    with torch.no_grad():  # memory of the dropped outputs is reused, the kept one is left alone
        again = modulated_conv2d(kept.new_ones(1, 16, 20, 20), w, torch.ones(1, 16), padding=1, demodulate=False)
    assert again.data_ptr() != kept.data_ptr()
    torch.testing.assert_close(kept.double(), refs[0], rtol=1e-5, atol=1e-5)


def test_blocks_serve_inference_mode_and_no_grad_alike():
    """A block first handed out under torch.inference_mode is a normal tensor: later no_grad or plain calls may
    write into it (an inference tensor would refuse in-place updates outside inference mode)."""
    with torch.inference_mode():
        a = workspace.empty((1, 64, 64, 64), torch.float32, channels_last=True).zero_()  # 1 MB: pooled
    a.add_(1)  # the caller may modify what it got
    ptr = a.data_ptr()
    del a
    with torch.no_grad():
        b = workspace.empty((1, 64, 64, 64), torch.float32, channels_last=True).fill_(2)
    assert b.data_ptr() == ptr and not b.is_inference()


def test_generator_caches_work_under_inference_mode():
    """The weight caches (nn.derived, the stacked affines) and the pool under torch.inference_mode: a G made or run
    there gives the same images as under no_grad, in any order (inference tensors have no version counter)."""
    cfg = GeneratorConfig(z_dim=64, w_dim=64, img_resolution=64, channel_base=4096, channel_max=128)
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    with torch.no_grad():
        ref = G(z, None, noise_mode="const")
    for mode in (torch.inference_mode, torch.no_grad, torch.inference_mode):
        with mode():
            torch.testing.assert_close(G(z, None, noise_mode="const"), ref, rtol=0, atol=0)
    with torch.inference_mode():
        torch.manual_seed(0)
        made_there = Generator(cfg).eval()  # its parameters are inference tensors
        for _ in range(2):
            torch.testing.assert_close(made_there(z, None, noise_mode="const"), ref, rtol=0, atol=0)

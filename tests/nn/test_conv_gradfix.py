"""conv_gradfix: the same values and derivatives (1st, 2nd, 3rd order) as F.conv2d / F.conv_transpose2d."""

import pytest
import torch
import torch.nn.functional as F

from stylegan.nn import conv_gradfix

CASES = [
    # transpose, in_ch, out_ch, k, stride, padding, output_padding, groups, size
    (False, 4, 6, 3, 1, 1, 0, 1, 7),
    (False, 4, 6, 3, 2, 0, 0, 2, 9),
    (False, 4, 4, 4, 2, 1, 0, 4, 8),
    (False, 3, 5, 1, 1, 0, 0, 1, 5),
    (True, 4, 6, 3, 2, 0, 0, 1, 5),
    (True, 4, 6, 3, 2, 1, 1, 2, 4),
]


def _ops(transpose, stride, padding, output_padding, groups):
    if transpose:
        ours = lambda x, w: conv_gradfix.conv_transpose2d(x, w, stride, padding, output_padding, groups)  # noqa: E731
        ref = lambda x, w: F.conv_transpose2d(x, w, None, stride, padding, output_padding, groups)  # noqa: E731
    else:
        ours = lambda x, w: conv_gradfix.conv2d(x, w, stride, padding, groups)  # noqa: E731
        ref = lambda x, w: F.conv2d(x, w, None, stride, padding, 1, groups)  # noqa: E731
    return ours, ref


def _tensors(transpose, cin, cout, k, groups, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn([2, cin, size, size], generator=g, dtype=torch.float64, requires_grad=True)
    shape = [cin, cout // groups, k, k] if transpose else [cout, cin // groups, k, k]
    w = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    return x, w


@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_of_every_order_match_torch(case):
    transpose, cin, cout, k, stride, padding, output_padding, groups, size = case
    ours, ref = _ops(transpose, stride, padding, output_padding, groups)
    x, w = _tensors(transpose, cin, cout, k, groups, size)
    assert torch.equal(ours(x, w), ref(x, w))

    def r1_like(op):  # the derivative of a gradient norm, as R1 / path length (3rd order for x, w)
        y = op(x, w)
        gx, gw = torch.autograd.grad(y.square().sum(), [x, w], create_graph=True)
        loss = gx.square().sum() + gw.square().sum() * 0.5
        return torch.autograd.grad(loss, [x, w], create_graph=True)

    for a, b in zip(r1_like(ours), r1_like(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradcheck(ours, (x, w))
    assert torch.autograd.gradgradcheck(ours, (x, w))


def test_channels_last_and_float32():
    x, w = _tensors(False, 8, 8, 3, 1, 6)
    x32 = x.detach().float().to(memory_format=torch.channels_last).requires_grad_()
    w32 = w.detach().float().requires_grad_()
    y = conv_gradfix.conv2d(x32, w32, 1, 1)
    (gx,) = torch.autograd.grad(y.square().sum(), x32, create_graph=True)
    gx.square().sum().backward()
    x2 = x32.detach().clone().requires_grad_()
    w2 = w32.detach().clone().requires_grad_()
    (gx2,) = torch.autograd.grad(F.conv2d(x2, w2, padding=1).square().sum(), x2, create_graph=True)
    gx2.square().sum().backward()
    for a, b in ((w32.grad, w2.grad), (x32.grad, x2.grad)):  # float32 sums in another order
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * b.abs().max().item())


@pytest.fixture
def gradfix_mode():
    old = conv_gradfix.enabled
    yield
    conv_gradfix.enabled = old


def test_r1_and_path_length_gradients_unchanged_in_the_networks(gradfix_mode):
    """G's path-length and D's R1 parameter gradients (second order through every conv, up/down sampling
    included) are the same through conv_gradfix as through PyTorch's own double backward."""
    from stylegan.networks.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, img_channels=3, channel_base=128,
                                  channel_max=16, mapping_layers=2)).double()  # fmt: skip
    D = Discriminator(DiscriminatorConfig(img_resolution=16, img_channels=3, channel_base=128, channel_max=16)).double()
    z = torch.randn([4, 16], dtype=torch.float64)
    real = torch.randn([4, 3, 16, 16], dtype=torch.float64)

    def grads(mode):
        conv_gradfix.enabled = mode
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        ws = G.mapping(z, None)
        img = G.synthesis(ws, noise_mode="const")
        (g_ws,) = torch.autograd.grad((img * real).sum(), ws, create_graph=True)  # path length
        g_ws.square().sum().backward()
        x = real.clone().requires_grad_()
        (g_x,) = torch.autograd.grad(D(x, None).sum(), x, create_graph=True)  # R1
        g_x.square().sum().backward()
        return [p.grad.clone() for p in [*G.parameters(), *D.parameters()] if p.grad is not None]

    ours, ref = grads("always"), grads("never")
    assert len(ours) == len(ref) > 10
    for a, b in zip(ours, ref, strict=True):  # the sums are ill-conditioned: memory format alone moves them ~3e-7
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * b.abs().max().item())

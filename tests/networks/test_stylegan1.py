"""StyleGAN1 networks: layer maths against an independent NumPy implementation of the official TF formulas,
and the contract every network family passes (tiny presets)."""

import math

import numpy as np
import pytest
import torch

from stylegan.io import load_networks, save_networks
from stylegan.networks import stylegan1
from stylegan.networks.registry import FAMILIES


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is fastest, and far faster than two on a loaded machine (no spin-waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------------------
# NumPy reference, written from networks_stylegan.py's formulas. Weights in TF layouts: conv [k, k, in, out],
# dense [in, out]; activations NCHW; float64.


def np_lrelu(x):
    return np.maximum(x, 0.2 * x)


def np_dense(x, w, b, gain, lrmul=1.0):
    """get_weight(use_wscale): runtime coef = gain / sqrt(fan_in) * lrmul; apply_bias(lrmul)."""
    return x @ (w * gain / np.sqrt(w.shape[0]) * lrmul) + b * lrmul


def np_pixel_norm(x):
    return x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + 1e-8)


def np_conv2d_same(x, w, stride=1):
    """tf.nn.conv2d, 'SAME', NCHW: correlation; for stride 2 and an even kernel TF pads (k - 2) // 2 first."""
    k = w.shape[0]
    n, _, h, wd = x.shape
    out_h = -(-h // stride)
    total = max((out_h - 1) * stride + k - h, 0)
    before = total // 2
    xp = np.pad(x, ((0, 0), (0, 0), (before, total - before), (before, total - before)))
    out = np.zeros([n, w.shape[3], out_h, out_h])
    for a in range(k):
        for b in range(k):
            patch = xp[:, :, a : a + stride * out_h : stride, b : b + stride * out_h : stride]
            out += np.einsum("nchw,co->nohw", patch, w[a, b])
    return out


def np_conv2d_transpose_same_s2(x, f):
    """tf.nn.conv2d_transpose(filter [k, k, out, in], stride 2, 'SAME'): the adjoint of the stride-2 SAME conv
    from the 2x larger output, written as scatter-add of every input pixel times the kernel."""
    n, _, h, wd = x.shape
    k = f.shape[0]
    total = (h - 1) * 2 + k - 2 * h
    before = total // 2
    full = np.zeros([n, f.shape[2], 2 * h + total, 2 * wd + total])
    for i in range(h):
        for j in range(wd):
            full[:, :, 2 * i : 2 * i + k, 2 * j : 2 * j + k] += np.einsum("nc,aboc->noab", x[:, :, i, j], f)
    return full[:, :, before : before + 2 * h, before : before + 2 * wd]


def np_padded_sum(w):
    """Official fused-kernel construction: pad the 3x3 kernel by 1 and add the 4 shifted copies -> 4x4."""
    w = np.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def np_upscale2d_conv2d(x, w, fused):
    w = w * np.sqrt(2) / np.sqrt(np.prod(w.shape[:-1]))  # fan_in of the 3x3 kernel, not of the 4x4
    if not fused:
        return np_conv2d_same(x.repeat(2, axis=2).repeat(2, axis=3), w)
    return np_conv2d_transpose_same_s2(x, np_padded_sum(w.transpose(0, 1, 3, 2)))


def np_conv2d_downscale2d(x, w, fused):
    w = w * np.sqrt(2) / np.sqrt(np.prod(w.shape[:-1]))
    if fused:
        return np_conv2d_same(x, np_padded_sum(w) * 0.25, stride=2)
    y = np_conv2d_same(x, w)
    return 0.25 * (y[:, :, ::2, ::2] + y[:, :, 1::2, ::2] + y[:, :, ::2, 1::2] + y[:, :, 1::2, 1::2])


def np_blur(x):
    """[1, 2, 1] x [1, 2, 1] normalised to sum 1, depthwise, 'SAME'."""
    f = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float64)
    f /= f.sum()
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, w = x.shape[2:]
    return sum(f[a, b] * xp[:, :, a : a + h, b : b + w] for a in range(3) for b in range(3))


def np_instance_norm(x):
    x = x - x.mean(axis=(2, 3), keepdims=True)
    return x / np.sqrt(np.mean(x**2, axis=(2, 3), keepdims=True) + 1e-8)


def np_epilogue(x, p, prefix, w, noise):
    """apply_noise, apply_bias, lrelu, instance_norm, style_mod (dense gain 1, use_wscale)."""
    x = x + noise[None, None] * p[f"{prefix}/Noise/weight"].reshape(1, -1, 1, 1)
    x = np_lrelu(x + p[f"{prefix}/bias"].reshape(1, -1, 1, 1))
    x = np_instance_norm(x)
    style = np_dense(w, p[f"{prefix}/StyleMod/weight"], p[f"{prefix}/StyleMod/bias"], gain=1.0)
    style = style.reshape(x.shape[0], 2, x.shape[1], 1, 1)
    return x * (style[:, 0] + 1) + style[:, 1]


def np_synthesis_block(x, p, ws, noises, fused):
    x = np_epilogue(np_blur(np_upscale2d_conv2d(x, p["Conv0_up/weight"], fused)), p, "Conv0_up", ws[:, 0], noises[0])
    w1 = p["Conv1/weight"] * np.sqrt(2) / np.sqrt(np.prod(p["Conv1/weight"].shape[:-1]))
    return np_epilogue(np_conv2d_same(x, w1), p, "Conv1", ws[:, 1], noises[1])


# ----------------------------------------------------------------------------------------------------------


def _rng_params(rng, c_in, c, w_dim):
    p = {
        "Conv0_up/weight": rng.standard_normal([3, 3, c_in, c]),
        "Conv1/weight": rng.standard_normal([3, 3, c, c]),
    }
    for scope in ("Conv0_up", "Conv1"):
        p[f"{scope}/Noise/weight"] = rng.standard_normal(c)
        p[f"{scope}/bias"] = rng.standard_normal(c)
        p[f"{scope}/StyleMod/weight"] = rng.standard_normal([w_dim, 2 * c])
        p[f"{scope}/StyleMod/bias"] = rng.standard_normal(2 * c) * 0.5
    return p


def _load_layer(layer, p, scope, noise):
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        layer.conv.weight.copy_(t(p[f"{scope}/weight"].transpose(3, 2, 0, 1)))
        layer.noise_strength.copy_(t(p[f"{scope}/Noise/weight"]))
        layer.bias.copy_(t(p[f"{scope}/bias"]))
        layer.affine.weight.copy_(t(p[f"{scope}/StyleMod/weight"].T))
        layer.affine.bias.copy_(t(p[f"{scope}/StyleMod/bias"]))
        layer.noise_const.copy_(t(noise))


@pytest.mark.parametrize("fused", [False, True])
def test_synthesis_block_matches_numpy_reference(fused):
    rng = np.random.default_rng(1)
    n, c_in, c, w_dim, res = 2, 8, 4, 6, 16
    p = _rng_params(rng, c_in, c, w_dim)
    x = rng.standard_normal([n, c_in, res // 2, res // 2])
    ws = rng.standard_normal([n, 2, w_dim])
    noises = [rng.standard_normal([res, res]) for _ in range(2)]
    cfg = stylegan1.GeneratorConfig(img_resolution=res, w_dim=w_dim, fmap_base=32, fmap_max=8, fused_scale=fused)
    block = stylegan1.SynthesisBlock(cfg, res)  # 8 channels at 8x8 -> 4 at 16x16
    _load_layer(block.conv0, p, "Conv0_up", noises[0])
    _load_layer(block.conv1, p, "Conv1", noises[1])
    ours = block(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(ws, dtype=torch.float32), noise_mode="const")
    ref = np_synthesis_block(x, p, ws, noises, fused)
    np.testing.assert_allclose(ours.detach().numpy(), ref, rtol=1e-4, atol=1e-4)


def test_fused_upscale_is_nearest_then_flipped_conv_in_the_interior():
    """Why the padded-sum kernel: the fused transposed conv equals nearest-upscale + 3x3 conv with the
    spatially flipped kernel (exact away from the border). So fused and non-fused weights are not
    interchangeable, and we keep TF's conv2d_transpose semantics exactly."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal([1, 3, 6, 6]), rng.standard_normal([3, 3, 3, 2])
    a, b = np_upscale2d_conv2d(x, w, fused=True), np_upscale2d_conv2d(x, w[::-1, ::-1], fused=False)
    np.testing.assert_allclose(a[:, :, 1:-1, 1:-1], b[:, :, 1:-1, 1:-1], atol=1e-12)


def test_numpy_transposed_conv_is_the_adjoint_of_tf_same_conv():
    """The reference's conv2d_transpose is what TF defines: the adjoint (gradient) of the stride-2 'SAME' conv
    with the same filter, <conv(y), x> == <y, conv_transpose(x)>."""
    rng = np.random.default_rng(6)
    f = rng.standard_normal([4, 4, 3, 2])  # conv2d view: [k, k, in = 3 (large), out = 2 (small)]
    x, y = rng.standard_normal([2, 2, 5, 5]), rng.standard_normal([2, 3, 10, 10])
    lhs = np.sum(np_conv2d_same(y, f, stride=2) * x)
    rhs = np.sum(y * np_conv2d_transpose_same_s2(x, f))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_mapping_layers_match_numpy_reference():
    rng = np.random.default_rng(3)
    z_dim, w_dim, lrmul = 6, 5, 0.01
    p = {
        "Dense0/weight": rng.standard_normal([z_dim, 7]) / lrmul,
        "Dense0/bias": rng.standard_normal(7) / lrmul,
        "Dense1/weight": rng.standard_normal([7, w_dim]) / lrmul,
        "Dense1/bias": rng.standard_normal(w_dim),
    }
    cfg = stylegan1.GeneratorConfig(
        z_dim=z_dim, w_dim=w_dim, mapping_layers=2, mapping_features=7, mapping_lr_multiplier=lrmul
    )
    mapping = stylegan1.MappingNetwork(cfg, num_ws=3)
    with torch.no_grad():
        for i in range(2):
            getattr(mapping, f"fc{i}").weight.copy_(torch.as_tensor(p[f"Dense{i}/weight"].T, dtype=torch.float32))
            getattr(mapping, f"fc{i}").bias.copy_(torch.as_tensor(p[f"Dense{i}/bias"], dtype=torch.float32))
    z = rng.standard_normal([4, z_dim]) * 3
    x = np_pixel_norm(z)
    for i in range(2):
        x = np_lrelu(np_dense(x, p[f"Dense{i}/weight"], p[f"Dense{i}/bias"], gain=np.sqrt(2), lrmul=lrmul))
    ws = mapping(torch.as_tensor(z, dtype=torch.float32))
    assert ws.shape == (4, 3, w_dim)
    np.testing.assert_allclose(ws[:, 2].detach().numpy(), x, rtol=1e-4, atol=1e-5)


def test_label_concat_and_label_switch_match_numpy_reference():
    """Conditional StyleGAN1: G concatenates c @ W (plain N(0,1) matrix) to z before the pixel norm; D outputs
    one score per class and keeps the labelled one."""
    rng = np.random.default_rng(5)
    cfg = stylegan1.GeneratorConfig(
        z_dim=4, c_dim=3, w_dim=5, mapping_layers=1, mapping_features=5, mapping_lr_multiplier=1.0
    )
    mapping = stylegan1.MappingNetwork(cfg, num_ws=2)
    label_w, dense_w = rng.standard_normal([3, 4]), rng.standard_normal([8, 5])
    dense_b = rng.standard_normal(5)
    with torch.no_grad():
        mapping.embed.weight.copy_(torch.as_tensor(label_w.T, dtype=torch.float32))
        mapping.fc0.weight.copy_(torch.as_tensor(dense_w.T, dtype=torch.float32))
        mapping.fc0.bias.copy_(torch.as_tensor(dense_b, dtype=torch.float32))
    z, c = rng.standard_normal([2, 4]), np.eye(3)[[2, 0]]
    ref = np_lrelu(np_dense(np_pixel_norm(np.concatenate([z, c @ label_w], 1)), dense_w, dense_b, np.sqrt(2)))
    ours = mapping(torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(c, dtype=torch.float32))[:, 0]
    np.testing.assert_allclose(ours.detach().numpy(), ref, rtol=1e-4, atol=1e-5)
    D = stylegan1.Discriminator(c_dim=3, img_resolution=8, fmap_base=32, fmap_max=8)
    img, c_t = torch.randn(2, 3, 8, 8), torch.as_tensor(c, dtype=torch.float32)
    scores = D.b4(D.b8(img))  # [N, 3]
    torch.testing.assert_close(D(img, c_t)[:, 0], scores[[0, 1], [2, 0]])


@pytest.mark.parametrize("fused", [False, True])
def test_discriminator_block_matches_numpy_reference(fused):
    rng = np.random.default_rng(4)
    cfg = stylegan1.DiscriminatorConfig(img_resolution=16, fmap_base=32, fmap_max=8, fused_scale=fused)
    block = stylegan1.DiscriminatorBlock(cfg, 16, is_top=False)  # 4 -> 8 channels
    w0, w1 = rng.standard_normal([3, 3, 4, 4]), rng.standard_normal([3, 3, 4, 8])
    b0, b1 = rng.standard_normal(4), rng.standard_normal(8)
    with torch.no_grad():
        for conv, w, b in ((block.conv0, w0, b0), (block.conv1, w1, b1)):
            conv.weight.copy_(torch.as_tensor(w.transpose(3, 2, 0, 1).copy(), dtype=torch.float32))
            conv.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
    x = rng.standard_normal([2, 4, 16, 16])
    y = np_lrelu(np_conv2d_same(x, w0 * np.sqrt(2) / np.sqrt(36)) + b0.reshape(1, -1, 1, 1))
    ref = np_lrelu(np_conv2d_downscale2d(np_blur(y), w1, fused) + b1.reshape(1, -1, 1, 1))
    ours = block(torch.as_tensor(x, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_paper_sizes():
    """FFHQ 1024 generator: 18 ws, 26.2M parameters; channels nf(stage) = min(8192 / 2^stage, 512)."""
    g, d = stylegan1.preset_configs("ffhq1024")
    G = stylegan1.Generator(g)
    assert G.num_ws == 18 and g.truncation_psi == 0.7 and g.truncation_cutoff == 8
    assert sum(p.numel() for p in G.parameters()) == 26_212_019
    channels = [G.synthesis.get_submodule(f"b{r}").conv1.bias.numel() for r in (4, 32, 64, 1024)]
    assert channels == [512, 512, 256, 16]
    assert stylegan1.preset_configs("lsun256")[0].img_resolution == 256


# ----------------------------------------------------------------------------------------------------------
# Contract over the presets at tiny size (resolution / 32, a few channels).

TINY = dict(fmap_base=64, fmap_max=16, z_dim=16, w_dim=16, mapping_layers=2, mapping_features=16)


def _tiny(name, c_dim=0, **kw):
    g, d = stylegan1.preset_configs(name, c_dim=c_dim, img_resolution=stylegan1.PRESETS[name] // 32, **{**TINY, **kw})
    return stylegan1.Generator(g), stylegan1.Discriminator(d)


CASES = [(name, 0, "auto") for name in stylegan1.PRESETS] + [("lsun512", 3, True)]


@pytest.fixture(params=CASES, ids=lambda p: f"{p[0]}-c{p[1]}-fused{p[2]}")
def nets(request):
    name, c_dim, fused = request.param
    return _tiny(name, c_dim, fused_scale=fused)


def _inputs(G, n=4):
    z = torch.randn(n, G.z_dim)
    c = torch.nn.functional.one_hot(torch.arange(n) % max(G.c_dim, 1), max(G.c_dim, 1)).float()[:, : G.c_dim]
    return z, c


def test_shapes_and_finite(nets):
    G, D = nets
    z, c = _inputs(G)
    ws = G.mapping(z, c)
    img = G.synthesis(ws)
    assert ws.shape == (4, G.num_ws, G.w_dim) and G.num_ws == 2 * int(math.log2(G.img_resolution)) - 2
    assert img.shape == (4, 3, G.img_resolution, G.img_resolution)
    logits = D(img, c)
    assert logits.shape == (4, 1) and torch.isfinite(img).all() and torch.isfinite(logits).all()
    assert G.config.family == "stylegan1" and "stylegan1" in FAMILIES


def test_every_parameter_gets_a_gradient(nets):
    G, D = nets
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)  # zero-initialised like TF: give them a value so every path carries gradient
    z, c = _inputs(G)
    D(G(z, c, noise_mode="random"), c).sum().backward()
    missing = [
        n
        for n, p in list(G.named_parameters()) + list(D.named_parameters())
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert not missing


def test_generator_is_synthesis_of_mapping_and_truncation(nets):
    G, _ = nets
    z, c = _inputs(G)
    G.mapping.w_avg.copy_(torch.randn(G.w_dim))
    ws = G.mapping(z, c)
    torch.testing.assert_close(G(z, c, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
    torch.testing.assert_close(
        G(z, c, truncation_psi=1, truncation_cutoff=3, noise_mode="const"), G(z, c, noise_mode="const")
    )
    trunc = G.mapping(z, c, truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(trunc[:, :2], G.mapping.w_avg.expand(4, 2, -1))
    torch.testing.assert_close(trunc[:, 2:], ws[:, 2:])
    paper = G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=8)
    torch.manual_seed(5)
    a = G(z, c, truncation_psi=0.7, truncation_cutoff=8)  # NVIDIA's default noise_mode: random
    torch.manual_seed(5)
    torch.testing.assert_close(a, G.synthesis(paper, noise_mode="random"))
    assert (G.config.truncation_psi, G.config.truncation_cutoff) == (0.7, 8)  # the paper's, for the tools


def test_noise_modes(nets):
    G, _ = nets
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(1.0)
    ws = G.mapping(*_inputs(G))
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
    assert not torch.allclose(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="none"))
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="sometimes")
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(ws[:, 1:])


def test_native_save_load_round_trip(nets, tmp_path):
    G, D = nets
    G.mapping.w_avg.copy_(torch.randn(G.w_dim))
    path = tmp_path / "sg1.safetensors"
    save_networks(path, {"G": G, "D": D, "G_ema": G})
    nets2 = load_networks(path)
    assert nets2["G_ema"].config == G.config and nets2["D"].config == D.config
    z, c = _inputs(G)
    torch.testing.assert_close(nets2["G_ema"](z, c, truncation_psi=0.5), G(z, c, truncation_psi=0.5))
    img = torch.randn(4, 3, G.img_resolution, G.img_resolution)
    torch.testing.assert_close(nets2["D"](img, c), D(img, c))


def test_config_errors():
    with pytest.raises(ValueError, match="power of two"):
        stylegan1.GeneratorConfig(img_resolution=48)
    with pytest.raises(ValueError, match="fused_scale"):
        stylegan1.DiscriminatorConfig(fused_scale="sometimes")
    with pytest.raises(ValueError, match="unknown stylegan1 preset"):
        stylegan1.preset_configs("ffhq")
    with pytest.raises(ValueError, match="unknown overrides"):
        stylegan1.preset_configs("ffhq1024", channel_base=3)


def test_trains_with_the_shared_loss():
    """The paper's networks plug into the training loss (R1 needs double backward through every op)."""
    loss_mod = pytest.importorskip("stylegan.training.loss")
    G, D = _tiny("lsun256", fused_scale=True)
    loss = loss_mod.StyleGAN2Loss(G, D, loss_mod.LossConfig(r1_gamma=1.0, pl_weight=0.0))
    real, z, c = torch.randn(4, 3, 8, 8), torch.randn(4, G.z_dim), torch.zeros(4, 0)
    for phase in ("Gboth", "Dboth"):
        stats = loss.accumulate_gradients(phase, real, c, z, c, gain=1.0)
        assert stats and all(torch.isfinite(v).all() for v in stats.values())
    assert all(p.grad is not None for p in D.parameters())

"""AugmentPipe (ADA transforms) and AdaController (p adjustment toward the r_t target)."""

from __future__ import annotations

import pytest
import torch

from stylegan.training.augment import AUGPIPE_PRESETS, AdaController, AugmentPipe, augment_config

GROUPS = ("blit", "geom", "color", "filter", "noise", "cutout")


def _images(n=4, c=3, res=16, seed=0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand([n, c, res, res], generator=g) * 2 - 1).to(dtype)


def _gen(seed=0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("preset", list(AUGPIPE_PRESETS))
@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_the_exact_identity(preset, channels):
    x = _images(c=channels)
    assert torch.equal(AugmentPipe(preset)(x), x)


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("channels", [1, 3])
def test_each_group_changes_images_at_p1(group, channels):
    x = _images(n=8, c=channels)
    y = AugmentPipe(group, p=1.0)(x, _gen())
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    changed = (y - x).flatten(1).abs().amax(dim=1) > 1e-6
    assert changed.sum() >= 4, f"{group}: only {int(changed.sum())} of 8 images changed"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtypes_and_determinism(dtype):
    pipe = AugmentPipe("bgcfnc", p=0.7)
    x = _images(n=3, res=8, dtype=dtype)
    a, b, c = pipe(x, _gen(5)), pipe(x, _gen(5)), pipe(x, _gen(6))
    assert a.shape == x.shape and a.dtype == dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(3)
    d = pipe(x)
    torch.manual_seed(3)
    assert torch.equal(d, pipe(x))  # without a generator, the global RNG decides


def test_gradcheck_through_every_transform_at_p1():
    pipe = AugmentPipe("bgcfnc", p=1.0)
    x = _images(n=2, c=3, res=8, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: pipe(t, _gen(1)), (x,), fast_mode=True)
    small = _images(n=1, c=3, res=4, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda t: pipe(t, _gen(2)), (small,), fast_mode=True)  # R1


def test_gradcheck_when_only_some_images_are_transformed():
    pipe = AugmentPipe(augment_config("geom", imgfilter=1), p=0.2)
    x = _images(n=6, c=3, res=4, dtype=torch.float64).requires_grad_()
    y = pipe(x, _gen(3))
    untouched = (y == x).flatten(1).all(1)
    assert 0 < untouched.sum() < 6  # the subset path: some images pass through, others are resampled
    assert torch.autograd.gradcheck(lambda t: pipe(t, _gen(3)), (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda t: pipe(t, _gen(3)), (x,), fast_mode=True)


def test_gradients_flow_to_the_images():
    x = _images(n=4, c=3).requires_grad_()
    AugmentPipe("bgcfnc", p=1.0)(x, _gen()).square().sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad != 0).float().mean() > 0.5


def test_xflip_and_rotate90_are_exact_and_happen_at_half_the_rate():
    x = _images(n=2000, c=1, res=4)
    y = AugmentPipe(augment_config("blit", rotate90=0, xint=0), p=0.5)(x, _gen())
    flipped = (y == x.flip(3)).flatten(1).all(1) & ~(y == x).flatten(1).all(1)
    assert ((y == x) | (y == x.flip(3))).flatten(1).all(1).all()
    assert 0.22 < flipped.float().mean() < 0.28  # applied with p * 1, then flip or keep at random
    y = AugmentPipe(augment_config("blit", xflip=0, xint=0), p=1.0)(x[:64], _gen())
    rotations = torch.stack([torch.rot90(x[:64], k, dims=(2, 3)) for k in range(4)])  # [4, N, 1, 4, 4]
    assert (y[None] == rotations).flatten(2).all(2).any(0).all()


def test_integer_translation_keeps_pixel_values():
    x = _images(n=16, c=1, res=16)
    y = AugmentPipe(augment_config("blit", xflip=0, rotate90=0), p=1.0)(x, _gen())
    assert all(torch.isin(y[i], x[i]).all() for i in range(16))  # a gather: no new values
    assert (y != x).any()


def test_geometric_identity_is_skipped_and_small_transforms_stay_close():
    x = torch.nn.functional.avg_pool2d(_images(n=4, c=3, res=32), 5, 1, 2, count_include_pad=False)
    near = AugmentPipe(augment_config("geom", rotate=0, aniso=0, xfrac=0, scale_std=1e-4), p=1.0)(x, _gen())
    err = (near - x).abs()
    assert 0 < err.max() < 0.03 and err.mean() < 0.005  # resampling a smooth image at ~identity


def test_colour_ops_keep_grey_on_the_grey_axis():
    cfg = augment_config("color", brightness=0, lumaflip=0)  # contrast, hue, saturation
    mid_grey = torch.zeros(8, 3, 4, 4)
    assert torch.allclose(AugmentPipe(cfg, p=1.0)(mid_grey, _gen()), mid_grey, atol=1e-6)
    grey = torch.full([8, 3, 4, 4], 0.4)
    y = AugmentPipe(augment_config("color", brightness=0, contrast=0, lumaflip=0), p=1.0)(grey, _gen())
    assert torch.allclose(y, grey, atol=1e-6)  # hue and saturation leave greys alone
    x = _images(n=8, c=3)
    hue = AugmentPipe(augment_config("color", brightness=0, contrast=0, lumaflip=0, saturation=0), p=1.0)
    y = hue(x, _gen())
    assert torch.allclose(y.sum(1), x.sum(1), atol=1e-5) and not torch.allclose(y, x)  # luma kept
    flip = AugmentPipe(augment_config("color", brightness=0, contrast=0, hue=0, saturation=0), p=1.0)
    y = flip(grey, _gen())
    assert ((y - grey).abs().flatten(1).amax(1) < 1e-6).logical_or((y + grey).abs().flatten(1).amax(1) < 1e-6).all()


def test_one_channel_colour_is_brightness_and_contrast():
    x = _images(n=16, c=1)
    y = AugmentPipe("color", p=1.0)(x, _gen())
    a = ((y - y.mean((2, 3), keepdim=True)) / (x - x.mean((2, 3), keepdim=True))).flatten(1)
    assert torch.allclose(a, a[:, :1].expand_as(a), atol=1e-3)  # per image, y = gain * x + offset


def test_filter_bands_add_up_to_identity_and_zero_strength_is_off():
    pipe = AugmentPipe("filter", p=1.0)
    impulse = torch.zeros(31, dtype=torch.float64)
    impulse[15] = 1
    assert torch.allclose(pipe._bands.sum(0), impulse, atol=1e-12)
    x = _images()
    assert torch.equal(AugmentPipe(augment_config("filter", imgfilter_bands=(0, 0, 0, 0)), p=1.0)(x, _gen()), x)


def test_cutout_zeroes_a_square():
    x = torch.ones(64, 1, 16, 16)
    y = AugmentPipe("cutout", p=1.0)(x, _gen())
    assert set(y.unique().tolist()) == {0.0, 1.0}
    area = 1 - y.mean((1, 2, 3))
    assert area.max() == pytest.approx(0.25) and area.min() > 0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unknown augment preset"):
        AugmentPipe("bgz")
    with pytest.raises(ValueError, match="square"):
        AugmentPipe("blit", p=1.0)(torch.zeros(1, 3, 8, 16))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        AugmentPipe("color", p=1.0)(torch.zeros(1, 4, 8, 8))


def test_p_is_the_only_saved_state():
    pipe = AugmentPipe("bgc", p=0.25)
    assert list(pipe.state_dict()) == ["p"]
    other = AugmentPipe("bgc")
    other.load_state_dict(pipe.state_dict())
    assert float(other.p) == 0.25


# ---- AdaController ---------------------------------------------------------------------------------------
def test_p_moves_by_batch_times_interval_over_ada_kimg():
    pipe = AugmentPipe("bgc")
    ada = AdaController(pipe, batch_size=64, target=0.6, interval=4, kimg=500)
    rate = 64 * 4 / 500_000
    adjusted = []
    for _ in range(8):  # D overfits: every real logit positive, r_t = 1 > 0.6
        ada.observe(torch.ones(64, 1))
        adjusted.append(ada.step())
    assert adjusted == [False, False, False, True, False, False, False, True]
    assert ada.p == pytest.approx(2 * rate) and ada.rt == 1.0
    for _ in range(20):  # D unsure: r_t = 0 < 0.6; p falls and stops at 0
        ada.observe(torch.tensor([[1.0], [-1.0]]))
        ada.step()
    assert ada.p == 0.0 and ada.rt == 0.0


def test_no_observations_or_exact_target_leave_p_alone():
    pipe = AugmentPipe("bgc", p=0.3)
    ada = AdaController(pipe, batch_size=32, interval=1)
    ada.step()
    assert float(pipe.p) == pytest.approx(0.3)
    ada.observe(torch.tensor([1.0, 1.0, 1.0, -1.0, 1.0]))  # r_t = 0.6 exactly
    ada.step()
    assert float(pipe.p) == pytest.approx(0.3)


def test_state_dict_resumes_exactly():
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(16, 1, generator=g) + 1.5 for _ in range(40)]
    full = AdaController(AugmentPipe("bgc"), batch_size=16, kimg=1)
    for lg in logits[:22]:
        full.observe(lg)
        full.step()
    state = full.state_dict()
    resumed = AdaController(AugmentPipe("bgc"), batch_size=99)
    resumed.load_state_dict(state)
    for lg in logits[22:]:
        for ada in (full, resumed):
            ada.observe(lg)
            ada.step()
    assert full.p > 0 and torch.equal(full.pipe.p, resumed.pipe.p) and full.num_steps == resumed.num_steps == 40


def test_r1_and_ada_with_real_faces_and_a_discriminator():
    from pathlib import Path

    from stylegan.data import ImageFolderDataset
    from stylegan.networks.stylegan2 import Discriminator, DiscriminatorConfig

    faces = ImageFolderDataset(
        Path(__file__).parents[1] / "fixtures" / "att-faces", resolution=16
    )  # AT&T Labs Cambridge
    images, c = next(iter(torch.utils.data.DataLoader(faces, batch_size=8)))
    real = (images.float() / 127.5 - 1).requires_grad_()  # [8, 1, 16, 16]
    torch.manual_seed(0)
    D = Discriminator(DiscriminatorConfig(img_resolution=16, img_channels=1, channel_base=64, channel_max=16))
    pipe = AugmentPipe("bgc", p=0.5)
    ada = AdaController(pipe, batch_size=8, interval=1, kimg=0.1)
    logits = D(pipe(real), c)  # [8, 1]
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    (grad.square().sum() + logits.mean()).backward()  # R1 needs the second derivative through the pipe
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters() if p.requires_grad)
    ada.observe(torch.ones_like(logits))
    ada.step()
    assert ada.p == pytest.approx(0.5 + 8 / 100)


def test_grid_sample_has_a_second_derivative_equal_to_autograds():
    """Our grid_sample (used by the geometric group) equals F.grid_sample in value, gradient and the R1-style
    second derivative; PyTorch's CUDA kernel has no second derivative, ours does on every device."""
    import torch.nn.functional as F

    from stylegan.training.augment import grid_sample

    g = _gen(1)
    x = torch.randn([2, 3, 8, 8], generator=g, dtype=torch.float64)
    grid = torch.rand([2, 16, 16, 2], generator=g, dtype=torch.float64) * 2.4 - 1.2  # reaches the reflection
    w = torch.randn([2, 3, 16, 16], generator=g, dtype=torch.float64)

    def ref(t):
        return F.grid_sample(t, grid, mode="bicubic", padding_mode="reflection", align_corners=False)

    def second(fn):
        t = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad((fn(t) * w).square().sum(), t, create_graph=True)
        return torch.autograd.grad(gx.square().sum(), t)[0]

    assert torch.equal(grid_sample(x, grid), ref(x))
    torch.testing.assert_close(second(lambda t: grid_sample(t, grid)), second(ref), rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradgradcheck(lambda t: grid_sample(t, grid), (x.clone().requires_grad_(),))

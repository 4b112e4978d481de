"""Loss (double backward for R1 / path length), EMA, lazy-regularisation optimizers, sampler, NaN stop."""

import math

import pytest
import torch

from stylegan.networks.stylegan2 import Discriminator, Generator
from stylegan.training import (
    InfiniteSampler,
    LossConfig,
    StyleGAN2Loss,
    TrainingDiverged,
    ema_beta,
    update_ema,
)
from stylegan.training.loop import make_phases, save_snapshot, setup_run, train_step
from stylegan.training.options import resolve_hyper


def _nets():
    common = dict(img_resolution=16, img_channels=1, channel_base=256, channel_max=32)
    G = Generator(z_dim=32, w_dim=32, mapping_layers=2, **common)
    D = Discriminator(mbstd_group_size=2, **common)
    return G, D


def _grads(module):
    return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])


@pytest.mark.parametrize("phase", ["Greg", "Dreg"])
def test_regularisers_backpropagate_through_a_gradient(phase):
    G, D = _nets()
    net = G if phase == "Greg" else D
    net.requires_grad_(True)
    loss = StyleGAN2Loss(G, D, LossConfig(r1_gamma=10, pl_weight=2))
    real = torch.rand([4, 1, 16, 16]) * 2 - 1
    c = torch.zeros([4, 0])
    stats = loss.accumulate_gradients(phase, real, c, torch.randn([4, 32]), c, gain=1)
    grads = _grads(net)
    assert torch.isfinite(grads).all() and grads.abs().sum() > 0
    assert set(stats) >= ({"G/pl_penalty"} if phase == "Greg" else {"D/r1_penalty"})


def test_main_phases_are_non_saturating_logistic():
    G, D = _nets()
    loss = StyleGAN2Loss(G, D, LossConfig(style_mixing_prob=0))
    D.requires_grad_(True)
    real, z, c = torch.rand([4, 1, 16, 16]) * 2 - 1, torch.randn([4, 32]), torch.zeros([4, 0])
    torch.manual_seed(1)
    stats = loss.accumulate_gradients("Dmain", real, c, z, c, gain=1)
    with torch.no_grad():
        torch.manual_seed(1)
        fake = G(z, c, noise_mode="random")
        expected = torch.nn.functional.softplus(D(fake, c)).mean()
    assert float(stats["D/loss_fake"]) == pytest.approx(float(expected), rel=1e-5)


def test_ema_half_life_and_rampup():
    assert ema_beta(32, 10, cur_nimg=10**9) == pytest.approx(0.5 ** (32 / 10000))
    assert ema_beta(32, 10, cur_nimg=1000, ema_rampup=0.05) == pytest.approx(0.5 ** (32 / 50))
    assert ema_beta(32, 10, cur_nimg=0, ema_rampup=0.05) == 0.0  # G_ema = G at the start
    G, _ = _nets()
    G_ema, _ = _nets()
    before = [p.detach().clone() for p in G_ema.parameters()]
    update_ema(G_ema, G, 0.25)
    for p_ema, p, old in zip(G_ema.parameters(), G.parameters(), before, strict=True):
        torch.testing.assert_close(p_ema, p + 0.25 * (old - p))
    update_ema(G_ema, G, 0.0)
    assert all(
        torch.equal(a, b) for a, b in zip(G_ema.state_dict().values(), G.state_dict().values(), strict=True)
    )


def test_lazy_regularisation_scales_lr_and_betas(tiny_options):
    G, D = _nets()
    hyper = resolve_hyper(tiny_options(glr=0.002, dlr=0.003, gamma=1.0), 16, 1)
    phases = {ph.name: ph for ph in make_phases(G, D, hyper)}
    assert [(n, ph.interval) for n, ph in phases.items()] == [
        ("Gmain", 1),
        ("Greg", 4),
        ("Dmain", 1),
        ("Dreg", 16),
    ]
    g, d = phases["Gmain"].opt.param_groups[0], phases["Dmain"].opt.param_groups[0]
    assert g["lr"] == pytest.approx(0.002 * 4 / 5) and g["betas"][1] == pytest.approx(0.99 ** (4 / 5))
    assert d["lr"] == pytest.approx(0.003 * 16 / 17) and d["betas"] == pytest.approx((0, 0.99 ** (16 / 17)))
    assert g["eps"] == 1e-8
    no_reg = resolve_hyper(tiny_options(gamma=0.0, cfg="cifar"), 16, 1)
    assert [ph.name for ph in make_phases(G, D, no_reg)] == ["Gboth", "Dboth"]


def test_sampler_continues_from_its_position():
    a = InfiniteSampler(7, seed=3)
    first = a.take(10)
    rest = a.take(9)
    b = InfiniteSampler(7, seed=3, position=10)
    assert (b.take(9) == rest).all()
    assert sorted(first[:7]) == list(range(7))  # each epoch is a permutation


def test_nan_stops_with_phase_loss_and_last_snapshot(faces, tmp_path, tiny_options):
    run = setup_run(tiny_options(data=str(faces), outdir=str(tmp_path), aug="noaug", kimg=1), _info())
    train_step(run)
    save_snapshot(run)
    with torch.no_grad():
        next(run.D.parameters()).fill_(math.nan)
    with pytest.raises(TrainingDiverged) as err:
        train_step(run)
    message = str(err.value)
    assert "phase Gmain" in message and "G/loss" in message and "network-000000.004.safetensors" in message
    assert (run.run_dir / "training-state-000000.004.pt").is_file()


def _info():
    from stylegan.distributed import ProcessInfo

    return ProcessInfo()

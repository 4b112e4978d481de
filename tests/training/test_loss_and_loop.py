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
    assert all(torch.equal(a, b) for a, b in zip(G_ema.state_dict().values(), G.state_dict().values(), strict=True))


# NVIDIA's recipe (stylegan2-ada-pytorch): base lr per --cfg, then lazy regularisation with G_reg_interval 4 and
# D_reg_interval 16 for every preset, lr * k/(k+1) and beta2 = 0.99 ** (k/(k+1)). Literal values, worked out by
# hand: G 0.0025 -> 0.002, 0.002 -> 0.0016, beta2 0.99**0.8 = 0.99199197; D 0.0025 -> 0.00235294118,
# 0.002 -> 0.00188235294, beta2 0.99**(16/17) = 0.99058546. StyleGAN1 (2019): R1 every step, lr 0.001, (0, 0.99).
# StyleGAN3 (stylegan3 train.py): G lr 0.0025 with G_reg_interval None (no correction), D lr 0.002 with 16.
NVIDIA_ADAM = {  # cfg, resolution -> (G lr, G beta2, D lr, D beta2)
    ("auto", 16): (0.002, 0.99199197, 0.00235294118, 0.99058546),
    ("auto", 1024): (0.0016, 0.99199197, 0.00188235294, 0.99058546),
    ("stylegan2", 16): (0.0016, 0.99199197, 0.00188235294, 0.99058546),
    ("paper256", 16): (0.002, 0.99199197, 0.00235294118, 0.99058546),
    ("paper512", 16): (0.002, 0.99199197, 0.00235294118, 0.99058546),
    ("paper1024", 16): (0.0016, 0.99199197, 0.00188235294, 0.99058546),
    ("cifar", 16): (0.002, 0.99199197, 0.00235294118, 0.99058546),  # no path length, G interval still 4
    ("stylegan1", 16): (0.001, 0.99, 0.001, 0.99),
    ("stylegan3-t", 16): (0.0025, 0.99, 0.00188235294, 0.99058546),
    ("stylegan3-r", 1024): (0.0025, 0.99, 0.00188235294, 0.99058546),
}


@pytest.mark.parametrize("cfg,res", list(NVIDIA_ADAM))
def test_adam_settings_match_nvidias_recipe(cfg, res, tiny_options):
    from stylegan.training.options import optimizer_settings

    hyper = resolve_hyper(tiny_options(cfg=cfg, batch=None, mbstd_group=None), res, 1)
    got = optimizer_settings(hyper)
    g_lr, g_b2, d_lr, d_b2 = NVIDIA_ADAM[cfg, res]
    assert got["G"]["lr"] == pytest.approx(g_lr, rel=1e-6) and got["D"]["lr"] == pytest.approx(d_lr, rel=1e-6)
    assert got["G"]["betas"] == pytest.approx((0, g_b2), abs=1e-8)
    assert got["D"]["betas"] == pytest.approx((0, d_b2), abs=1e-8)
    assert got["G"]["eps"] == got["D"]["eps"] == 1e-8


def test_phases_and_optimizers_follow_the_settings(tiny_options):
    G, D = _nets()
    phases = {ph.name: ph for ph in make_phases(G, D, resolve_hyper(tiny_options(glr=0.002, dlr=0.003), 16, 1))}
    assert [(n, ph.interval) for n, ph in phases.items()] == [("Gmain", 1), ("Greg", 4), ("Dmain", 1), ("Dreg", 16)]
    g, d = phases["Gmain"].opt.param_groups[0], phases["Dmain"].opt.param_groups[0]
    assert phases["Greg"].opt is phases["Gmain"].opt
    assert g["lr"] == pytest.approx(0.0016) and g["betas"] == pytest.approx((0, 0.99199197))
    assert d["lr"] == pytest.approx(0.00282352941) and d["betas"] == pytest.approx((0, 0.99058546))
    # cifar: no path length, so no Greg phase (an empty one would still move Adam's state), lr still scaled.
    cifar = {ph.name: ph for ph in make_phases(G, D, resolve_hyper(tiny_options(cfg="cifar"), 16, 1))}
    assert list(cifar) == ["Gmain", "Dmain", "Dreg"]
    assert cifar["Gmain"].opt.param_groups[0]["lr"] == pytest.approx(0.002)
    no_r1 = make_phases(G, D, resolve_hyper(tiny_options(cfg="cifar", gamma=0.0), 16, 1))
    assert [ph.name for ph in no_r1] == ["Gmain", "Dmain"]
    assert no_r1[1].opt.param_groups[0]["lr"] == pytest.approx(0.00235294118)
    sg1 = make_phases(G, D, resolve_hyper(tiny_options(cfg="stylegan1"), 16, 1))
    assert [(ph.name, ph.interval) for ph in sg1] == [("Gboth", 1), ("Dboth", 1)]


def test_cifar_run_records_the_effective_settings(faces, tmp_path, tiny_options):
    """config.json of a run carries the Adam settings it used."""
    import json

    run = setup_run(tiny_options(data=str(faces), outdir=str(tmp_path), cfg="cifar", aug="noaug", kimg=1), _info())
    resolved = json.loads((run.run_dir / "config.json").read_text())["resolved"]
    assert resolved["optimizers"]["G"]["lr"] == pytest.approx(0.002)
    assert resolved["optimizers"]["G"]["betas"][1] == pytest.approx(0.99199197)


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

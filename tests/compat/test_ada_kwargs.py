"""The init_kwargs variants found in real stylegan2-ada-pytorch pickles map onto our configs."""

import pytest
import torch

from stylegan.compat.ada import discriminator_config, generator_config
from stylegan.io import ModelFormatError
from stylegan.networks.stylegan2 import Discriminator, Generator

# As train.py writes them (config-f) and as legacy.py writes them for TF-converted official models.
G_TRAIN = dict(
    z_dim=32,
    c_dim=0,
    w_dim=32,
    img_resolution=16,
    img_channels=3,
    mapping_kwargs=dict(num_layers=8),
    synthesis_kwargs=dict(channel_base=512, channel_max=32, num_fp16_res=4, conv_clamp=256),
)
G_LEGACY = dict(
    z_dim=32,
    c_dim=10,
    w_dim=32,
    img_resolution=16,
    img_channels=3,
    mapping_kwargs=dict(
        num_layers=2,
        embed_features=None,
        layer_features=None,
        activation="lrelu",
        lr_multiplier=0.01,
        w_avg_beta=0.995,
    ),
    synthesis_kwargs=dict(
        channel_base=512,
        channel_max=32,
        num_fp16_res=0,
        conv_clamp=None,
        architecture="skip",
        resample_filter=[1, 3, 3, 1],
        use_noise=True,
        activation="lrelu",
        fp16_channels_last=False,
    ),
)
D_LEGACY = dict(
    c_dim=10,
    img_resolution=16,
    img_channels=3,
    architecture="resnet",
    channel_base=512,
    channel_max=32,
    num_fp16_res=0,
    conv_clamp=None,
    cmap_dim=None,
    block_kwargs=dict(activation="lrelu", resample_filter=[1, 3, 3, 1], freeze_layers=0),
    mapping_kwargs=dict(num_layers=0, embed_features=None, layer_features=None, activation="lrelu", lr_multiplier=0.1),
    epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=1, activation="lrelu"),
)


@pytest.mark.parametrize("kwargs", [G_TRAIN, G_LEGACY], ids=["train", "legacy"])
def test_generator_kwargs(kwargs):
    cfg = generator_config(kwargs)
    G = Generator(cfg)
    c = torch.eye(max(cfg.c_dim, 1))[:2, : cfg.c_dim]
    assert G(torch.randn(2, cfg.z_dim), c).shape == (2, 3, 16, 16)
    assert cfg.mapping_layers == kwargs["mapping_kwargs"]["num_layers"]


def test_discriminator_kwargs_with_zero_layer_label_mapping():
    D = Discriminator(discriminator_config(D_LEGACY))
    assert D.mapping.num_layers == 0 and D.config.mapping_lr_multiplier == 0.1
    assert D(torch.randn(4, 3, 16, 16), torch.eye(10)[:4]).shape == (4, 1)


def test_unknown_kwargs_are_named():
    bad = dict(G_TRAIN, synthesis_kwargs=dict(G_TRAIN["synthesis_kwargs"], magnitude_ema_beta=0.99))
    with pytest.raises(ModelFormatError, match="magnitude_ema_beta"):
        generator_config(bad, "x.pkl [G]")

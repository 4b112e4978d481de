"""Named configurations after NVIDIA's `--cfg` tables (stylegan2-ada-pytorch and stylegan3 train.py), at any
resolution.

A preset gives the network configs plus the training hyper-parameters that go with them. `auto` derives them from
the resolution and GPU count like NVIDIA's `--cfg=auto`. `stylegan3-t` / `stylegan3-r` are the alias-free
generator with StyleGAN2's discriminator and the 2021 recipe: no style mixing, no path-length regulariser, R1 on D
every 16 steps and G updated without lazy regularisation; `-r` also blurs D's inputs early in training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stylegan.networks import stylegan3
from stylegan.networks.stylegan2 import DiscriminatorConfig, GeneratorConfig

AUTO = -1  # a Preset field value derived from the resolution and batch (see resolve_gamma / resolve_ema_kimg)


@dataclass(frozen=True)
class Preset:
    """Hyper-parameters of one `--cfg` entry. `fmaps` scales channel_base = fmaps * 32768.

    `lrate` is G's Adam learning rate and D's unless `d_lrate` is set. A regulariser runs every `*_reg_interval`
    steps (1: in the main phase, every step). `blur_sigma` > 0 blurs D's inputs, fading out over the first
    `blur_fade_kimg` thousand images at batch 32 (proportionally longer for larger batches).
    """

    name: str
    ref_gpus: int
    kimg: int
    batch: int  # -1: derived (auto)
    mbstd: int
    fmaps: float
    lrate: float
    gamma: float
    ema_kimg: float
    ema_rampup: float | None
    map_layers: int
    pl_weight: float = 2.0
    style_mixing_prob: float = 0.9
    d_architecture: str = "resnet"
    family: str = "stylegan2"
    d_lrate: float | None = None
    g_reg_interval: int = 4
    d_reg_interval: int = 16
    blur_sigma: float = 0.0
    blur_fade_kimg: float = 0.0


def _stylegan3(name: str, **kw) -> Preset:
    """NVIDIA's stylegan3 train.py settings: G lr 0.0025, D lr 0.002, 2 mapping layers, EMA half-life
    batch * 10/32 kimg with ramp-up 0.05, R1 every 16 steps, G without lazy regularisation."""
    return Preset(
        name, 8, 25000, 32, 4, 1, 0.0025, AUTO, AUTO, 0.05, 2, pl_weight=0.0, style_mixing_prob=0.0,
        family="stylegan3", d_lrate=0.002, g_reg_interval=1, **kw,
    )  # fmt: skip


PRESETS: dict[str, Preset] = {
    "auto": Preset("auto", -1, 25000, -1, -1, -1, -1, -1, -1, 0.05, 2),
    "stylegan2": Preset("stylegan2", 8, 25000, 32, 4, 1, 0.002, 10, 10, None, 8),
    "paper256": Preset("paper256", 8, 25000, 64, 8, 0.5, 0.0025, 1, 20, None, 8),
    "paper512": Preset("paper512", 8, 25000, 64, 8, 1, 0.0025, 0.5, 20, None, 8),
    "paper1024": Preset("paper1024", 8, 25000, 32, 4, 2, 0.002, 2, 10, None, 8),
    "cifar": Preset(
        "cifar",
        2,
        100000,
        64,
        32,
        1,
        0.0025,
        0.01,
        500,
        0.05,
        2,
        pl_weight=0.0,
        style_mixing_prob=0.0,
        d_architecture="orig",
    ),
    # The 2019 paper's networks at a fixed resolution: R1 gamma 10, style mixing 0.9, no path-length reg.
    "stylegan1": Preset(
        "stylegan1",
        8,
        25000,
        32,
        4,
        1,
        0.001,
        10,
        10,
        None,
        8,
        pl_weight=0.0,
        family="stylegan1",
        g_reg_interval=1,
        d_reg_interval=1,
    ),  # fmt: skip
    # --gamma has no default in NVIDIA's stylegan3 train.py; ours is the ADA heuristic (resolve_gamma).
    "stylegan3-t": _stylegan3("stylegan3-t"),
    "stylegan3-r": _stylegan3("stylegan3-r", blur_sigma=10.0, blur_fade_kimg=200.0),
}


def resolve_preset(name: str, resolution: int, gpus: int = 1) -> Preset:
    """Returns the preset with `auto` fields filled in for this resolution and GPU count."""
    if name not in PRESETS:
        raise ValueError(f"unknown --cfg {name!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[name]
    if name != "auto":
        return p
    batch = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    return replace(
        p,
        batch=batch,
        mbstd=min(batch // gpus, 4),
        fmaps=1 if resolution >= 512 else 0.5,
        lrate=0.002 if resolution >= 1024 else 0.0025,
        gamma=heuristic_gamma(resolution, batch),
        ema_kimg=batch * 10 / 32,
    )


def heuristic_gamma(resolution: int, batch: int) -> float:
    """R1 weight 0.0002 * resolution^2 / batch (Karras et al. 2020a, ADA), the default where a preset has none."""
    return 0.0002 * resolution**2 / batch


def blur_fade_kimg(p: Preset, batch: int) -> float:
    """The D-input blur fades out over blur_fade_kimg * batch / 32 kimg (NVIDIA: 200 kimg at batch 32)."""
    return p.blur_fade_kimg * batch / 32


def build_configs(
    name: str,
    resolution: int,
    *,
    img_channels: int = 3,
    c_dim: int = 0,
    gpus: int = 1,
    num_fp16_res: int = 4,
    conv_clamp: float | None = 256,
    batch: int | None = None,
    **overrides,
):
    """Generator and discriminator configs of a preset at the given resolution.

    `overrides` may set channel_base, channel_max, mapping_layers or mbstd_group_size (e.g. for tiny test nets),
    and num_layers for StyleGAN3. `batch` (default: the preset's) sets StyleGAN3's magnitude_ema_beta.
    """
    p = resolve_preset(name, resolution, gpus)
    if p.family == "stylegan1":
        return _stylegan1_configs(p, resolution, img_channels, c_dim, overrides)
    if p.family == "stylegan3":
        kinds = dict(img_channels=img_channels, c_dim=c_dim, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp)
        return _stylegan3_configs(p, resolution, batch or p.batch, kinds, overrides)
    channel_base = overrides.pop("channel_base", int(p.fmaps * 32768))
    channel_max = overrides.pop("channel_max", 512)
    mapping_layers = overrides.pop("mapping_layers", p.map_layers)
    mbstd = overrides.pop("mbstd_group_size", p.mbstd)
    z_dim = overrides.pop("z_dim", 512)
    w_dim = overrides.pop("w_dim", 512)
    if overrides:
        raise ValueError(f"unknown overrides: {sorted(overrides)}")
    common = dict(
        img_resolution=resolution,
        img_channels=img_channels,
        c_dim=c_dim,
        channel_base=channel_base,
        channel_max=channel_max,
        num_fp16_res=num_fp16_res,
        conv_clamp=conv_clamp,
    )
    g = GeneratorConfig(z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers, **common)
    d = DiscriminatorConfig(architecture=p.d_architecture, mbstd_group_size=mbstd, **common)
    return g, d


def _stylegan1_configs(p: Preset, resolution: int, img_channels: int, c_dim: int, overrides: dict):
    """The paper's G and D; channel_base/channel_max mean the same channel counts as for StyleGAN2."""
    from stylegan.networks import stylegan1

    renames = {
        "channel_base": "fmap_base",
        "channel_max": "fmap_max",
        "mapping_layers": "mapping_layers",
        "mbstd_group_size": "mbstd_group_size",
        "z_dim": "z_dim",
        "w_dim": "w_dim",
    }
    unknown = sorted(set(overrides) - set(renames))
    if unknown:
        raise ValueError(f"unknown overrides: {unknown}")
    kwargs = {renames[k]: v for k, v in overrides.items() if v is not None}
    if "fmap_base" in kwargs:
        kwargs["fmap_base"] = max(kwargs["fmap_base"] // 2, 1)  # SG1: nf(res) = fmap_base * 2 / res
    kwargs.setdefault("mbstd_group_size", p.mbstd)
    if "w_dim" in kwargs:
        kwargs.setdefault("mapping_features", kwargs["w_dim"])
    return stylegan1.preset_configs(
        "ffhq1024", img_resolution=resolution, img_channels=img_channels, c_dim=c_dim, **kwargs
    )


def _stylegan3_configs(p: Preset, resolution: int, batch: int, common: dict, overrides: dict):
    """SG3 G by stylegan3.preset_config (R doubles G's channels); D is StyleGAN2's with the undoubled ones."""
    known = {"channel_base", "channel_max", "mapping_layers", "mbstd_group_size", "z_dim", "w_dim", "num_layers"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown overrides: {unknown}")
    channels = {
        "channel_base": overrides.get("channel_base", int(p.fmaps * 32768)),
        "channel_max": overrides.get("channel_max", 512),
    }
    g_extra = {k: overrides[k] for k in ("z_dim", "w_dim", "num_layers") if overrides.get(k) is not None}
    g = stylegan3.preset_config(
        p.name, resolution, batch=batch, mapping_layers=overrides.get("mapping_layers", p.map_layers),
        **channels, **common, **g_extra,
    )  # fmt: skip
    d = DiscriminatorConfig(
        img_resolution=resolution, architecture=p.d_architecture,
        mbstd_group_size=overrides.get("mbstd_group_size", p.mbstd), **channels, **common,
    )  # fmt: skip
    return g, d

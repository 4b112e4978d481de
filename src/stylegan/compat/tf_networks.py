"""NVIDIA's TensorFlow pickles (StyleGAN1, StyleGAN2 configs e/f, StyleGAN2-ADA-TF) onto our networks.

The file is read by `nvidia_pickle.read_tf_pickle` (no TensorFlow, no code from the file runs). Everything
else is driven by the variable names and shapes in the file: resolution, channels, mapping depth, label size
and architecture come from the shapes, the rest from the static kwargs, checked against a known list.

One name table per network maps each of our state_dict keys to a TF variable name and a layout kind (see
`_FROM_TF`); the tests export our networks through the same tables to write their fixtures.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stylegan.compat.build import build_within
from stylegan.compat.errors import IgnoredSettingWarning, ModelFormatError
from stylegan.compat.nvidia_pickle import TFNetworkRecord, read_tf_pickle
from stylegan.compat.safe_pickle import one_line
from stylegan.networks import stylegan1, stylegan2

# layout kind -> how a TF array becomes ours
_FROM_TF: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "id": lambda a: a,
    "dense": lambda a: a.T,  # TF [in, out] -> ours [out, in]
    "conv": lambda a: a.transpose(3, 2, 0, 1),  # TF [k, k, in, out] -> ours [out, in, k, k]
    # StyleGAN2-TF ran its up-sampling convs as conv2d_transpose: ours are the spatially flipped kernels.
    "conv_flip": lambda a: a[::-1, ::-1].transpose(3, 2, 0, 1),
    "plus1": lambda a: a + 1,  # StyleGAN2 mod_bias: ours bakes the +1 in
    "const": lambda a: a[0],  # [1, C, 4, 4] -> [C, 4, 4]
    "noise": lambda a: a[0, 0],  # [1, 1, r, r] -> [r, r]
}

NameFn = Callable[[str], "tuple[str, str] | None"]


def _log2(res: str | int) -> int:
    return int(math.log2(int(res)))


# ----------------------------------------------------------------------------------------------------------
# Name tables: our state_dict key -> (TF variable name, layout kind), or None for buffers TF does not store.

_SG2_LAYER = {
    "weight": ("weight", "conv"),
    "bias": ("bias", "id"),
    "noise_strength": ("noise_strength", "id"),
    "affine.weight": ("mod_weight", "dense"),
    "affine.bias": ("mod_bias", "plus1"),
}


def sg2_generator_name(key: str) -> tuple[str, str] | None:
    """StyleGAN2 generator key -> TF name (after NVIDIA's legacy.py conventions)."""
    if key.endswith("resample_filter"):
        return None
    if key == "mapping.w_avg":
        return "dlatent_avg", "id"
    if m := re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", key):
        scope = "LabelEmbed" if m[1] == "embed" else f"Dense{m[2]}"
        return f"mapping/{scope}/{m[3]}", "dense" if m[3] == "weight" else "id"
    if key == "synthesis.b4.const":
        return "synthesis/4x4/Const/const", "const"
    if m := re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1)\.noise_const", key):
        idx = 0 if m[1] == "4" else 2 * _log2(m[1]) - (5 if m[2] == "conv0" else 4)
        return f"synthesis/noise{idx}", "noise"
    if m := re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(.+)", key):
        r, layer, suffix = m[1], m[2], m[3]
        scope = (
            "Conv"
            if r == "4" and layer == "conv1"
            else {"conv0": "Conv0_up", "conv1": "Conv1", "torgb": "ToRGB"}[layer]
        )
        tf_suffix, kind = _SG2_LAYER[suffix]
        return (
            f"synthesis/{r}x{r}/{scope}/{tf_suffix}",
            "conv_flip" if scope == "Conv0_up" and kind == "conv" else kind,
        )
    if m := re.fullmatch(r"synthesis\.b(\d+)\.skip\.weight", key):
        return f"synthesis/{m[1]}x{m[1]}/Skip/weight", "conv_flip"
    raise KeyError(key)


def sg2_discriminator_name(key: str) -> tuple[str, str] | None:
    """StyleGAN2 discriminator key -> TF name."""
    if key.endswith("resample_filter"):
        return None
    param = key.rsplit(".", 1)[-1]
    if m := re.fullmatch(r"b(\d+)\.(fromrgb|conv0|conv1|skip)\.(weight|bias)", key):
        scope = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[m[2]]
        return f"{m[1]}x{m[1]}/{scope}/{param}", "conv" if param == "weight" else "id"
    if m := re.fullmatch(r"(b4\.conv|b4\.fc|b4\.out|mapping\.embed|mapping\.fc(\d+))\.(weight|bias)", key):
        scope = {
            "b4.conv": "4x4/Conv",
            "b4.fc": "4x4/Dense0",
            "b4.out": "Output",
            "mapping.embed": "LabelEmbed",
        }.get(m[1], f"Mapping{m[2]}")
        kind = ("conv" if m[1] == "b4.conv" else "dense") if param == "weight" else "id"
        return f"{scope}/{param}", kind
    raise KeyError(key)


_SG1_LAYER = {
    "conv.weight": ("weight", "conv"),
    "bias": ("bias", "id"),
    "noise_strength": ("Noise/weight", "id"),
    "affine.weight": ("StyleMod/weight", "dense"),
    "affine.bias": ("StyleMod/bias", "id"),
}


def sg1_generator_name(key: str) -> tuple[str, str] | None:
    """StyleGAN1 generator key -> TF name (networks_stylegan.py scopes)."""
    if key == "mapping.w_avg":
        return "dlatent_avg", "id"
    if key == "mapping.embed.weight":
        return "mapping/LabelConcat/weight", "dense"
    if m := re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", key):
        return f"mapping/Dense{m[1]}/{m[2]}", "dense" if m[2] == "weight" else "id"
    if key == "synthesis.b4.const":
        return "synthesis/4x4/Const/const", "const"
    if m := re.fullmatch(r"synthesis\.torgb\.(weight|bias)", key):
        return f"synthesis/ToRGB_lod0/{m[1]}", "conv" if m[1] == "weight" else "id"
    if m := re.fullmatch(r"synthesis\.b(\d+)\.conv([01])\.(.+)", key):
        r, j, suffix = m[1], int(m[2]), m[3]
        if suffix == "noise_const":
            return f"synthesis/noise{2 * (_log2(r) - 2) + j}", "noise"
        scope = ("Const", "Conv")[j] if r == "4" else ("Conv0_up", "Conv1")[j]
        tf_suffix, kind = _SG1_LAYER[suffix]
        return f"synthesis/{r}x{r}/{scope}/{tf_suffix}", kind
    raise KeyError(key)


def sg1_discriminator_name(key: str) -> tuple[str, str] | None:
    """StyleGAN1 discriminator key -> TF name (D_basic scopes)."""
    param = key.rsplit(".", 1)[-1]
    kind = "id" if param == "bias" else "conv"
    if re.fullmatch(r"b\d+\.fromrgb\.(weight|bias)", key):
        return f"FromRGB_lod0/{param}", kind
    if m := re.fullmatch(r"b(\d+)\.(conv0|conv1)\.(weight|bias)", key):
        return f"{m[1]}x{m[1]}/{'Conv0' if m[2] == 'conv0' else 'Conv1_down'}/{param}", kind
    if m := re.fullmatch(r"b4\.(conv|fc|out)\.(weight|bias)", key):
        scope = {"conv": "Conv", "fc": "Dense0", "out": "Dense1"}[m[1]]
        return f"4x4/{scope}/{param}", kind if m[1] == "conv" or param == "bias" else "dense"
    raise KeyError(key)


# ----------------------------------------------------------------------------------------------------------
# Static kwargs: what each family knows. Values in _REQUIRED must hold (the only variants we build).

_SG1_G_KWARGS = set(
    """
    latent_size label_size dlatent_size dlatent_broadcast mapping_layers mapping_fmaps mapping_lrmul
    mapping_nonlinearity use_wscale normalize_latents dtype num_channels resolution fmap_base fmap_decay
    fmap_max use_styles const_input_layer use_noise randomize_noise nonlinearity use_pixel_norm
    use_instance_norm fused_scale blur_filter structure truncation_psi truncation_cutoff truncation_psi_val
    truncation_cutoff_val dlatent_avg_beta style_mixing_prob
    """.split()
)
_SG1_D_KWARGS = set(
    """
    num_channels resolution label_size fmap_base fmap_decay fmap_max nonlinearity use_wscale mbstd_group_size
    mbstd_num_features dtype fused_scale blur_filter structure
    """.split()
)
_SG2_G_KWARGS = set(
    """
    latent_size label_size dlatent_size dlatent_broadcast resolution num_channels mapping_layers label_fmaps
    mapping_fmaps mapping_nonlinearity mapping_lrmul w_avg_beta dlatent_avg_beta fmap_base fmap_decay fmap_min
    fmap_max num_fp16_res conv_clamp architecture resample_kernel use_noise randomize_noise nonlinearity
    normalize_latents dtype fused_modconv truncation_psi truncation_cutoff truncation_psi_val
    truncation_cutoff_val style_mixing_prob structure mapping_func synthesis_func fmap_const
    """.split()
)
_SG2_D_KWARGS = set(
    """
    label_size resolution num_channels architecture fmap_base fmap_decay fmap_min fmap_max num_fp16_res
    conv_clamp mapping_layers mapping_fmaps mapping_lrmul nonlinearity resample_kernel mbstd_group_size
    mbstd_num_features dtype structure freeze_layers augment_strength use_pagan pagan_num pagan_fade score_size
    score_max use_spectral_norm adaptive_dropout
    """.split()
)
_REQUIRED = {
    "use_wscale": True,
    "use_styles": True,
    "const_input_layer": True,
    "use_pixel_norm": False,
    "use_instance_norm": True,
    "normalize_latents": True,
    "dtype": "float32",
    "fmap_decay": 1.0,
    "fmap_min": 1,
    "structure": ("auto", "fixed", "linear", "recursive", None),
    "mapping_func": "G_mapping",
    "synthesis_func": ("G_synthesis", "G_synthesis_stylegan2"),
    # StyleGAN2-ADA-TF comparison methods that change the discriminator's maths
    "use_pagan": False,
    "use_spectral_norm": False,
    "adaptive_dropout": 0,
    "score_size": 1,
    "score_max": 1,
}


_ANY_TF_KWARGS = _SG1_G_KWARGS | _SG1_D_KWARGS | _SG2_G_KWARGS | _SG2_D_KWARGS


def _check_kwargs(kwargs: dict, reads: set[str], what: str) -> None:
    """Checks a network's static kwargs against those its build function reads (`reads`).

    NVIDIA's build functions take `**_kwargs` and ignore what they do not read, so a kwarg known to some other
    build function (e.g. a D carrying the G's latent_size) cannot change the maths: it is ignored, with a
    warning. A kwarg that no NVIDIA build function knows may belong to a modified network: refused. Of the
    kwargs read, those in _REQUIRED must hold the values this package builds.
    """
    foreign = sorted(set(kwargs) - _ANY_TF_KWARGS)
    if foreign:
        raise ModelFormatError(f"{what}: unknown TensorFlow kwargs {', '.join(foreign)} (a modified network?)")
    unused = sorted(set(kwargs) - reads)
    if unused:
        warnings.warn(
            f"{what}: ignoring TensorFlow kwargs {', '.join(unused)}, which this build function does not read",
            IgnoredSettingWarning,
            stacklevel=2,
        )
    for key in sorted(set(kwargs) & reads & set(_REQUIRED)):
        want, value = _REQUIRED[key], kwargs[key]
        if not (value in want if isinstance(want, tuple) else value == want):
            raise ModelFormatError(f"{what}: kwarg {key}={value!r} is not supported (only {want!r})")


def _activation(kw: dict, what: str) -> str:
    act = _kw(kw, "nonlinearity", "lrelu")
    if _kw(kw, "mapping_nonlinearity", "lrelu") != act:
        raise ModelFormatError(f"{what}: different mapping and synthesis nonlinearities are not supported")
    return act


def _none_if(value: int, default: int) -> int | None:
    return None if value == default else value


def _kw(kwargs: dict, key: str, default):
    value = kwargs.get(key, default)
    return default if value is None else value


# ----------------------------------------------------------------------------------------------------------
# Shapes -> sizes.


def _resolutions(variables: dict, prefix: str = "") -> list[int]:
    found = {int(m[1]) for name in variables if (m := re.match(rf"{prefix}(\d+)x\1/", name))}
    return sorted(found)


def _count(variables: dict, pattern: str) -> int:
    return len({m[1] for name in variables if (m := re.fullmatch(pattern, name))})


def _need(variables: dict, name: str, what: str) -> np.ndarray:
    if name not in variables:
        raise ModelFormatError(f"{what}: missing TF variable {name}")
    return variables[name]


def _channel_schedule(channels: dict[int, int], stage_of: Callable[[int], int]) -> tuple[int, int]:
    """(base, max) with channels[r] == min(base / 2^stage_of(r), max), from the observed channels."""
    cmax = channels[min(channels)]
    below = [r for r in sorted(channels) if channels[r] < cmax]
    base = channels[below[0]] * 2 ** stage_of(below[0]) if below else cmax * 2 ** stage_of(max(channels))
    return base, cmax


def _sg1_stage(res: int) -> int:
    return _log2(res) - 1


# ----------------------------------------------------------------------------------------------------------
# StyleGAN1 (version 2/3: G_style, D_basic)


def _sg1_generator_config(rec: TFNetworkRecord, v: dict, what: str) -> stylegan1.GeneratorConfig:
    kw = rec.static_kwargs
    _check_kwargs(kw, _SG1_G_KWARGS, what)
    res = _resolutions(v, "synthesis/")
    n_map = _count(v, r"mapping/Dense(\d+)/weight")
    if not res or n_map == 0:
        raise ModelFormatError(f"{what}: no synthesis or mapping layers found")
    dense0 = _need(v, "mapping/Dense0/weight", what)
    label = v.get("mapping/LabelConcat/weight")
    c_dim, z_dim = label.shape if label is not None else (0, dense0.shape[0])
    channels = {r: _need(v, f"synthesis/{r}x{r}/Conv{'' if r == 4 else '1'}/bias", what).shape[0] for r in res}
    fmap_base, fmap_max = _channel_schedule(channels, _sg1_stage)
    act = _activation(kw, what)
    psi, cutoff = kw.get("truncation_psi", 0.7), kw.get("truncation_cutoff", 8)
    if psi is None or cutoff is None:  # G_style: either None disables truncation
        psi, cutoff = 1.0, None
    return stylegan1.GeneratorConfig(
        z_dim=int(z_dim),
        c_dim=int(c_dim),
        w_dim=int(_need(v, f"mapping/Dense{n_map - 1}/weight", what).shape[1]),
        img_resolution=res[-1],
        img_channels=int(_need(v, "synthesis/ToRGB_lod0/weight", what).shape[-1]),
        mapping_layers=n_map,
        mapping_features=int(dense0.shape[1]),
        mapping_lr_multiplier=float(_kw(kw, "mapping_lrmul", 0.01)),
        w_avg_beta=float(_kw(kw, "dlatent_avg_beta", 0.995)),
        fmap_base=int(fmap_base),
        fmap_max=int(fmap_max),
        blur_filter=tuple(kw.get("blur_filter", (1, 2, 1)) or ()),
        fused_scale=_kw(kw, "fused_scale", "auto"),
        use_noise="synthesis/noise0" in v,
        activation=act,
        truncation_psi=float(psi),
        truncation_cutoff=cutoff,
    )


def _sg1_discriminator_config(rec: TFNetworkRecord, v: dict, what: str) -> stylegan1.DiscriminatorConfig:
    kw = rec.static_kwargs
    _check_kwargs(kw, _SG1_D_KWARGS, what)
    res = _resolutions(v)
    if not res:
        raise ModelFormatError(f"{what}: no discriminator layers found")
    channels = {r: _need(v, f"{r}x{r}/Conv{'' if r == 4 else '0'}/bias", what).shape[0] for r in res}
    fmap_base, fmap_max = _channel_schedule(channels, _sg1_stage)
    ch4, conv4 = channels[4], _need(v, "4x4/Conv/weight", what)
    out = _need(v, "4x4/Dense1/weight", what)
    c_dim = int(_kw(kw, "label_size", out.shape[1] if out.shape[1] > 1 else 0))
    return stylegan1.DiscriminatorConfig(
        c_dim=c_dim,
        img_resolution=res[-1],
        img_channels=int(_need(v, "FromRGB_lod0/weight", what).shape[2]),
        fmap_base=int(fmap_base),
        fmap_max=int(max(fmap_max, _need(v, "4x4/Dense0/weight", what).shape[1])),
        mbstd_group_size=int(_kw(kw, "mbstd_group_size", 4)) if conv4.shape[2] > ch4 else 0,
        mbstd_num_channels=max(int(conv4.shape[2] - ch4), 1),
        blur_filter=tuple(kw.get("blur_filter", (1, 2, 1)) or ()),
        fused_scale=_kw(kw, "fused_scale", "auto"),
        activation=_kw(kw, "nonlinearity", "lrelu"),
    )


def _sg1_ignored(name: str, value: np.ndarray, what: str) -> bool:
    """Variables of the progressive-growing graph that the final network does not use."""
    if name.rsplit("/", 1)[-1] == "lod":
        if np.any(value != 0):
            raise ModelFormatError(f"{what}: snapshot taken while growing (lod={float(value)}); only lod 0 loads")
        return True
    return bool(re.fullmatch(r"(synthesis/ToRGB|FromRGB)_lod[1-9]\d*/(weight|bias)", name))


# ----------------------------------------------------------------------------------------------------------
# StyleGAN2 / ADA-TF (version 4, and 5 for StyleGAN2-ADA-TF: G_main, D_stylegan2 / D_main)


def _sg2_refuse_growing(rec: TFNetworkRecord, v: dict, what: str) -> None:
    synth = rec.components.get("synthesis")
    if any(re.search(r"(ToRGB|FromRGB)_lod\d", name) for name in v) or (
        synth is not None and synth.build_func_name not in ("G_synthesis_stylegan2", "G_synthesis")
    ):
        raise ModelFormatError(
            f"{what}: StyleGAN2 configs a-d (progressive growing / revised StyleGAN1 "
            "synthesis) are not supported; configs e and f and StyleGAN2-ADA load"
        )


def _sg2_architecture(v: dict, prefix: str, rgb: str, what: str, kw: dict) -> str:
    arch = (
        "resnet"
        if any(re.match(rf"{prefix}\d+x\d+/Skip/", n) for n in v)
        else ("skip" if _count(v, rf"{prefix}(\d+)x\1/{rgb}/weight") > 1 else "orig")
    )
    if kw.get("architecture", arch) != arch:
        raise ModelFormatError(f"{what}: architecture kwarg {kw['architecture']!r} does not match the variables")
    return arch


def _sg2_generator_config(rec: TFNetworkRecord, v: dict, what: str) -> stylegan2.GeneratorConfig:
    kw = rec.static_kwargs
    _check_kwargs(kw, _SG2_G_KWARGS, what)
    _sg2_refuse_growing(rec, v, what)
    if "mapping/LabelConcat/weight" in v:
        raise ModelFormatError(
            f"{what}: conditional StyleGAN2-TF (LabelConcat) has no stylegan2 equivalent; "
            "conditional StyleGAN2-ADA (LabelEmbed) loads"
        )
    res = _resolutions(v, "synthesis/")
    n_map = _count(v, r"mapping/Dense(\d+)/weight")
    if not res or n_map == 0:
        raise ModelFormatError(f"{what}: no synthesis or mapping layers found")
    embed = v.get("mapping/LabelEmbed/weight")
    dense0 = _need(v, "mapping/Dense0/weight", what)
    c_dim, embed_features = embed.shape if embed is not None else (0, 0)
    channels = {r: _need(v, f"synthesis/{r}x{r}/Conv{'' if r == 4 else '1'}/bias", what).shape[0] for r in res}
    channel_base, channel_max = _channel_schedule(channels, _log2)
    w_dim = int(_need(v, f"mapping/Dense{n_map - 1}/weight", what).shape[1])
    return stylegan2.GeneratorConfig(
        z_dim=int(dense0.shape[0] - embed_features),
        c_dim=int(c_dim),
        w_dim=w_dim,
        img_resolution=res[-1],
        img_channels=int(_need(v, f"synthesis/{res[-1]}x{res[-1]}/ToRGB/bias", what).shape[0]),
        mapping_layers=n_map,
        mapping_lr_multiplier=float(_kw(kw, "mapping_lrmul", 0.01)),
        embed_features=_none_if(int(embed_features), w_dim) if c_dim else None,
        layer_features=_none_if(int(dense0.shape[1]), w_dim),
        w_avg_beta=float(_kw(kw, "w_avg_beta", _kw(kw, "dlatent_avg_beta", 0.995))),
        channel_base=int(channel_base),
        channel_max=int(channel_max),
        num_fp16_res=int(_kw(kw, "num_fp16_res", 0)),
        conv_clamp=kw.get("conv_clamp"),
        architecture=_sg2_architecture(v, "synthesis/", "ToRGB", what, kw),
        resample_filter=tuple(_kw(kw, "resample_kernel", (1, 3, 3, 1))),
        use_noise="synthesis/noise0" in v,
        activation=_activation(kw, what),
    )


def _sg2_discriminator_config(rec: TFNetworkRecord, v: dict, what: str) -> stylegan2.DiscriminatorConfig:
    kw = rec.static_kwargs
    _check_kwargs(kw, _SG2_D_KWARGS, what)
    _sg2_refuse_growing(rec, v, what)
    embed = v.get("LabelEmbed/weight")
    if embed is None and _need(v, "Output/weight", what).shape[1] > 1:
        raise ModelFormatError(f"{what}: conditional StyleGAN2-TF discriminator (label switch) is not supported")
    res = _resolutions(v)
    channels = {r: _need(v, f"{r}x{r}/Conv{'' if r == 4 else '0'}/bias", what).shape[0] for r in res}
    channel_base, channel_max = _channel_schedule(channels, _log2)
    conv4 = _need(v, "4x4/Conv/weight", what)
    top = res[-1]
    return stylegan2.DiscriminatorConfig(
        c_dim=int(embed.shape[0]) if embed is not None else 0,
        img_resolution=top,
        img_channels=int(_need(v, f"{top}x{top}/FromRGB/weight", what).shape[2]),
        architecture=_sg2_architecture(v, "", "FromRGB", what, kw),
        channel_base=int(channel_base),
        channel_max=int(channel_max),
        num_fp16_res=int(_kw(kw, "num_fp16_res", 0)),
        conv_clamp=kw.get("conv_clamp"),
        cmap_dim=_none_if(int(v["Output/weight"].shape[1]), channels[4]) if embed is not None else None,
        mbstd_group_size=kw.get("mbstd_group_size", None if rec.build_func_name == "D_main" else 4),
        mbstd_num_channels=int(conv4.shape[2] - channels[4]),
        mapping_layers=_count(v, r"Mapping(\d+)/weight") if embed is not None else 8,
        mapping_lr_multiplier=float(_kw(kw, "mapping_lrmul", 0.1)),
        resample_filter=tuple(_kw(kw, "resample_kernel", (1, 3, 3, 1))),
        activation=_kw(kw, "nonlinearity", "lrelu"),
    )


def _sg2_ignored(name: str, value: np.ndarray, what: str) -> bool:
    return name.rsplit("/", 1)[-1] == "lod"


# ----------------------------------------------------------------------------------------------------------
# Families: (generator build funcs, versions, config builders, name tables, ignore rule, module classes)

_FAMILIES = {
    "G_style": dict(
        versions=(2, 3),
        g_config=_sg1_generator_config,
        d_config=_sg1_discriminator_config,
        g_name=sg1_generator_name,
        d_name=sg1_discriminator_name,
        ignored=_sg1_ignored,
        d_funcs=("D_basic",),
        module=stylegan1,
    ),
    "G_main": dict(
        versions=(4, 5),  # 5: StyleGAN2-ADA-TF, which adds input/output shapes and names to the state
        g_config=_sg2_generator_config,
        d_config=_sg2_discriminator_config,
        g_name=sg2_generator_name,
        d_name=sg2_discriminator_name,
        ignored=_sg2_ignored,
        d_funcs=("D_stylegan2", "D_main"),
        module=stylegan2,
    ),
}


def _fill(module: nn.Module, name_fn: NameFn, variables: dict, ignored, what: str) -> nn.Module:
    """Copies TF variables into module's state; every variable must be used or known-ignorable."""
    state, used = module.state_dict(), set()
    for key, tensor in state.items():
        spec = name_fn(key)
        if spec is None:
            continue
        tf_name, kind = spec
        value = np.array(_FROM_TF[kind](np.asarray(_need(variables, tf_name, what))), np.float32)
        if value.shape != tuple(tensor.shape):
            raise ModelFormatError(
                f"{what}: {tf_name} has shape {list(variables[tf_name].shape)}, which does not "
                f"fit {key} {list(tensor.shape)}"
            )
        state[key] = torch.from_numpy(value)
        used.add(tf_name)
    unknown = sorted(n for n in set(variables) - used if not ignored(n, variables[n], what))
    if unknown:
        more = f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""
        raise ModelFormatError(f"{what}: unknown TF variables {', '.join(unknown[:5])}{more}")
    module.load_state_dict(state)
    return module.eval().requires_grad_(False)


def _build(make_config: Callable, rec: TFNetworkRecord, v: dict, what: str) -> nn.Module:
    """The network the variables describe, built only if they hold enough values for it."""
    try:
        cfg = make_config(rec, v, what)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as err:
        if isinstance(err, ModelFormatError):
            raise
        raise ModelFormatError(f"{what}: variables or kwargs of unexpected types ({one_line(err)})") from None
    return build_within(cfg, len(v), sum(int(np.size(a)) for a in v.values()), what)


def _family(G: TFNetworkRecord, where: str) -> dict:
    fam = _FAMILIES.get(G.build_func_name)
    if fam is None:
        raise ModelFormatError(
            f"{where}: unknown TF generator {G.build_func_name!r} (known: G_style = StyleGAN, "
            "G_main = StyleGAN2 / StyleGAN2-ADA)"
        )
    if G.version not in fam["versions"]:
        raise ModelFormatError(f"{where}: {G.build_func_name} with tflib version {G.version} is not supported")
    return fam


def convert_generator(rec: TFNetworkRecord, where: str = "TF pickle") -> nn.Module:
    """One TF generator record (G or Gs) -> our Generator with its weights."""
    fam = _family(rec, where)
    what = f"{where}: {rec.name} ({'StyleGAN1' if fam['module'] is stylegan1 else 'StyleGAN2'})"
    v = rec.flat_variables()
    module = _build(fam["g_config"], rec, v, what)
    return _fill(module, fam["g_name"], v, fam["ignored"], what)


def convert_discriminator(rec: TFNetworkRecord, fam: dict, where: str = "TF pickle") -> nn.Module:
    """One TF discriminator record -> our Discriminator (family chosen by the generator)."""
    if rec.build_func_name not in fam["d_funcs"]:
        raise ModelFormatError(
            f"{where}: unknown TF discriminator {rec.build_func_name!r} (expected {' or '.join(fam['d_funcs'])})"
        )
    what = f"{where}: {rec.name} ({'StyleGAN1' if fam['module'] is stylegan1 else 'StyleGAN2'})"
    v = rec.flat_variables()
    module = _build(fam["d_config"], rec, v, what)
    return _fill(module, fam["d_name"], v, fam["ignored"], what)


def convert_tf_records(
    G: TFNetworkRecord, D: TFNetworkRecord, Gs: TFNetworkRecord, where: str = "TF pickle"
) -> dict[str, nn.Module]:
    """(G, D, Gs) records -> {"G", "D", "G_ema"} modules (eval mode, CPU)."""
    fam = _family(Gs, where)
    return {
        "G": convert_generator(G, where),
        "D": convert_discriminator(D, fam, where),
        "G_ema": convert_generator(Gs, where),
    }


def convert_tf_pickle(path: str | Path) -> dict[str, nn.Module]:
    """NVIDIA TensorFlow pickle (StyleGAN1 v3, StyleGAN2 / ADA-TF v4) -> {"G": ..., "D": ..., "G_ema": ...}.

    Raises ModelFormatError (one line naming the file) for unsafe, unknown or unsupported content.
    """
    G, D, Gs = read_tf_pickle(path)
    return convert_tf_records(G, D, Gs, where=Path(path).name)

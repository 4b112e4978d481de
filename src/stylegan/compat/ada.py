"""NVIDIA stylegan2-ada-pytorch and stylegan3 networks -> our StyleGAN2 / StyleGAN3 modules.

Our module tree has NVIDIA's parameter names, so the state_dict loads unchanged; this file maps the constructor
kwargs stored in the pickle (`_init_kwargs`) onto our config dataclasses, and refuses what it does not know.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from stylegan.compat.build import build_within
from stylegan.compat.errors import ModelFormatError
from stylegan.compat.nvidia_pickle import NetworkRecord, read_ada_pickle
from stylegan.compat.safe_pickle import one_line
from stylegan.networks import stylegan3
from stylegan.networks.stylegan2 import DiscriminatorConfig, GeneratorConfig

# NVIDIA kwargs that only matter for training speed or memory layout, not for the function computed.
_IGNORED = {"fp16_channels_last", "channels_last", "freeze_layers", "fused_modconv_default"}
_MAPPING = {
    "num_layers": "mapping_layers",
    "lr_multiplier": "mapping_lr_multiplier",
    "embed_features": "embed_features",
    "layer_features": "layer_features",
    "w_avg_beta": "w_avg_beta",
    "activation": "activation",
}
_G_SYNTHESIS = {
    "channel_base": "channel_base",
    "channel_max": "channel_max",
    "num_fp16_res": "num_fp16_res",
    "conv_clamp": "conv_clamp",
    "architecture": "architecture",
    "resample_filter": "resample_filter",
    "use_noise": "use_noise",
    "activation": "activation",
}
_SG3_MAPPING = {"num_layers": "mapping_layers", "lr_multiplier": "mapping_lr_multiplier", "w_avg_beta": "w_avg_beta"}
_SG3_SYNTHESIS = {
    k: k
    for k in (
        "channel_base",
        "channel_max",
        "num_layers",
        "num_critical",
        "first_cutoff",
        "first_stopband",
        "last_stopband_rel",
        "margin_size",
        "output_scale",
        "num_fp16_res",
        "conv_kernel",
        "filter_size",
        "lrelu_upsampling",
        "use_radial_filters",
        "conv_clamp",
        "magnitude_ema_beta",
    )
}
# The stylegan3 repository's Discriminator is StyleGAN2's with other class defaults: pickles omit these when unchanged.
_SG3_D_DEFAULTS = {"num_fp16_res": 4, "conv_clamp": 256}
_D_TOP = {
    "c_dim",
    "img_resolution",
    "img_channels",
    "architecture",
    "channel_base",
    "channel_max",
    "num_fp16_res",
    "conv_clamp",
    "cmap_dim",
}
_D_EPILOGUE = {
    "mbstd_group_size": "mbstd_group_size",
    "mbstd_num_channels": "mbstd_num_channels",
    "activation": "activation",
}
_D_BLOCK = {"activation": "activation", "resample_filter": "resample_filter"}
_D_MAPPING = {
    "num_layers": "mapping_layers",
    "lr_multiplier": "mapping_lr_multiplier",
    "embed_features": "mapping_embed_features",
    "layer_features": "mapping_layer_features",
    "activation": "activation",
}


def _take(src: dict, table: dict, where: str, name: str) -> dict:
    unknown = sorted(set(src) - set(table) - _IGNORED)
    if unknown:
        raise ModelFormatError(
            f"{name}: unknown {where} setting(s) {', '.join(unknown)}; this reader does not know that network variant"
        )
    return {table[k]: v for k, v in src.items() if k in table}


def generator_config(kwargs: dict, name: str = "G") -> GeneratorConfig:
    """GeneratorConfig from NVIDIA's Generator init_kwargs."""
    kw = dict(kwargs)
    out = {k: kw.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels") if k in kw}
    out.update(_take(kw.pop("mapping_kwargs", None) or {}, _MAPPING, "mapping", name))
    out.update(_take(kw.pop("synthesis_kwargs", None) or {}, _G_SYNTHESIS, "synthesis", name))
    out.update(_take(kw, _G_SYNTHESIS, "generator", name))  # kwargs may also come flat
    return GeneratorConfig(**out)


def stylegan3_generator_config(kwargs: dict, name: str = "G") -> stylegan3.GeneratorConfig:
    """stylegan3.GeneratorConfig from the stylegan3 repository's Generator init_kwargs (T and R alike)."""
    kw = dict(kwargs)
    out = {k: kw.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels") if k in kw}
    out.update(_take(kw.pop("mapping_kwargs", None) or {}, _SG3_MAPPING, "mapping", name))
    out.update(_take(kw.pop("synthesis_kwargs", None) or {}, _SG3_SYNTHESIS, "synthesis", name))
    out.update(_take(kw, _SG3_SYNTHESIS, "generator", name))  # train.py passes the synthesis kwargs flat
    return stylegan3.GeneratorConfig(**out)


def discriminator_config(kwargs: dict, name: str = "D", defaults: dict | None = None) -> DiscriminatorConfig:
    """DiscriminatorConfig from NVIDIA's Discriminator init_kwargs (`defaults`: class defaults that differ)."""
    kw = dict(kwargs)
    out = dict(defaults or {})
    out.update(_take(kw.pop("block_kwargs", None) or {}, _D_BLOCK, "block", name))
    out.update(_take(kw.pop("mapping_kwargs", None) or {}, _D_MAPPING, "mapping", name))
    out.update(_take(kw.pop("epilogue_kwargs", None) or {}, _D_EPILOGUE, "epilogue", name))
    out.update(_take(kw, {k: k for k in _D_TOP}, "discriminator", name))
    return DiscriminatorConfig(**out)


def _is_stylegan3(record: NetworkRecord) -> bool:
    return record.class_name == "Generator" and "synthesis.input.affine.weight" in record.state_dict


def _config(record: NetworkRecord, where: str, stylegan3_snapshot: bool):
    if record.class_name == "Generator":
        make = stylegan3_generator_config if _is_stylegan3(record) else generator_config
    elif record.class_name == "Discriminator":
        defaults = _SG3_D_DEFAULTS if stylegan3_snapshot else None
        make = lambda kwargs, name: discriminator_config(kwargs, name, defaults)  # noqa: E731
    else:
        raise ModelFormatError(f"{where}: unknown network class {record.class_name!r}")
    try:
        return make(record.init_kwargs, where)
    except (TypeError, ValueError) as err:  # a kwarg of the wrong type or out of range
        if isinstance(err, ModelFormatError):
            raise
        raise ModelFormatError(f"{where}: invalid constructor kwargs ({one_line(err)})") from None


def _build(record: NetworkRecord, key: str, path: Path, stylegan3_snapshot: bool) -> nn.Module:
    where = f"{path.name} [{key}]"
    values = sum(t.numel() for t in record.state_dict.values())
    module = build_within(_config(record, where, stylegan3_snapshot), len(record.state_dict), values, where)
    try:
        module.load_state_dict(record.state_dict)
    except RuntimeError as err:
        lines = str(err).splitlines()
        first = (lines[1] if len(lines) > 1 else lines[0]).strip()[:120]
        raise ModelFormatError(f"{where}: tensors do not match the stored configuration ({first})") from None
    return module.eval().requires_grad_(False)


def convert_ada_pickle(path: str | Path) -> dict[str, nn.Module]:
    """Reads an ADA-PT or StyleGAN3 snapshot safely and returns {"G", "D", "G_ema"} (those present) as our modules."""
    path = Path(path)
    records = read_ada_pickle(path)
    keys = [key for key in ("G", "D", "G_ema") if key in records]
    sg3 = any(_is_stylegan3(records[key]) for key in keys)
    return {key: _build(records[key], key, path, sg3) for key in keys}

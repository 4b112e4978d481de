"""Test scaffolding: write pickles in NVIDIA's TensorFlow network format, and export our networks to it.

The file holds the tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects, each pickled as
NEWOBJ(Network) + BUILD(state) with the state keys that `Network.__getstate__` writes: version, name,
static_kwargs, components, build_module_src, build_func_name, variables [(name, array), ...]. No TensorFlow
and no NVIDIA code is needed: `GlobalPickler` writes any global by name, so the same helpers also build
synthetic StyleGAN2-ADA pickles and hostile pickles for tests.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stylegan.compat.safe_pickle import PickledEasyDict

BUILD_MODULE_PLACEHOLDER = "# build module source omitted: written by tests/compat/tf_writer.py\n"


class NamedGlobal:
    """A global written by module and name only (the module need not exist here)."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args, **kwargs):  # pickle requires reduce functions to be callable
        raise TypeError(f"{self.module}.{self.name} is only a name to pickle")

    def __repr__(self) -> str:
        return f"NamedGlobal({self.module}.{self.name})"


class Reduce:
    """An object pickled as REDUCE(func, args), followed by BUILD(state) when state is not None."""

    def __init__(self, func: NamedGlobal, args: tuple, state: Any = None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


class NewObject:
    """An object pickled as NEWOBJ(cls) + BUILD(state), as protocol >= 2 pickles plain class instances."""

    def __init__(self, cls: NamedGlobal, state: Any):
        self.cls, self.state = cls, state


NETWORK = NamedGlobal("dnnlib.tflib.network", "Network")
EASYDICT = NamedGlobal("dnnlib.util", "EasyDict")
NP_RECONSTRUCT = NamedGlobal("numpy.core.multiarray", "_reconstruct")  # numpy 1.x names, as in NVIDIA's files
NP_SCALAR = NamedGlobal("numpy.core.multiarray", "scalar")
NP_NDARRAY = NamedGlobal("numpy", "ndarray")


class GlobalPickler(pickle._Pickler):
    """Pure-Python pickler that writes `NamedGlobal`, `Reduce`, `NewObject` and `PickledEasyDict` objects, and
    numpy arrays and scalars under numpy 1.x global names."""

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if not isinstance(obj, (NamedGlobal, NewObject, PickledEasyDict)):
            super().save(obj, save_persistent_id)
            return
        self.framer.commit_frame()
        if id(obj) in self.memo:
            self.write(self.get(self.memo[id(obj)][0]))
        elif isinstance(obj, NamedGlobal):
            self._save_named_global(obj)
        else:
            self._save_new_object(obj)

    def _save_named_global(self, obj: NamedGlobal) -> None:
        if self.proto >= 4:
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    def _save_new_object(self, obj: NewObject | PickledEasyDict) -> None:
        self.save(obj.cls if isinstance(obj, NewObject) else EASYDICT)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        if isinstance(obj, NewObject):
            self.save(obj.state)
            self.write(pickle.BUILD)
            return
        for key, value in obj.items():
            self.save(key)
            self.save(value)
            self.write(pickle.SETITEM)

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
            state = obj.__reduce__()[2]  # (version, shape, dtype, is_fortran, raw bytes)
            return NP_RECONSTRUCT, (NP_NDARRAY, (0,), b"b"), state
        if isinstance(obj, np.generic):
            return NP_SCALAR, (obj.dtype, obj.tobytes())
        return NotImplemented


def dumps_with_globals(obj: Any, protocol: int = 4) -> bytes:
    """Pickle `obj` with `GlobalPickler` (protocol 2..5)."""
    buf = io.BytesIO()
    GlobalPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def _field(net: Any, key: str, default: Any = None) -> Any:
    return net.get(key, default) if isinstance(net, Mapping) else getattr(net, key, default)


def _variable_list(variables: Any) -> list[tuple[str, np.ndarray]]:
    items = variables.items() if isinstance(variables, Mapping) else variables
    return [(str(name), np.asarray(value)) for name, value in items]


def _tf_network(net: Any) -> NewObject:
    components = _field(net, "components") or {}
    state = {
        "version": int(_field(net, "version", 4)),
        "name": str(_field(net, "name")),
        "static_kwargs": dict(_field(net, "static_kwargs") or {}),
        "components": {str(key): _tf_network(comp) for key, comp in components.items()},
        "build_module_src": BUILD_MODULE_PLACEHOLDER,
        "build_func_name": str(_field(net, "build_func_name")),
        "variables": _variable_list(_field(net, "variables") or []),
    }
    if state["version"] >= 5:  # StyleGAN2-ADA-TF also records its graph's inputs and outputs
        state.update(input_shapes=[[None, 1]], output_shapes=[[None, 1]], input_names=["x"], output_names=["y"])
    return NewObject(NETWORK, state)


def write_tf_pickle(path: str | Path, G: Any, D: Any, Gs: Any, *, protocol: int = 4) -> None:
    """Write (G, D, Gs) as a TensorFlow network pickle in NVIDIA's dnnlib format.

    Args:
        path: output .pkl file.
        G, D, Gs: TFNetworkRecords, or mappings with the same keys: version, name, static_kwargs,
            components (key -> same kind), build_func_name, variables (name -> array, or (name, array) pairs).
            build_module_src is always a harmless placeholder.
        protocol: pickle protocol (NVIDIA's files use 4; 2..5 work).
    """
    data = dumps_with_globals((_tf_network(G), _tf_network(D), _tf_network(Gs)), protocol=protocol)
    Path(path).write_bytes(data)


# ------------------------------------------------------------------------------------------------------------
# Export: our networks under NVIDIA's TF names and layouts. The layouts here are written independently of the
# reader's (each is the inverse of what the reader applies), so a round trip checks both.

_TO_TF_LAYOUT = {
    "id": lambda a: a,
    "dense": lambda a: a.T,  # ours [out, in] -> TF [in, out]
    "conv": lambda a: a.transpose(2, 3, 1, 0),  # ours [out, in, k, k] -> TF [k, k, in, out]
    "conv_flip": lambda a: a.transpose(2, 3, 1, 0)[::-1, ::-1],  # TF ran these as conv2d_transpose
    "plus1": lambda a: a - 1,  # TF stores StyleGAN2's mod_bias without the +1
    "const": lambda a: a[None],
    "noise": lambda a: a[None, None],
}


def _name_table(module) -> Any:
    from stylegan.compat import tf_networks as tfn
    from stylegan.networks import stylegan1, stylegan2

    is_g = isinstance(module, (stylegan1.Generator, stylegan2.Generator))
    tables = {
        ("stylegan1", True): tfn.sg1_generator_name,
        ("stylegan1", False): tfn.sg1_discriminator_name,
        ("stylegan2", True): tfn.sg2_generator_name,
        ("stylegan2", False): tfn.sg2_discriminator_name,
    }
    return tables[module.config.family, is_g]


def tf_variables(module) -> dict[str, np.ndarray]:
    """Our module's weights under NVIDIA's TF names and layouts, flat ('synthesis/4x4/Conv/weight')."""
    name_of = _name_table(module)
    out = {}
    for key, tensor in module.state_dict().items():
        spec = name_of(key)
        if spec is not None:
            tf_name, kind = spec
            out[tf_name] = np.array(_TO_TF_LAYOUT[kind](tensor.detach().cpu().numpy()), np.float32)
    return out


def _under(variables: dict, prefix: str) -> dict:
    return {name[len(prefix) :]: value for name, value in variables.items() if name.startswith(prefix)}


def _generator_record(G, name: str, static_kwargs: dict):
    from stylegan.compat.nvidia_pickle import TFNetworkRecord

    sg1 = G.config.family == "stylegan1"
    version = 3 if sg1 else 4
    v = tf_variables(G)
    synthesis_func = "G_synthesis" if sg1 or G.c_dim > 0 else "G_synthesis_stylegan2"
    mapping = TFNetworkRecord(version, "G_mapping", "G_mapping", dict(static_kwargs), {}, _under(v, "mapping/"))
    synthesis_vars = {"lod": np.float32(0), **_under(v, "synthesis/")}
    synthesis = TFNetworkRecord(version, "G_synthesis", synthesis_func, dict(static_kwargs), {}, synthesis_vars)
    return TFNetworkRecord(
        version=version,
        name=name,
        build_func_name="G_style" if sg1 else "G_main",
        static_kwargs=static_kwargs,
        components={"mapping": mapping, "synthesis": synthesis},
        variables={"lod": np.float32(0), "dlatent_avg": v["dlatent_avg"]},
    )


def _sg1_kwargs(cfg, is_g: bool) -> dict:
    kw = {
        "fmap_base": cfg.fmap_base,
        "fmap_max": cfg.fmap_max,
        "fused_scale": cfg.fused_scale,
        "blur_filter": list(cfg.blur_filter),
        "nonlinearity": cfg.activation,
    }
    if is_g:
        kw["mapping_lrmul"] = cfg.mapping_lr_multiplier
        kw["dlatent_avg_beta"] = cfg.w_avg_beta
        kw["truncation_psi"] = cfg.truncation_psi
        kw["truncation_cutoff"] = cfg.truncation_cutoff
    else:
        kw["mbstd_group_size"] = cfg.mbstd_group_size
        kw["mbstd_num_features"] = cfg.mbstd_num_channels
    return kw


def _sg2_kwargs(cfg, is_g: bool) -> dict:
    kw = {
        "fmap_base": cfg.channel_base // 2,  # TF's schedule counts from 1/2 resolution: base/2 here = ours
        "fmap_max": cfg.channel_max,
        "architecture": cfg.architecture,
        "num_fp16_res": cfg.num_fp16_res,
        "conv_clamp": cfg.conv_clamp,
        "resample_kernel": list(cfg.resample_filter),
        "nonlinearity": cfg.activation,
        "mapping_lrmul": cfg.mapping_lr_multiplier,
    }
    if is_g:
        kw["w_avg_beta"] = cfg.w_avg_beta
    else:
        kw["mbstd_group_size"] = cfg.mbstd_group_size
        kw["mbstd_num_features"] = cfg.mbstd_num_channels
    return kw


def config_kwargs(cfg) -> dict:
    """The static kwargs NVIDIA's TF build functions take for a config's settings."""
    is_g = hasattr(cfg, "z_dim")
    return _sg1_kwargs(cfg, is_g) if cfg.family == "stylegan1" else _sg2_kwargs(cfg, is_g)


def to_tf_records(G, D, G_ema, g_kwargs: dict | None = None, d_kwargs: dict | None = None) -> tuple:
    """(G, D, Gs) TFNetworkRecords with NVIDIA's names, layouts and build functions, for `write_tf_pickle`.

    StyleGAN1 networks come out as G_style / D_basic (version 3); StyleGAN2 ones as G_main (version 4) with
    StyleGAN2-TF's build functions, or StyleGAN2-ADA-TF's (G_synthesis, D_main) when conditional.
    g_kwargs / d_kwargs: the static kwargs besides resolution, num_channels and label_size (which NVIDIA's
    training loop always passes); default: those that reproduce the configs.
    """
    from stylegan.compat.nvidia_pickle import TFNetworkRecord

    sg1 = G.config.family == "stylegan1"
    loop_kwargs = {"num_channels": G.img_channels, "resolution": G.img_resolution, "label_size": G.c_dim}
    g_all = {**loop_kwargs, **(config_kwargs(G.config) if g_kwargs is None else g_kwargs)}
    d_all = {**loop_kwargs, **(config_kwargs(D.config) if d_kwargs is None else d_kwargs)}
    if sg1:
        d_record = TFNetworkRecord(3, "D", "D_basic", d_all, {}, {"lod": np.float32(0), **tf_variables(D)})
    else:
        d_func = "D_main" if G.c_dim > 0 else "D_stylegan2"
        d_record = TFNetworkRecord(4, "D", d_func, d_all, {}, tf_variables(D))
    return _generator_record(G, "G", g_all), d_record, _generator_record(G_ema, "Gs", g_all)

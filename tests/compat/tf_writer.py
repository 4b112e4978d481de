"""Write pickles in NVIDIA's TensorFlow network format, for tests of the StyleGAN1 / StyleGAN2 TF loaders.

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

BUILD_MODULE_PLACEHOLDER = "# build module source omitted: written by stylegan.compat.tf_pickle_writer\n"


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

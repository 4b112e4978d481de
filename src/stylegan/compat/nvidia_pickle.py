"""Readers of NVIDIA's network pickles: StyleGAN2-ADA-PyTorch / StyleGAN3 snapshots and the TensorFlow
pickles of StyleGAN1 / StyleGAN2 / StyleGAN2-ADA-TF. They use `safe_pickle`, so no code from the file runs.

The results are plain data: class names, constructor kwargs, and tensors (ADA-PT: a state_dict whose keys are
NVIDIA's own, so it feeds `load_state_dict` of a network with the same module names) or numpy arrays (TF: the
variables by their TF names).
"""

from __future__ import annotations

import hashlib
import pickletools
import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylegan.compat.errors import ModelFormatError, brief
from stylegan.compat.safe_pickle import PersistentObject, TFNetworkStub, one_line, safe_load

ADA_NETWORK_KEYS = ("G", "D", "G_ema", "augment_pipe")
_SNIFF_BYTES = 1 << 16


@dataclass(repr=False, eq=False)
class NetworkRecord:
    """One ADA-PT / SG3 network (G, D, G_ema or augment_pipe) read from a snapshot pickle.

    Attributes:
        class_name: NVIDIA's class name, e.g. 'Generator', 'Discriminator', 'AugmentPipe'.
        init_args: positional constructor arguments (plain Python values).
        init_kwargs: constructor kwargs as plain dicts and Python scalars (EasyDicts, numpy scalars gone).
        state_dict: name -> tensor in PyTorch `state_dict()` order (parameters, buffers, then children).
        module_src_sha256: SHA-256 of the embedded source of the class's module (a fingerprint, never run).
        persistent: the raw record tree, for attributes not covered above (e.g. SG3 layer sampling rates).
    """

    class_name: str
    init_args: tuple
    init_kwargs: dict
    state_dict: OrderedDict[str, torch.Tensor]
    module_src_sha256: str
    persistent: PersistentObject

    def __repr__(self) -> str:
        return f"NetworkRecord({self.class_name!r}, {len(self.state_dict)} tensors)"


@dataclass(repr=False, eq=False)
class TFNetworkRecord:
    """One `dnnlib.tflib.network.Network` state from a TensorFlow pickle.

    Attributes:
        version: tflib state version: 3 = StyleGAN1, 4 = StyleGAN2, 5 = StyleGAN2-ADA-TF (2 = old StyleGAN1).
        name: network name, e.g. 'G', 'D', 'Gs', 'G_mapping', 'G_synthesis'.
        build_func_name: e.g. 'G_style', 'G_main', 'G_synthesis_stylegan2', 'D_basic', 'D_stylegan2'.
        static_kwargs: constructor kwargs as plain Python values.
        components: component key (e.g. 'mapping', 'synthesis') -> TFNetworkRecord.
        variables: the network's own variables, TF name (scope-relative, no ':0') -> array, in file order.
        build_module_src_sha256: SHA-256 of the embedded build-module source (never executed).
    """

    version: int
    name: str
    build_func_name: str
    static_kwargs: dict
    components: dict[str, TFNetworkRecord] = field(default_factory=dict)
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    build_module_src_sha256: str = ""

    def flat_variables(self) -> dict[str, np.ndarray]:
        """Own variables, then each component's, prefixed by the component key: 'mapping/Dense0/weight'."""
        flat = dict(self.variables)
        for key, component in self.components.items():
            flat.update({f"{key}/{name}": value for name, value in component.flat_variables().items()})
        return flat

    def __repr__(self) -> str:
        return (
            f"TFNetworkRecord({self.name!r}, {self.build_func_name!r}, version={self.version}, "
            f"{len(self.variables)} variables, components={list(self.components)})"
        )


# ----------------------------------------------------------------------------------------------------------
# Plain values.


def to_plain(value: Any) -> Any:
    """Convert EasyDicts, OrderedDicts and numpy scalars/arrays to plain dicts, lists and Python scalars."""
    if isinstance(value, dict):
        return {to_plain(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(to_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# ----------------------------------------------------------------------------------------------------------
# ADA-PT / SG3 snapshots.


def _checked_state(obj: PersistentObject, where: str) -> dict:
    state = obj.state
    if not isinstance(state, dict) or not isinstance(obj.class_name, str):
        raise ModelFormatError(f"{where} has no valid state dict")
    for key in ("_parameters", "_buffers", "_modules", "_init_kwargs"):
        if not isinstance(state.get(key) or {}, dict):
            raise ModelFormatError(f"{where}.{key} is not a dict")
    if not isinstance(state.get("_non_persistent_buffers_set") or set(), (set, frozenset)):
        raise ModelFormatError(f"{where}._non_persistent_buffers_set is not a set")
    return state


def _tensor_items(state: dict, key: str, where: str) -> list[tuple[str, torch.Tensor]]:
    items = state.get(key) or {}
    for name, tensor in items.items():
        if tensor is not None and not isinstance(tensor, torch.Tensor):
            raise ModelFormatError(f"{where}.{name} is a {type(tensor).__name__}, not a tensor")
    # detach(): a fresh tensor without grad or hooks, whatever BUILD may have set on the pickled one.
    return [(name, tensor.detach()) for name, tensor in items.items() if tensor is not None]


def _collect_state_dict(obj: PersistentObject, prefix: str, out: OrderedDict, ancestors: set[int]) -> None:
    if id(obj) in ancestors:
        raise ModelFormatError(f"module {prefix or obj.class_name} contains itself")
    where = prefix.rstrip(".") or str(obj.class_name)
    state = _checked_state(obj, where)
    skip = state.get("_non_persistent_buffers_set") or set()
    out.update((prefix + name, t) for name, t in _tensor_items(state, "_parameters", where))
    out.update((prefix + name, t) for name, t in _tensor_items(state, "_buffers", where) if name not in skip)
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise ModelFormatError(f"submodule {prefix + name} is a {type(child).__name__}, not a module")
        _collect_state_dict(child, f"{prefix}{name}.", out, ancestors | {id(obj)})


def network_record(obj: PersistentObject) -> NetworkRecord:
    """Turn one persistent object tree into a NetworkRecord (plain kwargs, state_dict in PyTorch order)."""
    state = _checked_state(obj, str(obj.class_name))
    init_args, init_kwargs = state.get("_init_args") or (), state.get("_init_kwargs") or {}
    if not isinstance(init_args, (tuple, list)):
        raise ModelFormatError(f"{obj.class_name} has no valid _init_args")
    state_dict: OrderedDict[str, torch.Tensor] = OrderedDict()
    _collect_state_dict(obj, "", state_dict, set())
    return NetworkRecord(
        class_name=obj.class_name,
        init_args=tuple(to_plain(list(init_args))),
        init_kwargs=to_plain(init_kwargs),
        state_dict=state_dict,
        module_src_sha256=obj.module_src_sha256,
        persistent=obj,
    )


def _is_tf_triple(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(x, TFNetworkStub) for x in data)


def read_ada_pickle(path: str | Path) -> dict[str, Any]:
    """Read a StyleGAN2-ADA-PyTorch or StyleGAN3 network pickle without running code from it.

    Args:
        path: the .pkl snapshot (e.g. network-snapshot-000200.pkl or an official release pickle).

    Returns:
        dict with a NetworkRecord for each of 'G', 'D', 'G_ema' and 'augment_pipe' that the file holds (keys
        absent when missing or None), and 'training_set_kwargs' (plain dict, or None).

    Raises:
        UnsafePickleError: the pickle calls something that is not part of a network pickle.
        ModelFormatError: the file is not an ADA-PT / SG3 pickle, or it is truncated or corrupt.
    """
    name = Path(path).name
    data = safe_load(path)
    if _is_tf_triple(data):
        raise ModelFormatError(f"{name} is a TensorFlow network pickle; read it with read_tf_pickle")
    if not isinstance(data, dict):
        raise ModelFormatError(
            f"{name} is not a StyleGAN2-ADA / StyleGAN3 pickle (top level is {type(data).__name__}, not dict)"
        )
    out: dict[str, Any] = {}
    for key in ADA_NETWORK_KEYS:
        obj = data.get(key)
        if obj is None:
            continue
        if not isinstance(obj, PersistentObject):
            raise ModelFormatError(f"{name}: {key} is a {type(obj).__name__}, not a network module")
        out[key] = _with_file(name, network_record, obj)
    if not any(key in out for key in ("G", "D", "G_ema")):
        raise ModelFormatError(f"{name} holds no G, D or G_ema network")
    out["training_set_kwargs"] = _with_file(name, to_plain, data.get("training_set_kwargs"))
    return out


def _with_file(name: str, fn, *args):
    try:
        return fn(*args)
    except ModelFormatError as exc:
        raise ModelFormatError(f"cannot read {name}: {exc}") from exc
    except Exception as exc:  # e.g. RecursionError on a hostile tree, TypeError on odd values
        raise ModelFormatError(f"cannot read {name}: unexpected content ({one_line(exc)})") from exc


# ----------------------------------------------------------------------------------------------------------
# TensorFlow pickles.


def _src_sha256(src: Any) -> str:
    return hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest() if isinstance(src, str) else ""


def _tf_variables(raw: Any, where: str) -> dict[str, np.ndarray]:
    if not isinstance(raw, (list, tuple)):
        raise ModelFormatError(f"{where}: variables are not a list")
    variables: dict[str, np.ndarray] = {}
    for item in raw:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise ModelFormatError(f"{where}: a variable is not a (name, array) pair")
        value = item[1]
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            raise ModelFormatError(f"{where}: variable {item[0]} is a {type(value).__name__}, not an array")
        variables[item[0]] = np.asarray(value)  # a plain ndarray (not the PickledArray subclass)
    return variables


def tf_network_record(stub: TFNetworkStub, ancestors: frozenset[int] = frozenset()) -> TFNetworkRecord:
    """Turn one TFNetworkStub (and its components, recursively) into a TFNetworkRecord."""
    state = stub.state
    if not isinstance(state, dict) or id(stub) in ancestors:
        raise ModelFormatError("a TensorFlow Network has no state, or contains itself")
    name = state.get("name")
    version, func = state.get("version"), state.get("build_func_name")
    if not isinstance(name, str) or type(version) is not int or not isinstance(func, str):
        raise ModelFormatError(f"TensorFlow Network {brief(name)!r} lacks version, name or build_func_name")
    components = state.get("components") or {}
    static_kwargs = state.get("static_kwargs") or {}
    if not isinstance(components, dict) or not isinstance(static_kwargs, dict):
        raise ModelFormatError(f"TensorFlow Network {name!r} has invalid components or static_kwargs")
    for key, comp in components.items():
        if not isinstance(key, str) or not isinstance(comp, TFNetworkStub):
            raise ModelFormatError(f"TensorFlow Network {name!r} has a component {key!r} that is no Network")
    inner = ancestors | {id(stub)}
    return TFNetworkRecord(
        version=version,
        name=name,
        build_func_name=func,
        static_kwargs=to_plain(static_kwargs),
        components={key: tf_network_record(comp, inner) for key, comp in components.items()},
        variables=_tf_variables(state.get("variables", []), name),
        build_module_src_sha256=_src_sha256(state.get("build_module_src")),
    )


def read_tf_pickle(path: str | Path) -> tuple[TFNetworkRecord, TFNetworkRecord, TFNetworkRecord]:
    """Read a TensorFlow network pickle (StyleGAN1, StyleGAN2, StyleGAN2-ADA-TF) without TensorFlow or exec.

    Args:
        path: the .pkl file, whose top level is the tuple (G, D, Gs).

    Returns:
        (G, D, Gs) as TFNetworkRecords. Use `Gs.flat_variables()` for 'mapping/Dense0/weight'-style names.

    Raises:
        UnsafePickleError: the pickle calls something that is not part of a network pickle.
        ModelFormatError: the file is not a TF network pickle, or it is truncated or corrupt.
    """
    name = Path(path).name
    data = safe_load(path)
    if isinstance(data, dict) and any(isinstance(data.get(k), PersistentObject) for k in ADA_NETWORK_KEYS):
        raise ModelFormatError(f"{name} is a StyleGAN2-ADA / StyleGAN3 pickle; read it with read_ada_pickle")
    if not _is_tf_triple(data):
        raise ModelFormatError(f"{name} is not a TensorFlow network pickle (expected the tuple (G, D, Gs))")
    G, D, Gs = (_with_file(name, tf_network_record, stub) for stub in data)
    return G, D, Gs


# ----------------------------------------------------------------------------------------------------------
# Format sniffing.


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len <= size - 8 and head[8:9] == b"{"


def scan_globals(data: bytes) -> Iterator[str]:
    """Yield the globals ('module.name') a pickle asks for, in order, by scanning its opcodes statically.

    Nothing is unpickled. A prefix of a pickle works too: the scan stops where the data ends. Strings that
    STACK_GLOBAL takes from the memo are followed, so repeated modules are named correctly.
    """
    memo: dict[int, Any] = {}
    strings: list[str] = []
    last: Any = None
    try:
        for opcode, arg, _pos in pickletools.genops(data):
            kind = opcode.name
            if kind == "GLOBAL":
                yield str(arg).replace(" ", ".", 1)
            elif kind == "STACK_GLOBAL" and len(strings) >= 2:
                yield f"{strings[-2]}.{strings[-1]}"
            elif kind == "MEMOIZE":
                memo[len(memo)] = last
            elif kind in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = last
            elif kind in ("GET", "BINGET", "LONG_BINGET"):
                last = memo.get(arg)
                if isinstance(last, str):
                    strings.append(last)
            else:
                last = arg if isinstance(arg, str) and "UNICODE" in kind else None
                if last is not None:
                    strings.append(last)
    except ValueError:  # the data ends inside an opcode, or it is not a pickle
        return


def sniff_format(path: str | Path) -> str:
    """Tell a file's format from its content, not its extension.

    Returns:
        'ada-pickle' (StyleGAN2-ADA-PyTorch / StyleGAN3 snapshot), 'tf-pickle' (dnnlib TensorFlow networks),
        'safetensors', or 'unknown'.
    """
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if _looks_like_safetensors(head, path.stat().st_size):
        return "safetensors"
    if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
        return "unknown"
    for name in scan_globals(head):  # the first global that only one of the formats uses decides
        if name.startswith("torch_utils.persistence."):
            return "ada-pickle"
        if name == "dnnlib.tflib.network.Network":
            return "tf-pickle"
    return "unknown"

"""A restricted unpickler for NVIDIA's network pickles. It never runs code from the file.

A pickle names every function or class it wants called by a global (module + name). `SafeUnpickler.find_class`
looks each one up in an allow-table of inert stand-ins and refuses everything else with `UnsafePickleError`:

- persistent network modules (`torch_utils.persistence`) become `PersistentObject` records; the embedded
  module source is hashed, never executed;
- tensors are rebuilt from their storage blobs, whose nested legacy `torch.save` stream is parsed here
  (`torch.load` is never called);
- numpy dtypes, scalars and arrays are rebuilt from raw bytes (numeric dtypes only);
- TensorFlow `dnnlib.tflib.network.Network` objects become `TFNetworkStub`s that only keep their state dict.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from stylegan.compat.errors import ModelFormatError, UnsafePickleError, brief, one_line
from stylegan.compat.pickle_scan import scan_pickle

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a legacy (non-zip) torch.save stream
_LEGACY_PROTOCOL = 1001
_NUMERIC_KINDS = "biufc"  # numpy dtype kinds we rebuild: bool, int, uint, float, complex
_MAX_DIMS = 64  # torch and numpy allow no more
_MAX_SHELL_ELEMENTS = 1 << 16  # np.ndarray shells made by _reconstruct are (0,) before BUILD fills them

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}

# ----------------------------------------------------------------------------------------------------------
# Inert stand-ins for the classes a network pickle builds.


class _Sealed(type):
    """Metaclass of the stand-in classes: a pickle's BUILD opcode cannot patch their attributes."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise ModelFormatError(f"a pickle tried to modify the class {cls.__name__}")


class _StandIn:
    """An allowed global function. It has no __dict__ and refuses setattr, so BUILD on it fails."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[..., Any]):
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args: Any) -> Any:
        return self._fn(*args)

    def __setattr__(self, attribute: str, value: Any) -> None:  # a pickle's BUILD on an allowed function
        raise ModelFormatError(f"a pickle tried to modify {self._fn.__name__}")


@dataclass(repr=False, eq=False)
class PersistentObject:
    """Record of a `torch_utils.persistence` object (every ADA-PT / SG3 network module).

    Attributes:
        class_name: e.g. 'SynthesisLayer'; the only identity the pickle gives.
        state: the module's `__dict__` as pickled: `_parameters`, `_buffers`, `_modules`
            (name -> PersistentObject), `_init_args`, `_init_kwargs` and the class's plain attributes.
        version: the persistence format version (6 in every known release).
        module_src_sha256: hex SHA-256 of the embedded module source: a fingerprint; the source is never run.
    """

    class_name: str
    state: dict
    version: int
    module_src_sha256: str

    def __repr__(self) -> str:
        children = self.state.get("_modules") or {} if isinstance(self.state, dict) else {}
        return f"PersistentObject({self.class_name!r}, version={self.version}, {len(children)} submodules)"


class PickledEasyDict(dict, metaclass=_Sealed):
    """Stands in for `dnnlib.util.EasyDict`: a dict that also allows attribute access."""

    def __getattr__(self, key: str) -> Any:
        if key in self:
            return self[key]
        raise AttributeError(key)


class TFNetworkStub(metaclass=_Sealed):
    """Stands in for `dnnlib.tflib.network.Network`: keeps the pickled state dict and builds nothing."""

    state: dict | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise ModelFormatError(f"a TensorFlow Network has state of type {type(state).__name__}, not dict")
        self.state = state

    def __repr__(self) -> str:
        name = (self.state or {}).get("name")
        return f"TFNetworkStub({name!r})"


class _Storage:
    """A storage rebuilt from a blob: a flat tensor of one dtype."""

    __slots__ = ("flat",)

    def __init__(self, flat: torch.Tensor):
        self.flat = flat  # [numel]


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: torch.dtype


class PickledArray(np.ndarray, metaclass=_Sealed):
    """A numpy array restored from a pickle. Its BUILD state is checked first: numeric dtype, raw bytes."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise ModelFormatError("a numpy array has an unexpected pickled state")
        *version, shape, dtype, is_fortran, rawdata = state
        if not isinstance(rawdata, (bytes, bytearray)) or is_fortran not in (True, False):
            raise ModelFormatError("a numpy array has no raw data (object arrays are not allowed)")
        dtype, shape = _checked_dtype(dtype), _int_tuple(shape, "shape")
        if math.prod(shape) * dtype.itemsize != len(rawdata):
            raise ModelFormatError(f"a numpy array of shape {shape[:8]} and dtype {dtype} has {len(rawdata)} bytes")
        super().__setstate__((*version, shape, dtype, bool(is_fortran), rawdata))


class _NdarrayMarker:
    """Stands in for the class `numpy.ndarray`, which pickles pass to `_reconstruct` as the array type."""

    __slots__ = ()


_NDARRAY = _NdarrayMarker()


# ----------------------------------------------------------------------------------------------------------
# Stand-in functions. Each checks its arguments, so a hostile pickle can only get data, never a call.


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise ModelFormatError("a persistent object has no {'type': 'class'} meta dict")
    class_name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src", "")
    if not isinstance(class_name, str) or not isinstance(state, dict) or not isinstance(src, str):
        raise ModelFormatError("a persistent object lacks class_name, state or module_src")
    version = meta.get("version")
    if not isinstance(version, int):
        raise ModelFormatError(f"a persistent object has version {version!r}")
    sha = hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest()
    return PersistentObject(class_name=class_name, state=state, version=version, module_src_sha256=sha)


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > _MAX_DIMS:
        raise ModelFormatError(f"a tensor has an invalid {what}: {brief(value, 80)}")
    if not all(type(v) is int and v >= 0 for v in value):
        raise ModelFormatError(f"a tensor has an invalid {what}: {brief(value, 80)}")
    return tuple(value)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise ModelFormatError("a tensor's storage is not a storage blob")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    (offset,) = _int_tuple((storage_offset,), "storage offset")
    if len(size) != len(stride):
        raise ModelFormatError(f"a tensor has size {size[:8]} but stride {stride[:8]}")
    if math.prod(size) > storage.flat.numel():  # views wider than their data (expanded tensors) are refused
        raise ModelFormatError(f"a tensor of size {size[:8]} has more elements than its storage")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) if all(size) else offset - 1
    if last >= storage.flat.numel():
        raise ModelFormatError(f"a tensor of size {size[:8]} runs past its storage of {storage.flat.numel()}")
    return torch.as_strided(storage.flat, size, stride, offset)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise ModelFormatError("a parameter holds no tensor")
    return data


def _rebuild_parameter_with_state(data, requires_grad=False, backward_hooks=None, state=None) -> torch.Tensor:
    return _rebuild_parameter(data)  # extra Python attributes on the Parameter are dropped


def _checked_dtype(dtype: Any) -> np.dtype:
    """A dtype from the pickle, after its BUILD: it must equal a plain numeric dtype, which is returned."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or dtype.fields or dtype.subdtype:
        raise ModelFormatError(f"numpy dtype {brief(dtype, 40)!r} is not allowed (numeric dtypes only)")
    plain = np.dtype(dtype.str)
    if dtype != plain or dtype.flags != plain.flags:
        raise ModelFormatError(f"numpy dtype {brief(dtype, 40)!r} has an unexpected state")
    return plain


def _np_dtype(spec, align=False, copy=True) -> np.dtype:
    if not isinstance(spec, str) or np.dtype(spec).kind not in _NUMERIC_KINDS:
        raise ModelFormatError(f"numpy dtype {brief(spec, 40)!r} is not allowed (numeric dtypes only)")
    # Always a fresh copy: BUILD then sets the state of this copy, never of numpy's shared dtype objects.
    return np.dtype(spec, align=bool(align), copy=True)


def _np_scalar(dtype, data=None) -> np.generic:
    dtype = _checked_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise ModelFormatError(f"a numpy scalar of dtype {dtype} has {type(data).__name__} data")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _np_reconstruct(subtype, shape, dtype) -> np.ndarray:
    shape = _int_tuple(shape, "shape")
    if subtype is not _NDARRAY or int(np.prod(shape)) > _MAX_SHELL_ELEMENTS:
        raise ModelFormatError("numpy _reconstruct got an unexpected array type or shape")
    return PickledArray(shape, dtype=np.int8)  # BUILD (PickledArray.__setstate__) sets dtype, shape, data


def _np_frombuffer(buf, dtype, shape, order="C") -> np.ndarray:
    if not isinstance(buf, (bytes, bytearray, memoryview)) or order not in ("C", "F"):
        raise ModelFormatError("numpy _frombuffer got an unexpected buffer or order")
    flat = np.frombuffer(buf, dtype=_checked_dtype(dtype))
    return flat.reshape(_int_tuple(shape, "shape"), order=order).copy()


def _latin1_encode(text, encoding="utf-8") -> bytes:
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(text, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ModelFormatError("_codecs.encode is only allowed for latin1 bytes")
    return text.encode("latin-1")


def _empty_bytes(*args) -> bytes:
    if args:
        raise ModelFormatError("bytes() is only allowed without arguments")
    return b""


_STATIC_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _StandIn(_reconstruct_persistent_obj),
    ("dnnlib.util", "EasyDict"): PickledEasyDict,
    ("dnnlib", "EasyDict"): PickledEasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetworkStub,
    ("torch._utils", "_rebuild_tensor_v2"): _StandIn(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): _StandIn(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _StandIn(_rebuild_parameter_with_state),
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytes"): _StandIn(_empty_bytes),
    ("__builtin__", "set"): set,  # protocol < 3 writes Python-2 module names
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "bytes"): _StandIn(_empty_bytes),
    ("_codecs", "encode"): _StandIn(_latin1_encode),
    ("numpy", "dtype"): _StandIn(_np_dtype),
    ("numpy", "ndarray"): _NDARRAY,
}
for _np_core in ("numpy.core", "numpy._core"):  # numpy 1.x and numpy 2 names
    _STATIC_GLOBALS[(f"{_np_core}.multiarray", "scalar")] = _StandIn(_np_scalar)
    _STATIC_GLOBALS[(f"{_np_core}.multiarray", "_reconstruct")] = _StandIn(_np_reconstruct)
    _STATIC_GLOBALS[(f"{_np_core}.numeric", "_frombuffer")] = _StandIn(_np_frombuffer)


def refusal_message(source_name: str, module: str, name: str) -> str:
    """The one-line message for a refused global."""
    qualname = f"{module}.{name}"[:120]
    return f"refusing to load {source_name}: it calls {qualname!r}, which is not part of a StyleGAN network pickle"


# ----------------------------------------------------------------------------------------------------------
# The nested legacy torch.save stream inside each `torch.storage._load_from_bytes` blob.


class _StorageRef:
    __slots__ = ("key", "view")

    def __init__(self, key: str, view: tuple[str, int, int] | None):
        self.key, self.view = key, view


class _StorageUnpickler(pickle.Unpickler):
    """Reads the small pickles of a storage blob: only `torch.<Type>Storage` globals, only storage ids."""

    def __init__(self, file: BinaryIO, source_name: str, storages: dict):
        super().__init__(file)
        self.source_name = source_name
        self.storages = storages  # key -> (dtype, numel), filled by persistent_load

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise UnsafePickleError(refusal_message(self.source_name, module, name))

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not isinstance(pid, tuple) or len(pid) != 6 or pid[0] not in ("storage", b"storage"):
            raise ModelFormatError(f"a storage blob has an unexpected persistent id {brief(pid, 80)}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _is_count(numel):
            raise ModelFormatError(f"a storage blob has an invalid storage id {brief(pid, 80)}")
        if view is not None and not (isinstance(view, tuple) and len(view) == 3):
            raise ModelFormatError(f"a storage blob has invalid view metadata {brief(view, 80)}")
        self.storages.setdefault(key, (storage_type.dtype, numel))
        return _StorageRef(key, view)


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _read_storage_data(blob: bytes, f: io.BytesIO, dtype: torch.dtype, numel: int) -> torch.Tensor:
    head = f.read(8)
    if len(head) != 8 or struct.unpack("<q", head)[0] != numel:
        raise ModelFormatError("a storage blob is truncated or its element count does not match")
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    start = f.tell()
    if start + nbytes > len(blob):
        raise ModelFormatError("a storage blob is truncated")
    f.seek(start + nbytes)
    if nbytes == 0:
        return torch.empty(0, dtype=dtype)
    # Raw little-endian data; bytearray makes one writable copy.
    return torch.frombuffer(bytearray(memoryview(blob)[start : start + nbytes]), dtype=dtype)


def _check_legacy_header(magic: Any, protocol: Any, sys_info: Any) -> None:
    if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
        raise ModelFormatError("a storage blob is not a legacy torch.save stream (bad magic or protocol)")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ModelFormatError("a storage blob is not little-endian; big-endian files are not supported")


def _resolve_view(ref: _StorageRef, flats: dict[str, torch.Tensor]) -> torch.Tensor:
    flat = flats[ref.key]
    if ref.view is None:
        return flat
    _view_key, offset, size = ref.view
    offset, size = _int_tuple((offset, size), "storage view")
    if offset + size > len(flat):
        raise ModelFormatError("a storage view runs past its storage")
    return flat[offset : offset + size].clone()


def _load_checked(unpickler: pickle.Unpickler, f: BinaryIO, end: int) -> Any:
    """Scans the pickle at f's position (bounded by `end`), then unpickles it from the same position."""
    start = f.tell()
    scan_pickle(f, end)
    f.seek(start)
    return unpickler.load()


def read_legacy_storage(blob: Any, source_name: str) -> _Storage:
    """Parse the legacy `torch.save` stream of one storage blob, without `torch.load`.

    Args:
        blob: the bytes argument of `torch.storage._load_from_bytes`.
        source_name: file name for error messages.

    Returns:
        The storage: a flat tensor of the storage's dtype.
    """
    if not isinstance(blob, bytes):
        raise ModelFormatError("a storage blob is not bytes")
    f, storages = io.BytesIO(blob), {}
    header = [_load_checked(_StorageUnpickler(f, source_name, {}), f, len(blob)) for _ in range(3)]
    _check_legacy_header(*header)  # magic, protocol, sys_info
    root = _load_checked(_StorageUnpickler(f, source_name, storages), f, len(blob))
    keys = _load_checked(_StorageUnpickler(f, source_name, {}), f, len(blob))
    if not isinstance(root, _StorageRef) or not isinstance(keys, list) or set(keys) != set(storages):
        raise ModelFormatError("a storage blob does not hold exactly one storage and its key list")
    flats = {key: _read_storage_data(blob, f, *storages[key]) for key in keys}
    return _Storage(_resolve_view(root, flats))


# ----------------------------------------------------------------------------------------------------------
# The unpickler and the load functions.


class SafeUnpickler(pickle.Unpickler):
    """An unpickler whose globals come only from an allow-table of inert stand-ins.

    Anything else (os.system, builtins.eval, subprocess.Popen, ...) raises `UnsafePickleError`, uncalled.
    """

    def __init__(self, file: BinaryIO, source_name: str):
        super().__init__(file)
        self.source_name = source_name
        self._allowed: dict[tuple[str, str], Any] = dict(_STATIC_GLOBALS)
        self._allowed[("torch.storage", "_load_from_bytes")] = _StandIn(self._load_from_bytes)

    def find_class(self, module: str, name: str) -> Any:
        target = self._allowed.get((module, name))
        if target is None:
            raise UnsafePickleError(refusal_message(self.source_name, module, name))
        return target

    def persistent_load(self, pid: Any) -> Any:
        raise ModelFormatError(f"unexpected persistent id {brief(pid, 80)}")

    def _load_from_bytes(self, blob: Any) -> _Storage:
        return read_legacy_storage(blob, self.source_name)


def _load(file: BinaryIO, size: int, source_name: str) -> Any:
    try:
        return _load_checked(SafeUnpickler(file, source_name), file, size)
    except UnsafePickleError:
        raise
    except ModelFormatError as exc:
        raise ModelFormatError(" ".join(f"cannot read {source_name}: {exc}".split())) from exc
    except Exception as exc:  # any failure while unpickling a corrupt or hostile file is a format error
        raise ModelFormatError(
            f"cannot read {source_name}: not a network pickle, or truncated or corrupt ({one_line(exc)})"
        ) from exc


def safe_load(path: str | Path) -> Any:
    """Unpickle a network pickle file without running any code from it.

    Args:
        path: the .pkl file.

    Returns:
        The unpickled object, built only from the stand-ins of the allow-table.

    Raises:
        UnsafePickleError: the pickle asks for a global outside the allow-table.
        ModelFormatError: the file is empty, truncated or not a pickle.
        OSError: the file cannot be opened.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ModelFormatError(f"cannot read {path.name}: the file is empty")
    with path.open("rb") as f:
        return _load(f, os.fstat(f.fileno()).st_size, path.name)


def safe_loads(data: bytes, source_name: str = "<bytes>") -> Any:
    """Like `safe_load`, for pickle bytes held in memory."""
    if not data:
        raise ModelFormatError(f"cannot read {source_name}: it is empty")
    return _load(io.BytesIO(data), len(data), source_name)

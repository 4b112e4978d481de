"""Safe readers of NVIDIA's network pickles (ADA-PT / SG3 and TF) and the TF pickle writer.

The official fixtures (tests/fixtures/nvlabs, copied from ../shared/fixtures/nvlabs) are tiny networks written
by NVIDIA's own training loops. Variations and hostile pickles are built here with `GlobalPickler`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import pickle
import struct
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from tf_writer import (
    BUILD_MODULE_PLACEHOLDER,
    NETWORK,
    GlobalPickler,
    NamedGlobal,
    NewObject,
    Reduce,
    dumps_with_globals,
    write_tf_pickle,
)

from stylegan.compat.errors import ModelFormatError, UnsafePickleError
from stylegan.compat.nvidia_pickle import (
    TFNetworkRecord,
    read_ada_pickle,
    read_tf_pickle,
    scan_globals,
    sniff_format,
    to_plain,
)
from stylegan.compat.safe_pickle import PersistentObject, PickledEasyDict, safe_load, safe_loads

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs"
NAMES = ["sg2_tiny", "sg2_tiny_cond", "sg2_tiny_fp16", "sg3t_tiny", "sg3r_tiny"]
PLACEHOLDER_SRC = "# source code omitted from this test fixture\n"

PERSIST = NamedGlobal("torch_utils.persistence", "_reconstruct_persistent_obj")
REBUILD_TENSOR = NamedGlobal("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAM_WITH_STATE = NamedGlobal("torch._utils", "_rebuild_parameter_with_state")
LOAD_FROM_BYTES = NamedGlobal("torch.storage", "_load_from_bytes")
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


@functools.cache
def _read(name: str) -> dict:
    return read_ada_pickle(FIXTURES / f"{name}.pkl")


@functools.cache
def _info(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _shapes(state_dict: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(t.shape)) for name, t in state_dict.items()]


def _expected_shapes(entries: list[dict]) -> list[tuple[str, tuple[int, ...]]]:
    return [(e["name"], tuple(e["shape"])) for e in entries]


def _assert_one_line(exc: BaseException, *parts: str) -> None:
    text = str(exc)
    assert "\n" not in text and len(text) < 300, text
    for part in parts:
        assert part in text, text


# ------------------------------------------------------------------------------------------------------------
# Builders of synthetic pickles: legacy storage blobs, tensors, persistent objects.


class _Pid:
    def __init__(self, pid: tuple):
        self.pid = pid


class _PidPickler(GlobalPickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Pid) else None


def _dumps2(obj) -> bytes:
    buf = io.BytesIO()
    _PidPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def storage_blob(
    flat: torch.Tensor,
    storage_type: str = "FloatStorage",
    key: str = "140000000",
    view: tuple | None = None,
    root=None,
    numel: int | None = None,
) -> bytes:
    """A legacy torch.save stream of one storage, as `torch.storage._load_from_bytes` receives it."""
    numel = flat.numel() if numel is None else numel
    pid = ("storage", NamedGlobal("torch", storage_type), key, "cpu", numel, view)
    parts = [_dumps2(x) for x in (LEGACY_MAGIC, 1001, SYS_INFO)]
    parts += [_dumps2(_Pid(pid) if root is None else root), _dumps2([key])]
    data = flat.contiguous().view(torch.uint8).numpy().tobytes()
    return b"".join(parts) + struct.pack("<q", flat.numel()) + data


def tensor_reduce(t: torch.Tensor, storage=None, offset: int = 0, size=None, stride=None) -> Reduce:
    storage = Reduce(LOAD_FROM_BYTES, (storage_blob(t.reshape(-1)),)) if storage is None else storage
    size = tuple(t.shape) if size is None else size
    stride = tuple(t.contiguous().stride()) if stride is None else stride
    return Reduce(REBUILD_TENSOR, (storage, offset, size, stride, False, OrderedDict()))


def _emit_state(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        if key == "_parameters":  # as Parameters written by a torch that uses _rebuild_parameter_with_state
            out[key] = type(value)(
                (n, Reduce(REBUILD_PARAM_WITH_STATE, (tensor_reduce(t), False, OrderedDict(), {})))
                for n, t in value.items()
            )
        else:
            out[key] = emit(value)
    return out


def emit(value):
    """Turn a tree read by safe_load back into picklable objects with NVIDIA's globals."""
    if isinstance(value, PersistentObject):
        meta = dict(
            type="class",
            version=value.version,
            module_src=PLACEHOLDER_SRC,
            class_name=value.class_name,
            state=_emit_state(value.state),
        )
        return Reduce(PERSIST, (meta,))
    if isinstance(value, torch.Tensor):
        return tensor_reduce(value)
    if isinstance(value, dict):  # dict, OrderedDict and PickledEasyDict keep their type
        return type(value)((k, emit(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(emit(v) for v in value)
    return value


def persistent(class_name: str = "Generator", module_src: str = PLACEHOLDER_SRC, **state) -> Reduce:
    state = {"_parameters": {}, "_buffers": {}, "_modules": {}, "_init_args": (), "_init_kwargs": {}, **state}
    meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)
    return Reduce(PERSIST, (meta,))


def _attrs(obj: PersistentObject, path: str = "") -> list:
    """Every plain attribute of a persistent tree with its type: (path, key, type name, plain value)."""
    rows = []
    for key, value in obj.state.items():
        if key == "_modules":
            for name, child in value.items():
                rows += _attrs(child, f"{path}.{name}")
        elif not key.startswith("_") or key in ("_init_args", "_init_kwargs"):
            rows.append((path, key, type(value).__name__, to_plain(value)))
    return rows


# ------------------------------------------------------------------------------------------------------------
# The official fixtures.


@pytest.mark.parametrize("name", NAMES)
def test_fixture_names_shapes_and_kwargs(name):
    nets, info = _read(name), _info(name)
    assert list(nets) == ["G", "D", "G_ema", "training_set_kwargs"]
    assert nets["training_set_kwargs"] is None
    for key in ("G", "G_ema"):
        assert _shapes(nets[key].state_dict) == _expected_shapes(info["G_params_and_buffers"])
        assert nets[key].init_kwargs == info["G_init_kwargs"]
        assert nets[key].class_name == info["generator_class"].rsplit(".", 1)[1]
    assert _shapes(nets["D"].state_dict) == _expected_shapes(info["D_params_and_buffers"])
    assert nets["D"].init_kwargs == info["D_init_kwargs"]
    assert nets["D"].class_name == "Discriminator"
    assert all(t.dtype == torch.float32 for net in ("G", "D", "G_ema") for t in nets[net].state_dict.values())
    assert nets["G_ema"].init_args == ()
    assert nets["G_ema"].module_src_sha256 == hashlib.sha256(PLACEHOLDER_SRC.encode()).hexdigest()


@pytest.mark.parametrize("name", NAMES)
def test_fixture_values_match_npz(name):
    nets = _read(name)
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(nets["G_ema"].state_dict["mapping.w_avg"].numpy(), npz["w_avg"])
        if "magnitude_ema" in npz:  # sg3: one buffer per layer, in module order
            ema = [t.item() for n, t in nets["G_ema"].state_dict.items() if n.endswith("magnitude_ema")]
            np.testing.assert_array_equal(np.array(ema, dtype=np.float32), npz["magnitude_ema"])
    G, G_ema = nets["G"].state_dict, nets["G_ema"].state_dict
    assert torch.equal(
        G["synthesis.b4.resample_filter" if "sg2" in name else "mapping.w_avg"],
        G_ema["synthesis.b4.resample_filter" if "sg2" in name else "mapping.w_avg"],
    )
    assert any(not torch.equal(G[k], G_ema[k]) for k in G)  # G is jittered away from G_ema


def test_init_kwargs_are_plain_python():
    def walk(value):
        if isinstance(value, dict):
            assert type(value) is dict
            for v in value.values():
                walk(v)
        else:
            assert value is None or type(value) in (int, float, str, bool, list, tuple), type(value)

    for name in ("sg2_tiny_fp16", "sg3r_tiny"):
        for net in ("G", "D", "G_ema"):
            walk(_read(name)[net].init_kwargs)
    raw = _read("sg2_tiny")["G_ema"].persistent
    block = raw.state["_modules"]["synthesis"].state["_modules"]["b4"]
    assert block.state["_modules"]["conv1"].class_name == "SynthesisLayer"
    assert type(raw.state["_init_kwargs"]["mapping_kwargs"]) is PickledEasyDict  # plain only in the record


def test_sg3_classes_by_position():
    G_ema = _read("sg3t_tiny")["G_ema"].persistent
    synthesis = G_ema.state["_modules"]["synthesis"]
    classes = {child.class_name for child in synthesis.state["_modules"].values()}
    assert classes == {"SynthesisInput", "SynthesisLayer"}
    layer = synthesis.state["_modules"]["L0_36_32"]
    assert layer.state["in_size"].tolist() == [36, 36]  # numpy arrays come back as numpy arrays
    assert G_ema.state["_modules"]["mapping"].state["_modules"]["fc0"].class_name == "FullyConnectedLayer"


@pytest.mark.parametrize("name", ["sg2_tiny", "sg3t_tiny"])
def test_sniff_format(name, tmp_path):
    assert sniff_format(FIXTURES / f"{name}.pkl") == "ada-pickle"
    assert sniff_format(FIXTURES / f"{name}.json") == "unknown"
    assert sniff_format(FIXTURES / f"{name}.npz") == "unknown"
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2, 3)}, str(tmp_path / "model.pkl"))  # the content decides, not the name
    assert sniff_format(tmp_path / "model.pkl") == "safetensors"
    (tmp_path / "junk.safetensors").write_bytes(np.random.RandomState(0).bytes(512))
    assert sniff_format(tmp_path / "junk.safetensors") == "unknown"


# ------------------------------------------------------------------------------------------------------------
# Variations: the same networks written with other protocols and with older globals.


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("name", ["sg2_tiny", "sg3t_tiny"])
def test_rewritten_fixture_reads_identically(name, protocol, tmp_path):
    raw = safe_load(FIXTURES / f"{name}.pkl")
    path = tmp_path / f"{name}_p{protocol}.pkl"
    path.write_bytes(dumps_with_globals(emit(raw), protocol=protocol))
    found = set(scan_globals(path.read_bytes()))
    assert {
        "numpy.core.multiarray.scalar",
        "torch._utils._rebuild_parameter_with_state",
        "dnnlib.util.EasyDict",
    } <= found
    if protocol == 2:
        assert {"_codecs.encode", "__builtin__.set"} <= found
    if protocol == 3:
        assert "builtins.set" in found
    assert sniff_format(path) == "ada-pickle"
    before, after = _read(name), read_ada_pickle(path)
    assert list(after) == list(before)
    for key in ("G", "D", "G_ema"):
        a, b = before[key], after[key]
        assert (b.class_name, b.init_args, b.init_kwargs) == (a.class_name, a.init_args, a.init_kwargs)
        assert list(b.state_dict) == list(a.state_dict)
        assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
        assert _attrs(b.persistent) == _attrs(a.persistent)


def test_tensors_pickled_by_torch_itself():
    """Tensors that this torch writes with plain pickle.dump: storages, views, strides and Parameters."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {
        "param": torch.nn.Parameter(torch.randn(3, 3)),
        "view": base[1:, ::2],
        "transposed": base.t(),
        "scalar": torch.tensor(2.5),
        "half": torch.randn(5).half(),
        "bfloat16": torch.randn(5).bfloat16(),
        "long": torch.arange(3),
        "bool": torch.tensor([True, False]),
    }
    data = pickle.dumps(tensors, protocol=4)
    assert "torch.storage._load_from_bytes" in set(scan_globals(data))
    out = safe_loads(data)
    for key, t in tensors.items():
        assert type(out[key]) is torch.Tensor and out[key].dtype == t.dtype
        assert out[key].stride() == t.stride() and torch.equal(out[key], t.detach()), key


@pytest.mark.parametrize(
    "storage_type, dtype",
    [
        ("FloatStorage", torch.float32),
        ("HalfStorage", torch.float16),
        ("DoubleStorage", torch.float64),
        ("BFloat16Storage", torch.bfloat16),
        ("LongStorage", torch.int64),
        ("IntStorage", torch.int32),
        ("ByteStorage", torch.uint8),
        ("BoolStorage", torch.bool),
    ],
)
def test_storage_types(storage_type, dtype):
    t = (torch.arange(12) % 5).to(dtype).reshape(3, 4)
    storage = Reduce(LOAD_FROM_BYTES, (storage_blob(t.reshape(-1), storage_type),))
    out = safe_loads(dumps_with_globals({"t": tensor_reduce(t, storage=storage)}))["t"]
    assert out.dtype == dtype and torch.equal(out, t)


def test_tensor_offset_stride_and_shared_storage():
    flat = torch.arange(24, dtype=torch.float32)
    storage = Reduce(LOAD_FROM_BYTES, (storage_blob(flat),))
    view = tensor_reduce(flat, storage=storage, offset=4, size=(3, 4), stride=(1, 3))  # non-contiguous
    tail = tensor_reduce(flat, storage=storage, offset=20, size=(4,), stride=(1,))
    out = safe_loads(dumps_with_globals({"view": view, "tail": tail}))
    expected = np.array([[4 + i + 3 * j for j in range(4)] for i in range(3)], dtype=np.float32)
    np.testing.assert_array_equal(out["view"].numpy(), expected)
    np.testing.assert_array_equal(out["tail"].numpy(), [20, 21, 22, 23])
    past_end = tensor_reduce(flat, storage=storage, offset=21, size=(4,), stride=(1,))
    with pytest.raises(ModelFormatError, match="runs past its storage"):
        safe_loads(dumps_with_globals(past_end), "bad.pkl")


def test_storage_view_metadata():
    flat = torch.arange(10, dtype=torch.float32)
    blob = storage_blob(flat, view=("view0", 2, 5))
    t = safe_loads(dumps_with_globals(tensor_reduce(flat, Reduce(LOAD_FROM_BYTES, (blob,)), 0, (5,), (1,))))
    np.testing.assert_array_equal(t.numpy(), [2, 3, 4, 5, 6])


def test_numpy_protocol5_frombuffer():
    arrays = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "f": np.asfortranarray(np.eye(3, dtype="f4"))}
    data = pickle.dumps(arrays, protocol=5)
    assert any(name.endswith("numeric._frombuffer") for name in scan_globals(data))
    out = safe_loads(data)
    for key, value in arrays.items():
        np.testing.assert_array_equal(out[key], value)


# ------------------------------------------------------------------------------------------------------------
# Hostile pickles: refused before anything runs.


def _payloads(marker: Path) -> dict[str, Reduce]:
    touch = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": Reduce(NamedGlobal("os", "system"), (f"touch {marker}",)),
        "posix.system": Reduce(NamedGlobal("posix", "system"), (f"touch {marker}",)),
        "builtins.eval": Reduce(NamedGlobal("builtins", "eval"), (touch,)),
        "builtins.exec": Reduce(NamedGlobal("builtins", "exec"), (touch,)),
        "builtins.getattr": Reduce(NamedGlobal("builtins", "getattr"), ("text", "upper")),
        "builtins.__import__": Reduce(NamedGlobal("builtins", "__import__"), ("os",)),
        "subprocess.Popen": Reduce(NamedGlobal("subprocess", "Popen"), (["touch", str(marker)],)),
        "evil.module.func": Reduce(NamedGlobal("evil.module", "func"), ()),
        "torch.load": Reduce(NamedGlobal("torch", "load"), (str(marker),)),
    }


def test_payload_is_live_under_plain_pickle(tmp_path):
    """Control: the os.system payload does run under the standard unpickler, so the refusals below matter."""
    if os.name != "posix":
        pytest.skip("needs a POSIX shell")
    marker = tmp_path / "marker"
    pickle.loads(dumps_with_globals(_payloads(marker)["os.system"]))
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize(
    "qualname",
    [
        "os.system",
        "posix.system",
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "builtins.__import__",
        "subprocess.Popen",
        "evil.module.func",
        "torch.load",
    ],
)
def test_payload_refused(qualname, protocol, tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    snapshot = {"G": persistent(), "G_ema": _payloads(marker)[qualname]}
    path.write_bytes(dumps_with_globals(snapshot, protocol=protocol))
    with pytest.raises(UnsafePickleError) as info:
        read_ada_pickle(path)
    _assert_one_line(info.value, "refusing to load evil.pkl", f"'{qualname}'")
    assert not marker.exists()


def test_payload_inside_storage_blob(tmp_path):
    marker = tmp_path / "marker"
    blob = storage_blob(torch.zeros(4), root=_payloads(marker)["posix.system"])
    net = persistent(_buffers={"x": tensor_reduce(torch.zeros(4), Reduce(LOAD_FROM_BYTES, (blob,)))})
    path = tmp_path / "blob.pkl"
    path.write_bytes(dumps_with_globals({"G_ema": net}))
    with pytest.raises(UnsafePickleError) as info:
        read_ada_pickle(path)
    _assert_one_line(info.value, "blob.pkl", "'posix.system'")
    assert not marker.exists()


def test_payload_inside_persistent_state(tmp_path):
    marker = tmp_path / "marker"
    child = persistent("SynthesisLayer", w_avg_beta=_payloads(marker)["builtins.exec"])
    path = tmp_path / "state.pkl"
    path.write_bytes(dumps_with_globals({"G_ema": persistent(_modules={"synthesis": child})}, protocol=3))
    with pytest.raises(UnsafePickleError) as info:
        read_ada_pickle(path)
    _assert_one_line(info.value, "'builtins.exec'")
    assert not marker.exists()


def test_embedded_source_is_never_run(tmp_path):
    marker = tmp_path / "marker"
    src = f"import os\nos.system('touch {marker}')\n"
    net = persistent(module_src=src, _buffers={"w_avg": tensor_reduce(torch.ones(3))}, _init_kwargs={"z_dim": 3})
    path = tmp_path / "src.pkl"
    path.write_bytes(dumps_with_globals({"G_ema": net, "training_set_kwargs": {"resolution": 4}}))
    nets = read_ada_pickle(path)
    assert nets["G_ema"].module_src_sha256 == hashlib.sha256(src.encode()).hexdigest()
    assert nets["G_ema"].init_kwargs == {"z_dim": 3} and nets["training_set_kwargs"] == {"resolution": 4}
    assert list(nets["G_ema"].state_dict) == ["w_avg"]
    assert not marker.exists()


def _build_on_global(module: str, name: str, slot_state: bool) -> bytes:
    """Protocol-2 pickle: GLOBAL module.name, then BUILD with a state that patches an attribute."""
    key = b"__defaults__" if slot_state else b"extra"
    state = b"}X" + struct.pack("<I", len(key)) + key + b"K\x01\x85s"  # {key: (1,)}
    if slot_state:
        state = b"N" + state + b"\x86"  # (None, {key: (1,)}): BUILD sets it with setattr
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + state + b"b."


@pytest.mark.parametrize("slot_state", [False, True])
@pytest.mark.parametrize(
    "target",
    [
        "torch._utils._rebuild_tensor_v2",
        "dnnlib.util.EasyDict",
        "dnnlib.tflib.network.Network",
        "numpy.ndarray",
        "torch.storage._load_from_bytes",
    ],
)
def test_build_cannot_patch_stand_ins(target, slot_state):
    from stylegan.compat import safe_pickle

    module, name = target.rsplit(".", 1)
    with pytest.raises(ModelFormatError):
        safe_loads(_build_on_global(module, name, slot_state), "patch.pkl")
    assert safe_pickle._rebuild_tensor_v2.__defaults__ == (False, None, None)
    assert "__defaults__" not in vars(safe_pickle.TFNetworkStub) and "extra" not in vars(PickledEasyDict)
    test_fixture_names_shapes_and_kwargs("sg2_tiny")  # later loads are unaffected


def test_snapshot_with_augment_pipe_and_module_bookkeeping(tmp_path):
    """Real snapshots may carry an AugmentPipe and dataset kwargs; None entries and non-persistent buffers."""
    kwargs = PickledEasyDict(xflip=np.float64(1.0), rotate90=1)
    augment = persistent("AugmentPipe", _init_kwargs=kwargs, _buffers={"p": tensor_reduce(torch.tensor(0.25))})
    layer = persistent(
        "FullyConnectedLayer",
        _init_args=(np.int64(4), 2),
        _parameters={"weight": tensor_reduce(torch.ones(2, 4)), "bias": None},
        _buffers={"tmp": tensor_reduce(torch.zeros(1)), "kept": tensor_reduce(torch.ones(1))},
        _non_persistent_buffers_set={"tmp"},
    )
    G = persistent(_modules={"fc": layer, "skip": None})
    dataset = {
        "class_name": "training.dataset.ImageFolderDataset",
        "resolution": np.int64(32),
        "xflip": False,
    }
    path = tmp_path / "snapshot.pkl"
    snapshot = {"training_set_kwargs": dataset, "G": G, "D": persistent("Discriminator"), "G_ema": G}
    path.write_bytes(dumps_with_globals(dict(snapshot, augment_pipe=augment), protocol=3))
    nets = read_ada_pickle(path)
    assert list(nets) == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"]
    assert nets["augment_pipe"].class_name == "AugmentPipe"
    assert nets["augment_pipe"].init_kwargs == {"xflip": 1.0, "rotate90": 1}
    assert type(nets["augment_pipe"].init_kwargs["xflip"]) is float
    assert nets["augment_pipe"].state_dict["p"].item() == 0.25
    assert list(nets["G"].state_dict) == ["fc.weight", "fc.kept"]
    assert nets["G"].persistent.state["_modules"]["fc"].state["_init_args"] == (4, 2)
    assert nets["training_set_kwargs"] == {**dataset, "resolution": 32}
    assert type(nets["training_set_kwargs"]["resolution"]) is int


NP_RECONSTRUCT = NamedGlobal("numpy.core.multiarray", "_reconstruct")


def _np_dtype(spec: str, copy: bool = True, flags: int = 0, byteorder: str = "<") -> Reduce:
    return Reduce(NamedGlobal("numpy", "dtype"), (spec, False, copy), (3, byteorder, None, None, None, -1, -1, flags))


def test_numpy_dtype_state_cannot_leak_or_lie():
    # copy=False would hand out numpy's shared float64 dtype, which BUILD would then turn big-endian.
    out = safe_loads(dumps_with_globals(_np_dtype("f8", copy=False, byteorder=">"), protocol=2))
    assert out.str == ">f8" and np.dtype("f8").str == "<f8" and np.dtype("f8").byteorder == "="
    # An array whose dtype claims object flags, or an object array, is refused.
    array = Reduce(NP_RECONSTRUCT, (NamedGlobal("numpy", "ndarray"), (0,), b"b"))
    array.state = (1, (2,), _np_dtype("f8", flags=0x3F), False, bytes(16))
    with pytest.raises(ModelFormatError):
        safe_loads(dumps_with_globals(array))
    with pytest.raises(ModelFormatError, match="numeric dtypes only"):
        safe_loads(pickle.dumps(np.array([1, "a"], dtype=object)))
    array.state = (1, (2,), _np_dtype("f8"), False, np.array([1.5, 2.5]).tobytes())
    assert safe_loads(dumps_with_globals(array)).tolist() == [1.5, 2.5]


def test_persistent_id_refused():
    data = b"\x80\x02X\x03\x00\x00\x00abcQ."  # BINPERSID at the top level, which network pickles never use
    with pytest.raises(ModelFormatError) as info:
        safe_loads(data, "pid.pkl")
    _assert_one_line(info.value, "pid.pkl", "persistent id")


# ------------------------------------------------------------------------------------------------------------
# Corrupt files.


@pytest.mark.parametrize("cut", ["first_byte", "after_first_global", "half", "all_but_last_byte"])
def test_truncated_file(cut, tmp_path):
    data = (FIXTURES / "sg2_tiny.pkl").read_bytes()
    size = {
        "first_byte": 1,
        "after_first_global": 98,
        "half": len(data) // 2,
        "all_but_last_byte": len(data) - 1,
    }
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: size[cut]])
    with pytest.raises(ModelFormatError) as info:
        read_ada_pickle(path)
    _assert_one_line(info.value, "cut.pkl")


@pytest.mark.parametrize("prefix", [b"", b"\x80\x04", b"\x80\x02"])
def test_random_and_empty_files(prefix, tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(prefix + np.random.RandomState(len(prefix)).bytes(4096))
    with pytest.raises(ModelFormatError) as info:
        read_ada_pickle(path)
    _assert_one_line(info.value, "junk.pkl")
    path.write_bytes(b"")
    with pytest.raises(ModelFormatError) as info:
        read_tf_pickle(path)
    _assert_one_line(info.value, "junk.pkl", "empty")


@pytest.mark.parametrize("kind", ["ada", "tf"])
def test_mutated_files_read_or_fail_cleanly(kind, tmp_path):
    """Random byte changes: the reader returns or raises a one-line ModelFormatError, nothing else."""
    source = tmp_path / "source.pkl"
    if kind == "ada":
        source.write_bytes((FIXTURES / "sg2_tiny_cond.pkl").read_bytes())
    else:
        write_tf_pickle(source, *_tf_nets(4))
    read = read_ada_pickle if kind == "ada" else read_tf_pickle
    data, rng = source.read_bytes(), np.random.RandomState(7)
    path = tmp_path / "mutated.pkl"
    for _ in range(40):
        mutated = bytearray(data)
        for pos in rng.randint(0, len(data), size=rng.randint(1, 8)):
            mutated[pos] = rng.randint(256)
        path.write_bytes(bytes(mutated))
        try:
            read(path)
        except ModelFormatError as exc:
            _assert_one_line(exc, "mutated.pkl")


def test_deeply_nested_values(tmp_path):
    """A hostile nesting depth ends in a one-line ModelFormatError, not a RecursionError traceback."""
    data = dumps_with_globals({"G_ema": persistent(), "training_set_kwargs": "@@NEST@@"}, protocol=2)
    depth = 100_000
    nested = b"]" * depth + b"a" * (depth - 1)  # EMPTY_LIST x depth, then APPEND each into the one below
    path = tmp_path / "deep.pkl"
    path.write_bytes(data.replace(b"X\x08\x00\x00\x00@@NEST@@", nested))
    with pytest.raises(ModelFormatError) as info:
        read_ada_pickle(path)
    _assert_one_line(info.value, "deep.pkl")


def test_corrupt_storage_blob(tmp_path):
    blob = storage_blob(torch.zeros(4), numel=5)  # the id claims 5 elements, the data holds 4
    path = tmp_path / "blob.pkl"
    path.write_bytes(
        dumps_with_globals(
            {"G_ema": persistent(_buffers={"x": tensor_reduce(torch.zeros(4), Reduce(LOAD_FROM_BYTES, (blob,)))})}
        )
    )
    with pytest.raises(ModelFormatError) as info:
        read_ada_pickle(path)
    _assert_one_line(info.value, "blob.pkl", "storage blob")
    path.write_bytes(
        dumps_with_globals(
            {
                "G_ema": persistent(
                    _buffers={"x": tensor_reduce(torch.zeros(4), Reduce(LOAD_FROM_BYTES, (b"\x80\x02K\x01.",)))}
                )
            }
        )
    )
    with pytest.raises(ModelFormatError):
        read_ada_pickle(path)


def test_wrong_kind_of_pickle(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ModelFormatError, match="not a StyleGAN2-ADA"):
        read_ada_pickle(path)
    with pytest.raises(ModelFormatError, match="not a TensorFlow network pickle"):
        read_tf_pickle(path)
    with pytest.raises(ModelFormatError, match="read_ada_pickle"):
        read_tf_pickle(FIXTURES / "sg2_tiny.pkl")
    path.write_bytes(pickle.dumps({"G_ema": None, "training_set_kwargs": None}))
    with pytest.raises(ModelFormatError, match="no G, D or G_ema"):
        read_ada_pickle(path)


# ------------------------------------------------------------------------------------------------------------
# TensorFlow pickles.


def _tf_nets(version: int = 4):
    rng = np.random.RandomState(0)

    def arr(*shape):
        return rng.randn(*shape).astype(np.float32)

    mapping = dict(
        version=version,
        name="G_mapping",
        build_func_name="G_mapping",
        static_kwargs={},
        variables={"Dense0/weight": arr(8, 8), "Dense0/bias": arr(8)},
    )
    synthesis = dict(
        version=version,
        name="G_synthesis",
        build_func_name="G_synthesis_stylegan2",
        static_kwargs={},
        variables={
            "noise0": arr(1, 1, 4, 4),
            "4x4/Const/const": arr(1, 8, 4, 4),
            "4x4/Conv/weight": arr(3, 3, 8, 8),
            "4x4/Conv/noise_strength": np.float32(0.25),
        },
    )
    kwargs = dict(
        latent_size=8,
        dlatent_size=8,
        resolution=4,
        fmap_base=16,
        resample_kernel=[1, 3, 3, 1],
        architecture="skip",
        conv_clamp=None,
        truncation_psi=0.5,
    )
    G = dict(
        version=version,
        name="G",
        build_func_name="G_main",
        static_kwargs=kwargs,
        components={"mapping": mapping, "synthesis": synthesis},
        variables=[("lod", np.float32(0)), ("dlatent_avg", arr(8))],
    )
    D = dict(
        version=version,
        name="D",
        build_func_name="D_stylegan2",
        static_kwargs={"resolution": 4},
        variables={"4x4/Dense0/weight": arr(128, 8), "Output/weight": arr(8, 1)},
    )
    Gs = dict(G, name="Gs")
    return G, D, Gs


def _assert_same_network(record: TFNetworkRecord, spec: dict):
    assert (record.version, record.name, record.build_func_name) == (
        spec["version"],
        spec["name"],
        spec["build_func_name"],
    )
    assert record.static_kwargs == spec["static_kwargs"]
    expected = dict(spec["variables"])
    assert list(record.variables) == list(expected)
    for key, value in expected.items():
        assert record.variables[key].shape == np.shape(value)
        np.testing.assert_array_equal(record.variables[key], value)
    assert list(record.components) == list(spec.get("components", {}))
    for key, comp in spec.get("components", {}).items():
        _assert_same_network(record.components[key], comp)


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("version", [3, 4])
def test_tf_roundtrip(version, protocol, tmp_path):
    nets = _tf_nets(version)
    path = tmp_path / "tf.pkl"
    write_tf_pickle(path, *nets, protocol=protocol)
    assert sniff_format(path) == "tf-pickle"
    globals_found = set(scan_globals(path.read_bytes()))
    assert globals_found - {"_codecs.encode"} == {
        "dnnlib.tflib.network.Network",
        "numpy.core.multiarray._reconstruct",
        "numpy.ndarray",
        "numpy.dtype",
    }
    records = read_tf_pickle(path)
    for record, spec in zip(records, nets, strict=True):
        _assert_same_network(record, spec)
        assert record.build_module_src_sha256 == hashlib.sha256(BUILD_MODULE_PLACEHOLDER.encode()).hexdigest()
    flat = records[2].flat_variables()
    assert list(flat) == [
        "lod",
        "dlatent_avg",
        "mapping/Dense0/weight",
        "mapping/Dense0/bias",
        "synthesis/noise0",
        "synthesis/4x4/Const/const",
        "synthesis/4x4/Conv/weight",
        "synthesis/4x4/Conv/noise_strength",
    ]
    assert flat["synthesis/4x4/Conv/noise_strength"].shape == ()
    write_tf_pickle(tmp_path / "again.pkl", *records)  # records are valid writer inputs
    for record, again in zip(records, read_tf_pickle(tmp_path / "again.pkl"), strict=True):
        assert record.flat_variables().keys() == again.flat_variables().keys()
    with pytest.raises(ModelFormatError, match="read_tf_pickle"):
        read_ada_pickle(path)


def test_tf_pickle_loads_with_a_plain_stub_unpickler(tmp_path):
    """The written file is an ordinary dnnlib pickle: a plain Unpickler with a Network stub (as NVIDIA's
    legacy loader does) reads it too."""

    class Stub:
        def __setstate__(self, state):
            self.__dict__.update(state)

    class StubUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            return Stub if (module, name) == ("dnnlib.tflib.network", "Network") else super().find_class(module, name)

    nets = _tf_nets(4)
    write_tf_pickle(tmp_path / "tf.pkl", *nets)
    with open(tmp_path / "tf.pkl", "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 warns about numpy.core names
        G, D, Gs = StubUnpickler(f).load()
    assert G.build_module_src == BUILD_MODULE_PLACEHOLDER and D.name == "D" and Gs.name == "Gs"
    np.testing.assert_array_equal(
        G.components["mapping"].variables[0][1],
        nets[0]["components"]["mapping"]["variables"]["Dense0/weight"],
    )


def test_tf_build_source_is_never_run(tmp_path):
    marker = tmp_path / "marker"
    state = dict(
        version=4,
        name="G",
        static_kwargs={},
        components={},
        build_module_src=f"import os\nos.system('touch {marker}')\n",
        build_func_name="G_main",
        variables=[("lod", np.zeros((), np.float32))],
    )
    path = tmp_path / "tf.pkl"
    path.write_bytes(dumps_with_globals(tuple(NewObject(NETWORK, dict(state, name=n)) for n in ("G", "D", "Gs"))))
    G, _, Gs = read_tf_pickle(path)
    assert Gs.name == "Gs" and list(G.variables) == ["lod"]
    assert not marker.exists()


def test_tf_payload_refused(tmp_path):
    marker = tmp_path / "marker"
    state = dict(
        version=4,
        name="G",
        static_kwargs={"x": _payloads(marker)["posix.system"]},
        components={},
        build_module_src="",
        build_func_name="G_main",
        variables=[],
    )
    path = tmp_path / "tf_evil.pkl"
    path.write_bytes(dumps_with_globals(tuple(NewObject(NETWORK, state) for _ in range(3))))
    assert sniff_format(path) == "tf-pickle"
    with pytest.raises(UnsafePickleError) as info:
        read_tf_pickle(path)
    _assert_one_line(info.value, "tf_evil.pkl", "'posix.system'")
    assert not marker.exists()

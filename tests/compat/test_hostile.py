"""The hostile battery: payloads hidden where allowed globals live, numbers the bytes cannot justify, and
configs larger than their file. Each is refused with one line (or read inertly), and a marker file proves that
no payload ran. Payloads are checked to be live under the plain unpickler first where that is safe to do.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from test_safe_pickle import LOAD_FROM_BYTES, persistent, storage_blob, tensor_reduce
from tf_writer import NamedGlobal, Reduce, dumps_with_globals

from stylegan.compat.errors import ModelFormatError, UnsafePickleError
from stylegan.compat.safe_pickle import safe_loads
from stylegan.io import load_networks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _one_line(exc: BaseException, *parts: str) -> None:
    text = str(exc)
    assert "\n" not in text and len(text) < 300, text
    for part in parts:
        assert part in text, text


def _touch(marker: Path) -> Reduce:
    return Reduce(NamedGlobal("os", "system"), (f"touch {marker}",))


def _snapshot(payload) -> bytes:
    return dumps_with_globals({"G": persistent(), "G_ema": payload, "training_set_kwargs": None})


def _hidden_payloads(marker: Path) -> dict[str, Reduce]:
    """Payloads behind globals that NVIDIA's own loader allows or that sit next to allowed ones."""
    inner = pickle.dumps(_touch(marker), protocol=2) if False else dumps_with_globals(_touch(marker), protocol=2)
    return {
        # torch.storage._load_from_bytes with a whole payload pickle as its blob (torch.load would run it)
        "load_from_bytes wraps a payload pickle": Reduce(LOAD_FROM_BYTES, (inner,)),
        # the blob's own persistent id names os.system as its storage type
        "storage type is os.system": Reduce(
            LOAD_FROM_BYTES,
            (storage_blob(torch.zeros(2), root=_touch(marker)),),
        ),
        "dnnlib.util.call_func_by_name": Reduce(
            NamedGlobal("dnnlib.util", "call_func_by_name"), (), {"func_name": "os.system", "command": "x"}
        ),
        "builtins.getattr chain": Reduce(
            NamedGlobal("builtins", "getattr"),
            (Reduce(NamedGlobal("builtins", "__import__"), ("os",)), "system"),
        ),
        "copyreg._reconstructor": Reduce(NamedGlobal("copyreg", "_reconstructor"), (object, object, None)),
        "copyreg.__newobj__": Reduce(NamedGlobal("copyreg", "__newobj__"), (object,)),
        "torch.load": Reduce(NamedGlobal("torch", "load"), (str(marker),)),
        "numpy.load": Reduce(NamedGlobal("numpy", "load"), (str(marker),), None),
        "torch._utils._rebuild_tensor (not v2)": Reduce(NamedGlobal("torch._utils", "_rebuild_tensor"), ()),
        "numpy.core.multiarray._reconstruct of a subclass": Reduce(
            NamedGlobal("numpy.core.multiarray", "_reconstruct"),
            (NamedGlobal("numpy", "recarray"), (0,), b"b"),
        ),
    }


HIDDEN = list(_hidden_payloads(Path("/nonexistent")))


@pytest.mark.parametrize("name", HIDDEN)
def test_hidden_payloads_are_refused(name, tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(_snapshot(_hidden_payloads(marker)[name]))
    with pytest.raises(ModelFormatError) as info:
        load_networks(path)
    _one_line(info.value, "evil.pkl")
    assert not marker.exists()


def test_wrapped_payload_is_live_under_plain_pickle(tmp_path):
    """Control: the pickle inside the blob does run under the plain unpickler."""
    marker = tmp_path / "marker"
    pickle.loads(dumps_with_globals(_touch(marker), protocol=2))
    assert marker.exists()


def test_persistent_module_source_is_hashed_not_run(tmp_path):
    """module_src of a persistent object is code that NVIDIA's loader execs; ours only fingerprints it."""
    marker = tmp_path / "marker"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    path = tmp_path / "src.pkl"
    path.write_bytes(_snapshot(persistent("Generator", module_src=src, _init_kwargs={"z_dim": "x"})))
    with pytest.raises(ModelFormatError) as info:
        load_networks(path)
    _one_line(info.value, "src.pkl")
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------------------
# Numbers that the bytes present cannot justify: refused by the pre-scan, before the unpickler allocates.


def _frame(length: int) -> bytes:
    return b"\x80\x04\x95" + struct.pack("<Q", length) + b"K\x01."


RAW = {
    "memo index far ahead": (b"\x80\x02K\x01r" + struct.pack("<I", 1_258_647_924) + b".", "memo index 1258647924"),
    "memo get never stored": (b"\x80\x02h\x05.", "memo index 5 at offset 2 was never stored"),
    "frame longer than the file": (_frame(1 << 40), "a frame of 1099511627776 bytes"),
    "bytes8 longer than the file": (b"\x80\x04\x8e" + struct.pack("<Q", 1 << 50) + b".", "bytes wanted"),
    "unicode longer than the file": (b"\x80\x04X" + struct.pack("<I", 0xFFFFFFFF) + b".", "bytes wanted"),
    "long4 integer": (b"\x80\x02\x8b" + struct.pack("<I", 300) + bytes(300) + b".", "longer than 255 bytes"),
    "no stop opcode": (b"\x80\x02K\x01", "bytes wanted"),
}


@pytest.mark.parametrize("name", list(RAW))
def test_numbers_beyond_the_file_are_refused(name):
    data, message = RAW[name]
    start = time.perf_counter()
    with pytest.raises(ModelFormatError) as info:
        safe_loads(data, "raw.pkl")
    assert time.perf_counter() - start < 1.0
    _one_line(info.value, "cannot read raw.pkl", message)


def test_hash_flooding_is_refused():
    """Integers k * (2**61 - 1) + 1 all hash to 1: as dict keys they make insertion quadratic."""
    values = [k * ((1 << 61) - 1) + 1 for k in range(1, 200)]
    assert len(set(values)) == 199 and {hash(v) for v in values} == {1}  # the oracle: one hash value
    data = pickle.dumps(dict.fromkeys(values), protocol=4)
    with pytest.raises(ModelFormatError, match="share one hash value"):
        safe_loads(data, "flood.pkl")
    assert len(safe_loads(pickle.dumps(dict.fromkeys(values[:64]), protocol=4))) == 64  # a few are fine


def test_pre_scan_covers_the_pickles_inside_storage_blobs():
    blob = storage_blob(torch.zeros(2))
    start = blob.index(b"\x80\x02", 20)  # the first of the blob's small pickles after the magic
    bomb = blob[:start] + b"\x80\x02K\x01r" + struct.pack("<I", 10**9) + b"0" + blob[start:]
    data = dumps_with_globals({"t": tensor_reduce(torch.zeros(2), Reduce(LOAD_FROM_BYTES, (bomb,)))})
    with pytest.raises(ModelFormatError, match="memo index 1000000000"):
        safe_loads(data, "blob.pkl")


def test_tensor_wider_than_its_storage_is_refused():
    flat = torch.arange(4, dtype=torch.float32)
    expanded = tensor_reduce(flat, Reduce(LOAD_FROM_BYTES, (storage_blob(flat),)), 0, (1 << 40, 4), (0, 1))
    with pytest.raises(ModelFormatError, match="more elements than its storage"):
        safe_loads(dumps_with_globals(expanded), "wide.pkl")


def test_numpy_array_whose_bytes_do_not_match_its_shape():
    array = Reduce(NamedGlobal("numpy.core.multiarray", "_reconstruct"), (NamedGlobal("numpy", "ndarray"), (0,), b"b"))
    dtype = Reduce(NamedGlobal("numpy", "dtype"), ("f4", False, True), (3, "<", None, None, None, -1, -1, 0))
    array.state = (1, (1 << 20, 1 << 20), dtype, False, bytes(16))
    with pytest.raises(ModelFormatError, match="has 16 bytes"):
        safe_loads(dumps_with_globals(array), "np.pkl")


@pytest.mark.parametrize("depth", [10_000, 200_000])
def test_deep_nesting_is_one_line(depth, tmp_path):
    nested = b"\x80\x02" + b"(" * depth + b"t" * depth + b"."  # MARK x depth, then TUPLE x depth
    path = tmp_path / "deep.pkl"
    path.write_bytes(nested)
    with pytest.raises(ModelFormatError) as info:
        load_networks(path)
    _one_line(info.value, "deep.pkl")


# ----------------------------------------------------------------------------------------------------------
# Configs larger than their file: refused before the network is allocated.


def _tiny_ada_with(**kwargs) -> bytes:
    from test_safe_pickle import emit

    from stylegan.compat.safe_pickle import safe_load

    raw = safe_load(FIXTURES / "nvlabs" / "sg2_tiny.pkl")
    G = raw["G_ema"]
    G.state["_init_kwargs"] = {**G.state["_init_kwargs"], **kwargs}
    return dumps_with_globals(emit({"G_ema": G, "training_set_kwargs": None}))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"img_resolution": 1 << 400}, "img_resolution=" + str(1 << 400)),
        ({"img_resolution": 1 << 14}, "stored configuration is invalid"),  # channel_base runs out: 0 channels
        ({"synthesis_kwargs": {"channel_base": 1 << 40, "channel_max": 1 << 20}}, "the configuration needs"),
        ({"mapping_kwargs": {"num_layers": 10**9}}, "mapping_layers=1000000000"),
        ({"z_dim": -3}, "invalid constructor kwargs"),
    ],
)
def test_pickle_config_larger_than_the_file(kwargs, message, tmp_path):
    path = tmp_path / "big.pkl"
    path.write_bytes(_tiny_ada_with(**kwargs))
    start = time.perf_counter()
    with pytest.raises(ModelFormatError, match=message) as info:
        load_networks(path)
    assert time.perf_counter() - start < 5.0
    _one_line(info.value, "big.pkl")


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"channel_base": 1 << 40, "channel_max": 1 << 20}, "the configuration needs"),
        ({"mapping_layers": 10**9}, "mapping_layers=1000000000"),
        ({"channel_max": "many"}, "G"),
    ],
)
def test_native_config_larger_than_the_file(edit, message, tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    from stylegan.io.native import META_KEY, read_native_metadata

    src = FIXTURES / "fuzz" / "sg2_tiny.safetensors"
    meta = read_native_metadata(src)
    meta["networks"]["G"]["config"].update(edit)
    path = tmp_path / "big.safetensors"
    save_file(load_file(str(src)), str(path), metadata={META_KEY: json.dumps(meta)})
    with pytest.raises(ModelFormatError, match=message) as info:
        load_networks(path)
    _one_line(info.value, "big.safetensors")


def test_safetensors_header_lies_about_sizes(tmp_path):
    data = bytearray((FIXTURES / "fuzz" / "sg2_tiny.safetensors").read_bytes())
    header_len = struct.unpack("<Q", data[:8])[0]
    header = bytes(data[8 : 8 + header_len]).replace(b'"shape":[', b'"shape":[1048576,', 1)
    path = tmp_path / "lie.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(data[8 + header_len :]))
    with pytest.raises(ModelFormatError) as info:
        load_networks(path)
    _one_line(info.value, "lie.safetensors")


def test_helpers_are_sound():
    assert math.prod((1 << 20, 1 << 20)) * 4 > 16 and isinstance(io.BytesIO(), io.BytesIO)
    assert list(OrderedDict(a=1)) == ["a"] and np.float32(1) == 1
    with pytest.raises(UnsafePickleError):
        safe_loads(dumps_with_globals(_touch(Path("/nonexistent/marker"))))

"""The model zoo and URL loading, against a real HTTP server on 127.0.0.1 (tests/io/local_http.py).

Oracles: the bytes of the fixture files (sha256 computed here with hashlib), the networks the same fixture gives
when loaded from its local path, the request log of the server, and NVIDIA's README URLs typed in below.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import socket
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from local_http import LocalServer, Route

from stylegan.cli.main import main
from stylegan.compat.nvidia_pickle import sniff_format
from stylegan.io import (
    MODELS,
    Limits,
    ModelDownloadError,
    ModelFormatError,
    UnsafePickleError,
    fetch_model,
    load_generator,
    load_networks,
)
from stylegan.io.download import download

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SG2 = FIXTURES / "nvlabs" / "sg2_tiny.pkl"
SG3T = FIXTURES / "nvlabs" / "sg3t_tiny.pkl"
SG3_HOST_PATH = "/api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
FAST = Limits(timeout=5.0)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache for each test, through the documented variable; no mirror, downloads allowed."""
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    for name in ("STYLEGAN_ZOO_MIRROR", "STYLEGAN_OFFLINE", "STYLEGAN_DOWNLOAD_TIMEOUT", "STYLEGAN_MAX_DOWNLOAD_GB"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache" / "models"


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _one_line(err: BaseException, *parts: str) -> str:
    text = str(err)
    assert "\n" not in text and len(text) < 400, text
    for part in parts:
        assert part in text, text
    return text


def _same_networks(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for name, module in want.items():
        ref = module.state_dict()
        state = got[name].state_dict()
        assert state.keys() == ref.keys()
        for key, value in ref.items():
            torch.testing.assert_close(state[key], value.float(), rtol=0, atol=0, msg=f"{name}.{key}")


# ---------------------------------------------------------------------------------------------------------------
# By URL and by name


def test_url_downloads_converts_once_then_reads_safetensors(cache, server):
    data = SG2.read_bytes()
    server.routes["/models/sg2_tiny.pkl"] = Route(data)
    url = server.url("/models/sg2_tiny.pkl")
    _same_networks(load_networks(url), load_networks(SG2))
    assert len(server.log) == 1
    (entry,) = [p for p in cache.iterdir() if p.name.startswith("url-")]
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["sha256"] == _sha(data) and manifest["size"] == len(data) and manifest["source"] == url
    native = entry / manifest["native"]["file"]
    assert sniff_format(native) == "safetensors" and manifest["native"]["sha256"] == _sha(native.read_bytes())
    assert (entry / "sg2_tiny.pkl").read_bytes() == data and not (entry / "sg2_tiny.pkl.part").exists()
    # Second use: no request, and the converted file is what is read (remove the pickle to prove it).
    (entry / "sg2_tiny.pkl").unlink()
    G = load_generator(url)
    assert len(server.log) == 1
    torch.testing.assert_close(G.state_dict(), load_generator(SG2).state_dict(), rtol=0, atol=0)


def test_zoo_name_through_a_mirror(cache, server, monkeypatch):
    server.routes[SG3_HOST_PATH + "stylegan3-t-ffhqu-256x256.pkl"] = Route(SG3T.read_bytes())
    monkeypatch.setenv("STYLEGAN_ZOO_MIRROR", server.url("/"))
    _same_networks(load_networks("stylegan3-t-ffhqu-256"), load_networks(SG3T))
    assert (cache / "stylegan3-t-ffhqu-256" / "stylegan3-t-ffhqu-256x256.pkl").read_bytes() == SG3T.read_bytes()
    assert [path for path, _ in server.log] == [SG3_HOST_PATH + "stylegan3-t-ffhqu-256x256.pkl"]


def test_mirror_as_an_argument(cache, server):
    server.routes["/base" + SG3_HOST_PATH + "stylegan3-r-ffhqu-256x256.pkl"] = Route(SG3T.read_bytes())
    path = fetch_model("stylegan3-r-ffhqu-256", mirror=server.url("/base/"), progress=False, limits=FAST)
    assert path == cache / "stylegan3-r-ffhqu-256" / "stylegan3-r-ffhqu-256x256.safetensors"
    _same_networks(load_networks(path), load_networks(SG3T))


def test_a_local_file_named_like_a_zoo_entry_is_read_from_disk(cache, server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("stylegan2-cifar10-32").write_bytes(SG2.read_bytes())
    _same_networks(load_networks("stylegan2-cifar10-32"), load_networks(SG2))
    assert not cache.exists()


# ---------------------------------------------------------------------------------------------------------------
# Broken transfers


def test_dropped_connection_resumes_with_a_range_request(cache, server):
    data = SG2.read_bytes()
    server.routes["/a.pkl"] = Route(data, drop_after=300_000)
    dest = cache / "x" / "a.pkl"
    assert download(server.url("/a.pkl"), dest, limits=FAST, progress=False) == _sha(data)
    assert dest.read_bytes() == data and not dest.with_name("a.pkl.part").exists()
    assert server.log == [("/a.pkl", None), ("/a.pkl", "bytes=300000-")]


def test_interrupted_download_is_kept_and_the_next_run_resumes(cache, server):
    data = SG2.read_bytes()
    server.routes["/b.pkl"] = Route(data, drop_after=400_000)
    url, once = server.url("/b.pkl"), Limits(timeout=5.0, attempts=1)
    with pytest.raises(ModelDownloadError) as info:
        fetch_model(url, limits=once, progress=False)
    _one_line(info.value, url, "run again to resume", "put it at")
    (part,) = list(cache.glob("url-*/b.pkl.part"))
    assert part.read_bytes() == data[:400_000]
    _same_networks(load_networks(url), load_networks(SG2))
    assert server.log[-1] == ("/b.pkl", "bytes=400000-") and len(server.log) == 2


def test_server_that_ignores_range_starts_over(cache, server):
    data = SG2.read_bytes()
    server.routes["/c.pkl"] = Route(data, drop_after=100_000, ranges=False)
    dest = cache / "c.pkl"
    assert download(server.url("/c.pkl"), dest, limits=FAST, progress=False) == _sha(data)
    assert dest.read_bytes() == data


def test_wrong_sha256_is_refused_and_removed(cache, server):
    server.routes["/d.pkl"] = Route(SG2.read_bytes())
    dest = cache / "d.pkl"
    with pytest.raises(ModelDownloadError) as info:
        download(server.url("/d.pkl"), dest, sha256="0" * 64, limits=FAST, progress=False)
    _one_line(info.value, server.url("/d.pkl"), "sha256", "put it at")
    assert not dest.exists() and not dest.with_name("d.pkl.part").exists()


def test_cached_file_changed_on_disk_is_refused_removed_and_fetched_again(cache, server):
    server.routes["/e.pkl"] = Route(SG2.read_bytes())
    url = server.url("/e.pkl")
    native = fetch_model(url, progress=False)
    blob = bytearray(native.read_bytes())
    blob[-1] ^= 0xFF  # one flipped bit in a weight: still a readable file, but not the one converted
    native.write_bytes(bytes(blob))
    with pytest.raises(ModelDownloadError) as info:
        load_generator(url)
    _one_line(info.value, "sha256 differs", "removed")
    assert not native.exists() and not (native.parent / "e.pkl").exists()
    _same_networks(load_networks(url), load_networks(SG2))
    assert len(server.log) == 2


def test_new_version_reconverts_from_the_checked_download_without_a_request(cache, server):
    server.routes["/f.pkl"] = Route(SG2.read_bytes())
    native = fetch_model(server.url("/f.pkl"), progress=False)
    manifest = native.parent / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"converted_by": "', '"converted_by": "0.0.0-old'))
    fetch_model(server.url("/f.pkl"), progress=False)
    assert len(server.log) == 1 and json.loads(manifest.read_text())["converted_by"] != "0.0.0-old"


def test_404_is_one_line(cache, server):
    url = server.url("/missing.pkl")
    with pytest.raises(ModelDownloadError) as info:
        load_generator(url)
    _one_line(info.value, url, "HTTP 404", "put it at")


def test_slow_server_times_out_in_one_line(cache, server, monkeypatch):
    server.routes["/slow.pkl"] = Route(SG2.read_bytes(), stall_before=3.0)
    monkeypatch.setenv("STYLEGAN_DOWNLOAD_TIMEOUT", "0.3")
    start = time.monotonic()
    with pytest.raises(ModelDownloadError) as info:
        load_generator(server.url("/slow.pkl"))
    _one_line(info.value, server.url("/slow.pkl"), "no answer within 0.3 s", "put it at")
    assert time.monotonic() - start < 2.5


def test_stall_mid_body_times_out_then_resumes(cache, server):
    data = SG2.read_bytes()
    server.routes["/stall.pkl"] = Route(data, stall_mid=3.0)
    dest = cache / "stall.pkl"
    assert download(server.url("/stall.pkl"), dest, limits=Limits(timeout=0.3), progress=False) == _sha(data)
    assert server.log[1][1] is not None and server.log[1][1].startswith("bytes=")


def test_connection_refused_names_url_and_manual_path(cache):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/g.pkl"
    with pytest.raises(ModelDownloadError) as info:
        load_generator(url)
    text = _one_line(info.value, url, "connection refused", "put it at")
    manual = Path(text.rsplit("put it at ", 1)[1])
    assert manual.parent.parent == cache and manual.name == "g.pkl"
    # Placing the file there by hand is enough: no server needed.
    manual.write_bytes(SG2.read_bytes())
    _same_networks(load_networks(url), load_networks(SG2))


def test_offline_mode_makes_no_request(cache, server, monkeypatch):
    server.routes["/h.pkl"] = Route(SG2.read_bytes())
    monkeypatch.setenv("STYLEGAN_OFFLINE", "1")
    with pytest.raises(ModelDownloadError) as info:
        load_generator(server.url("/h.pkl"))
    _one_line(info.value, "STYLEGAN_OFFLINE", server.url("/h.pkl"), "put it at")
    assert server.log == []


# ---------------------------------------------------------------------------------------------------------------
# Bounds and what is not a model


def test_announced_size_over_the_cap_is_refused_before_the_body(cache, server):
    server.routes["/big.pkl"] = Route(SG2.read_bytes())
    dest = cache / "big.pkl"
    with pytest.raises(ModelDownloadError) as info:
        download(server.url("/big.pkl"), dest, limits=Limits(max_bytes=100_000, timeout=5.0), progress=False)
    _one_line(info.value, "over the 0.1 MB download limit", "STYLEGAN_MAX_DOWNLOAD_GB")
    assert not dest.exists() and not dest.with_name("big.pkl.part").exists()


def test_unannounced_size_over_the_cap_is_cut_off(cache, server):
    server.routes["/nolen.pkl"] = Route(SG2.read_bytes(), send_length=False)
    dest = cache / "nolen.pkl"
    with pytest.raises(ModelDownloadError) as info:
        download(server.url("/nolen.pkl"), dest, limits=Limits(max_bytes=100_000, timeout=5.0), progress=False)
    _one_line(info.value, "larger than announced")
    assert not dest.exists() and not dest.with_name("nolen.pkl.part").exists()


def test_cap_from_the_environment(cache, server, monkeypatch):
    server.routes["/env.pkl"] = Route(SG2.read_bytes())
    monkeypatch.setenv("STYLEGAN_MAX_DOWNLOAD_GB", "0.0001")
    with pytest.raises(ModelDownloadError, match="download limit"):
        load_generator(server.url("/env.pkl"))


def test_web_page_instead_of_a_model_is_refused(cache, server):
    server.routes["/page"] = Route(b"<html>sign in</html>", content_type="text/html")
    with pytest.raises(ModelDownloadError) as info:
        load_generator(server.url("/page"))
    _one_line(info.value, "web page", "put it at")


def _hostile(marker: Path) -> bytes:
    """An ADA-looking pickle (its first telling global is torch_utils.persistence) whose G_ema runs a shell."""
    payload = b"cposix\nsystem\n(V" + f"touch {marker}".encode() + b"\ntR"
    persist = b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n"
    return b"\x80\x02}(VG_ema\n" + payload + b"VG\n" + persist + b"u."


def test_hostile_pickle_payload_is_live_under_plain_pickle(tmp_path):
    """Control: the bytes below do run a command when unpickled the ordinary way."""
    marker = tmp_path / "marker"
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(_hostile(marker))
    assert marker.exists()


def test_hostile_pickle_behind_a_url_is_refused_like_a_local_file(cache, server, tmp_path):
    marker = tmp_path / "marker"
    local = tmp_path / "evil.pkl"
    local.write_bytes(_hostile(marker))
    with pytest.raises(UnsafePickleError) as local_info:
        load_networks(local)
    server.routes["/evil.pkl"] = Route(local.read_bytes())
    with pytest.raises(UnsafePickleError) as url_info:
        load_networks(server.url("/evil.pkl"))
    text = _one_line(url_info.value, "posix.system", server.url("/evil.pkl"))
    assert text.startswith(str(local_info.value))
    assert not marker.exists()
    assert not list(cache.glob("url-*/evil*"))  # refused files do not stay in the cache


def test_memory_bomb_behind_a_url_is_refused(cache, server):
    server.routes["/bomb.pkl"] = Route((FIXTURES / "hostile" / "memo_bomb_sg2_tiny.pkl").read_bytes())
    with pytest.raises(ModelFormatError) as info:
        load_networks(server.url("/bomb.pkl"))
    _one_line(info.value, "memo", "bomb.pkl")


# ---------------------------------------------------------------------------------------------------------------
# Names, the table and the CLI


def test_unknown_name_points_to_the_list(cache):
    with pytest.raises(ModelFormatError) as info:
        load_generator("stylegan3-r-ffhq-256")
    _one_line(info.value, "no model of that name", "stylegan3-r-ffhqu-256", "`stylegan models`")
    with pytest.raises(ModelFormatError, match="no such file$"):
        load_generator("missing.pkl")
    with pytest.raises(ModelFormatError, match="only http:// and https://"):
        load_generator("ftp://example.com/a.pkl")


README_URLS = {  # from NVIDIA's READMEs (stylegan3, stylegan2-ada-pytorch, stylegan2)
    "stylegan3-r-afhqv2-512": "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
    "stylegan3-r-afhqv2-512x512.pkl",
    "stylegan3-t-ffhq-1024": "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
    "stylegan3-t-ffhq-1024x1024.pkl",
    "stylegan3-r-ffhqu-256": "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
    "stylegan3-r-ffhqu-256x256.pkl",
    "stylegan2-celebahq-256": "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
    "stylegan2-celebahq-256x256.pkl",
    "stylegan2-ada-metfaces-1024": "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metfaces.pkl",
    "stylegan2-ada-cifar10-32": "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/cifar10.pkl",
    "stylegan2-tf-cat-256": "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-cat-config-f.pkl",
    "stylegan1-ffhq-1024": "https://drive.google.com/uc?id=1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ",
}


def test_table_matches_the_published_urls():
    for name, url in README_URLS.items():
        assert MODELS[name].url == url, name
    assert sum(name.startswith("stylegan3-") for name in MODELS) == 12
    assert all(entry.url.startswith("https://") and entry.filename.endswith(".pkl") for entry in MODELS.values())
    assert len({entry.url for entry in MODELS.values()}) == len(MODELS)


def test_cli_generate_by_url_and_a_failure_in_one_line(cache, server, tmp_path):
    server.routes["/sg2.pkl"] = Route(SG2.read_bytes())
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["generate", "--network", server.url("/sg2.pkl"), "--seeds", "0", "--outdir", out])
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("*.png"))) == 1
    res = CliRunner().invoke(main, ["generate", "--network", server.url("/nothing.pkl"), "--seeds", "0"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.count("\n") == 1 and "HTTP 404" in res.output, res.output


def test_cli_models_lists_fetches_and_marks_cached(cache, server, monkeypatch):
    server.routes[SG3_HOST_PATH + "stylegan3-t-afhqv2-512x512.pkl"] = Route(SG3T.read_bytes())
    monkeypatch.setenv("STYLEGAN_ZOO_MIRROR", server.url())
    res = CliRunner().invoke(main, ["models", "--fetch", "stylegan3-t-afhqv2-512"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["models"])
    rows = {line.split()[0]: line.split()[-1] for line in res.output.splitlines()[1:-1]}
    assert rows["stylegan3-t-afhqv2-512"] == "converted" and rows["stylegan3-r-ffhqu-256"] == "-"
    assert set(rows) == set(MODELS) and res.output.splitlines()[-1] == f"cache: {cache}"
    res = CliRunner().invoke(main, ["models", "--urls"])
    assert f"{cache / 'stylegan2-ffhq-1024' / 'stylegan2-ffhq-1024x1024.pkl'}" in res.output


def test_native_file_behind_a_url_is_used_as_it_is(cache, server, tmp_path):
    from stylegan.io import convert_model

    native = tmp_path / "g.safetensors"
    convert_model(SG2, native, which="all")
    server.routes["/g.safetensors"] = Route(native.read_bytes())
    got = fetch_model(server.url("/g.safetensors"), progress=False)
    assert got.name == "g.safetensors" and got.read_bytes() == native.read_bytes()
    assert sorted(p.name for p in got.parent.iterdir()) == [".lock", "g.safetensors", "manifest.json"]
    _same_networks(load_networks(server.url("/g.safetensors")), load_networks(SG2))


def test_a_url_made_into_a_path_is_named_as_such(cache):
    with pytest.raises(ModelFormatError, match="lost a '/'"):
        load_networks(Path("https://example.com/a.pkl"))


def test_cli_convert_takes_a_zoo_name(cache, server, monkeypatch, tmp_path):
    from stylegan.io import read_native_metadata

    server.routes[SG3_HOST_PATH + "stylegan3-r-metfaces-1024x1024.pkl"] = Route(SG3T.read_bytes())
    monkeypatch.setenv("STYLEGAN_ZOO_MIRROR", server.url())
    out = tmp_path / "m.safetensors"
    res = CliRunner().invoke(main, ["convert", "stylegan3-r-metfaces-1024", str(out), "--which", "all"])
    assert res.exit_code == 0, res.output
    meta = read_native_metadata(out)
    assert list(meta["networks"]) == ["G", "D", "G_ema"] and meta["converted_from"] == "stylegan3-r-metfaces-1024"


def test_concurrent_first_loads_download_once(cache, server):
    """Two processes' worth of first loads (e.g. torchrun ranks; threads here) share one download."""
    from concurrent.futures import ThreadPoolExecutor

    server.routes["/shared.pkl"] = Route(SG2.read_bytes(), stall_mid=0.3)
    url = server.url("/shared.pkl")
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: fetch_model(url, progress=False, limits=FAST), range(2)))
    assert paths[0] == paths[1] and len(server.log) == 1


def test_cli_convert_by_url(cache, server, tmp_path):
    server.routes["/sg3t.pkl"] = Route(SG3T.read_bytes())
    dest = tmp_path / "sg3t.safetensors"
    res = CliRunner().invoke(main, ["convert", server.url("/sg3t.pkl"), str(dest), "--which", "all"])
    assert res.exit_code == 0, res.output
    from stylegan.io import load_networks

    assert set(load_networks(dest)) == {"G", "D", "G_ema"}

"""The model cache: zoo names and URLs become local native files, downloaded, checked and converted once.

Layout under `model_cache_dir()` (`$STYLEGAN_CACHE/models`, else `$XDG_CACHE_HOME/stylegan/models`, else
`~/.cache/stylegan/models`), one folder per model:

    <key>/                 key: the zoo name, or url-<16 hex digits of the URL's sha256>
      <file>               the download as published (e.g. stylegan3-r-ffhqu-256x256.pkl); <file>.part meanwhile
      <stem>.safetensors   its conversion to the native format (every network in it): what later loads read
      manifest.json        source URL, sha256 of both files, and the stylegan version that converted

A file put at `<key>/<file>` by hand is used as if downloaded. The sha256 of the download is checked against
the zoo's digest where known, else recorded on first sight; the native file's digest is checked on every use.
A mismatch removes the entry and says so. `STYLEGAN_OFFLINE=1` forbids downloads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from stylegan.compat.nvidia_pickle import sniff_format
from stylegan.io.download import Limits, download, part_path, sha256_of
from stylegan.io.errors import ModelDownloadError, ModelFormatError
from stylegan.io.native import atomic_write, read_native_metadata, save_networks
from stylegan.io.read import check_file, read_networks
from stylegan.io.zoo import MODELS, close_names, entry_for_url, mirrored, zoo_mirror

CACHE_ENV = "STYLEGAN_CACHE"
OFFLINE_ENV = "STYLEGAN_OFFLINE"
MANIFEST = "manifest.json"


def model_cache_dir() -> Path:
    """Where downloaded models live (see the module docstring)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "stylegan" / "models"


def is_url(spec: object) -> bool:
    """True for an http:// or https:// URL."""
    return isinstance(spec, str) and spec[:8].lower().startswith(("http://", "https://"))


def offline() -> bool:
    """$STYLEGAN_OFFLINE set to anything but '' or '0'."""
    return os.environ.get(OFFLINE_ENV, "0") not in ("", "0")


@dataclass(frozen=True)
class Source:
    """What one cache entry holds and where it comes from."""

    key: str  # folder name in the cache
    url: str  # what is fetched (a mirror's URL when one is set)
    filename: str
    sha256: str | None  # known digest of the download, if any
    label: str  # how messages name it: the zoo name or the URL


def _safe_filename(url: str) -> str:
    """The URL's last path part, reduced to characters safe in any file system."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[-100:]
    return name or "download.pkl"


def source_of(spec: str, mirror: str | None = None) -> Source | None:
    """The cache entry for a URL or a zoo name (None for anything else)."""
    entry = entry_for_url(spec) if is_url(spec) else MODELS.get(spec)
    if entry is not None:
        url = spec if is_url(spec) else mirrored(entry, zoo_mirror(mirror))
        return Source(entry.name, url, entry.filename, entry.sha256, entry.name)
    if not is_url(spec):
        return None
    key = "url-" + hashlib.sha256(spec.encode()).hexdigest()[:16]
    return Source(key, spec, _safe_filename(spec), None, spec)


@contextlib.contextmanager
def _locked(folder: Path):
    """Holds an exclusive lock on the entry, so concurrent processes (e.g. torchrun ranks) fetch it once."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent first loads may fetch twice
        yield
        return
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Entry:
    """One cache folder: its download, its native conversion and the manifest tying them together."""

    def __init__(self, source: Source, root: Path):
        self.source = source
        self.folder = root / source.key
        self.original = self.folder / source.filename
        self.native = self.folder / (Path(source.filename).stem + ".safetensors")
        self.manifest = self.folder / MANIFEST

    def record(self) -> dict:
        try:
            data = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, record: dict) -> None:
        text = json.dumps(record, indent=2, sort_keys=True)
        atomic_write(self.manifest, lambda tmp: Path(tmp).write_text(text))

    def clear(self) -> None:
        """Removes the entry's files (the lock file stays: another process may hold it)."""
        for path in (self.original, part_path(self.original), self.native, self.manifest):
            path.unlink(missing_ok=True)

    def corrupt(self, path: Path) -> ModelDownloadError:
        self.clear()
        return ModelDownloadError(
            f"{path}: sha256 differs from the one recorded for {self.source.label}; removed it from the cache. "
            f"Run again to download it again"
        )


def _usable_native(entry: _Entry, record: dict) -> Path | None:
    """The converted file, when the manifest vouches for it and this version converted it."""
    from stylegan import __version__

    native = record.get("native")
    if not isinstance(native, dict) or record.get("converted_by") != __version__:
        return None
    path = entry.folder / str(native.get("file", ""))
    if not path.is_file() or path.parent != entry.folder:
        return None
    if sha256_of(path) != native.get("sha256"):
        raise entry.corrupt(path)
    return path


def _obtain(entry: _Entry, record: dict, limits: Limits | None, progress: bool | None) -> None:
    """Makes sure the download is there and matches its digest; records url, size and sha256."""
    src = entry.source
    expected = src.sha256 or record.get("sha256")
    if entry.original.is_file():
        digest = sha256_of(entry.original)
        if expected and digest != expected:
            raise entry.corrupt(entry.original)
    elif offline():
        raise ModelDownloadError(
            f"{src.label} is not in the cache and ${OFFLINE_ENV} is set; "
            f"download {src.url} and put it at {entry.original}"
        )
    else:
        record.pop("native", None)
        digest = download(src.url, entry.original, sha256=src.sha256, limits=limits, progress=progress)
    record.update(source=src.url, file=entry.original.name, size=entry.original.stat().st_size, sha256=digest)


def _convert(entry: _Entry, record: dict) -> Path:
    """Writes the native file (a native download is used as it is); a refused file leaves the cache."""
    from stylegan import __version__

    try:
        if sniff_format(entry.original) == "safetensors":
            read_native_metadata(entry.original)
            target = entry.original
        else:
            nets = read_networks(entry.original)
            extra = {"converted_from": entry.original.name, "source_url": entry.source.url}
            save_networks(entry.native, nets, extra={**extra, "source_sha256": record["sha256"]})
            target = entry.native
    except ModelFormatError as err:
        entry.clear()
        raise type(err)(f"{err} (from {entry.source.url}; removed from the cache)") from None
    record.update(native={"file": target.name, "sha256": sha256_of(target)}, converted_by=__version__)
    entry.save(record)
    return target


def fetch_model(
    spec: str,
    *,
    mirror: str | None = None,
    limits: Limits | None = None,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """The local native file for a zoo name or an http(s) URL: downloaded, checked and converted on first use.

    Args:
        spec: a name from `MODELS` (see `stylegan models`) or an http:// / https:// URL.
        mirror: base URL that replaces the zoo's hosts (default $STYLEGAN_ZOO_MIRROR); see stylegan.io.zoo.
        limits: download size cap, timeout and attempts (default from the environment).
        progress: show a progress bar (None: on a terminal only).
        cache_dir: the cache root (default `model_cache_dir()`).

    Raises:
        ModelDownloadError: it could not be downloaded (the line names the URL and where to put the file),
            or a cached file no longer matches its sha256 (the entry is removed).
        ModelFormatError / UnsafePickleError: the download is not a model file this package reads safely.
    """
    source = source_of(spec, mirror)
    if source is None:
        raise unknown_model(spec)
    entry = _Entry(source, Path(cache_dir) if cache_dir is not None else model_cache_dir())
    with _locked(entry.folder):
        record = entry.record()
        ready = _usable_native(entry, record)
        if ready is not None:
            return ready
        _obtain(entry, record, limits, progress)
        return _convert(entry, record)


def unknown_model(spec: str) -> ModelFormatError:
    """The one line for a --network that is no file, no URL and no zoo name."""
    if "://" in spec:
        return ModelFormatError(f"{spec}: only http:// and https:// URLs can be downloaded")
    if os.sep in spec or "/" in spec or Path(spec).suffix in (".pkl", ".safetensors", ".pt", ".pth"):
        return ModelFormatError(f"{spec}: no such file")
    near = close_names(spec)
    hint = f" (did you mean {' or '.join(near)}?)" if near else ""
    return ModelFormatError(f"{spec}: no such file and no model of that name{hint}; `stylegan models` lists the names")


def resolve_model(spec: str | os.PathLike, **fetch_options) -> Path:
    """A local file for `spec`: an existing path as it is, else a zoo name or URL through the cache.

    A local file wins over a zoo name of the same spelling. URLs must come as `str`: a `Path` merges the
    slashes of "https://", so such a Path gets an error that says so.
    """
    spec = os.fspath(spec)
    if re.match(r"(?i)https?:/[^/]", spec):
        raise ModelFormatError(f"{spec}: a URL that lost a '/' (made a path?); pass URLs as plain strings")
    if is_url(spec):
        return fetch_model(spec, **fetch_options)
    if Path(spec).exists():
        return check_file(spec)
    if spec in MODELS:
        return fetch_model(spec, **fetch_options)
    raise unknown_model(spec)


def cache_state(name: str, cache_dir: str | Path | None = None) -> str:
    """'converted', 'downloaded', 'partial' or '' for a zoo name (read from the folder; nothing is hashed)."""
    source = source_of(name)
    if source is None:
        return ""
    entry = _Entry(source, Path(cache_dir) if cache_dir is not None else model_cache_dir())
    native = entry.record().get("native")
    if isinstance(native, dict) and (entry.folder / str(native.get("file", ""))).is_file():
        return "converted"
    if entry.original.is_file():
        return "downloaded"
    return "partial" if part_path(entry.original).is_file() else ""


def manual_path(name: str, cache_dir: str | Path | None = None) -> Path:
    """Where a zoo model's file goes when downloaded by hand."""
    source = source_of(name)
    if source is None:
        raise unknown_model(name)
    return _Entry(source, Path(cache_dir) if cache_dir is not None else model_cache_dir()).original

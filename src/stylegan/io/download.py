"""HTTP(S) downloads with the standard library: streamed to disk, resumable, bounded, checked.

The body goes to `<dest>.part` in 1 MiB pieces (never all in memory). A broken connection keeps the part; the
next attempt asks for the rest with an HTTP Range request. Only when every byte is there and the sha256 agrees
is the part renamed onto `dest`, so `dest` is always either absent or whole.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from stylegan.io.errors import ModelDownloadError

CHUNK = 1 << 20
USER_AGENT = "stylegan-downloader/1 (+python urllib)"
MAX_BYTES_ENV = "STYLEGAN_MAX_DOWNLOAD_GB"
TIMEOUT_ENV = "STYLEGAN_DOWNLOAD_TIMEOUT"


@dataclass(frozen=True)
class Limits:
    """What a download may cost: bytes on disk, seconds of silence per socket read, and attempts."""

    max_bytes: int = 4 << 30
    timeout: float = 30.0
    attempts: int = 5

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by $STYLEGAN_MAX_DOWNLOAD_GB and $STYLEGAN_DOWNLOAD_TIMEOUT (seconds)."""
        gb = _env_number(MAX_BYTES_ENV, cls.max_bytes / (1 << 30))
        return cls(max_bytes=int(gb * (1 << 30)), timeout=_env_number(TIMEOUT_ENV, cls.timeout))


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"${name}={text!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"${name} must be positive, not {text}")
    return value


class _Stopped(Exception):
    """The body stopped before its end; what is on disk is kept for the next attempt."""


class _TooBig(Exception):
    """The body ran past the size limit (the server announced no length, or a wrong one)."""


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(CHUNK):
            digest.update(piece)
    return digest.hexdigest()


def part_path(dest: Path) -> Path:
    """Where the bytes of `dest` collect while they arrive."""
    return dest.with_name(dest.name + ".part")


def _opener() -> urllib.request.OpenerDirector:
    """HTTP and HTTPS only (redirects included): no file://, ftp:// or data: from a redirect."""
    director = urllib.request.OpenerDirector()
    handlers = [
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ]
    for handler in handlers:
        director.add_handler(handler)
    return director


def _size_text(n: int) -> str:
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MB"


def _reason(err: BaseException, timeout: float) -> str:
    """Why a request failed, in a few words."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    inner = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(inner, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused: offline, or nothing listens there"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror.lower()
    return " ".join(str(inner).split())[:120] or type(inner).__name__


def _first_byte(resp, have: int, part: Path) -> int:
    """The offset the body starts at: `have` for a 206 answer to our Range request, 0 for a full 200."""
    if resp.status != 206:
        return 0
    match = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != have:
        part.unlink()  # the next attempt starts over
        raise _Stopped("the server resumed at the wrong offset")
    return have


def _expected_total(resp, start: int) -> int | None:
    length = resp.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _too_big(url: str, size: str, limits: Limits, dest: Path) -> ModelDownloadError:
    return ModelDownloadError(
        f"{url} is {size}, over the {_size_text(limits.max_bytes)} download limit (${MAX_BYTES_ENV}); "
        f"download it yourself and put it at {dest}"
    )


def _check_headers(url: str, resp, total: int | None, limits: Limits, dest: Path) -> None:
    if total is not None and total > limits.max_bytes:
        raise _too_big(url, _size_text(total), limits, dest)
    if resp.headers.get_content_type() == "text/html":
        raise ModelDownloadError(
            f"{url} answered with a web page, not a model file (a sign-in or confirmation page?); "
            f"download it in a browser and put it at {dest}"
        )


def _copy_body(resp, f, start: int, total: int | None, limits: Limits, bar) -> None:
    """Appends the body to f from `start`; a short or broken body raises _Stopped with the bytes kept."""
    got = start
    try:
        while piece := resp.read1(CHUNK):  # what has arrived (read() would wait for a whole CHUNK)
            got += len(piece)
            if got > limits.max_bytes:
                raise _TooBig
            f.write(piece)
            bar.update(len(piece))
    except (OSError, http.client.HTTPException) as err:
        raise _Stopped(_reason(err, limits.timeout)) from None
    if total is not None and got < total:
        raise _Stopped(f"connection closed at {got} of {total} bytes")


def _attempt(url: str, part: Path, dest: Path, limits: Limits, progress: bool | None) -> None:
    """One request for what `part` lacks; raises _Stopped when the body breaks off."""
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = _opener().open(urllib.request.Request(url, headers=headers), timeout=limits.timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part is no prefix of this file any more: start over
            part.unlink()
            raise _Stopped("the partial file did not fit; starting over") from None
        raise
    with resp:
        start = _first_byte(resp, have, part)
        total = _expected_total(resp, start)
        _check_headers(url, resp, total, limits, dest)
        quiet = None if progress is None else not progress  # None: tqdm shows the bar on a terminal only
        bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=f"download {dest.name}", disable=quiet)
        try:
            with bar, open(part, "r+b" if start else "wb") as f:
                f.seek(start)
                f.truncate()
                _copy_body(resp, f, start, total, limits, bar)
        except _TooBig:
            part.unlink()
            raise _too_big(url, "larger than announced", limits, dest) from None


def _transfer(url: str, part: Path, dest: Path, limits: Limits, progress: bool | None) -> None:
    """Attempts until the body is whole; retries only while each attempt brings new bytes."""
    for _ in range(limits.attempts):
        before = part.stat().st_size if part.exists() else 0
        try:
            _attempt(url, part, dest, limits, progress)
            return
        except _Stopped as err:
            stopped = str(err)
            if (part.stat().st_size if part.exists() else 0) <= before and part.exists():
                break
    have = part.stat().st_size if part.exists() else 0
    raise ModelDownloadError(
        f"download of {url} stopped after {_size_text(have)} ({stopped}); run again to resume, "
        f"or download it yourself and put it at {dest}"
    )


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    limits: Limits | None = None,
    progress: bool | None = None,
) -> str:
    """Fetches `url` into `dest` (resuming `<dest>.part` if there) and returns the file's hex sha256.

    Args:
        url: an http:// or https:// URL; redirects are followed (to http/https only).
        dest: the final file; it appears only once whole (and matching `sha256` when given).
        sha256: the expected digest; a mismatch deletes the download.
        limits: size cap, socket timeout and attempts (default: Limits.from_env()).
        progress: show a tqdm bar (None: only on a terminal).

    Raises:
        ModelDownloadError: the server could not be reached, refused, stalled, sent too much or the wrong bytes.
            The one-line message names the URL and where to put the file by hand.
    """
    dest, limits = Path(dest), limits or Limits.from_env()
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        _transfer(url, part, dest, limits, progress)
    except ModelDownloadError:
        raise
    except (OSError, http.client.HTTPException) as err:  # URLError and HTTPError are OSErrors
        raise ModelDownloadError(
            f"could not download {url} ({_reason(err, limits.timeout)}); download it yourself and put it at {dest}"
        ) from None
    digest = sha256_of(part)
    if sha256 and digest != sha256.lower():
        part.unlink()
        raise ModelDownloadError(
            f"{url}: the download's sha256 is {digest[:16]}..., expected {sha256[:16]}...; removed it. "
            f"Run again, or download it yourself and put it at {dest}"
        )
    os.replace(part, dest)
    return digest

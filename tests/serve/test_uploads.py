"""POST /api/upload on the real server: good images answer their size and mode; hostile ones only a 4xx with a
message, and the server answers the next request. Files are made in the test, so the expected values are known."""

from __future__ import annotations

import io
import socket
import struct
import zlib

import pytest
from PIL import Image
from serve_helpers import UPLOAD_BYTES, UPLOAD_PIXELS

ALIVE = "/api/generate.png?seed=1"


def encoded(fmt: str, size=(40, 30), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, format=fmt)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A valid greyscale PNG of width x height zero pixels: about 1000x smaller than its pixels."""
    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def declared_only(width: int, height: int) -> bytes:
    """A PNG header declaring a huge image, with almost no data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))


@pytest.mark.parametrize(
    "fmt, mode", [("PNG", "RGB"), ("PNG", "L"), ("JPEG", "RGB"), ("WEBP", "RGB"), ("GIF", "P"), ("BMP", "RGB")]
)
def test_images_answer_their_size_and_mode(server, fmt, mode):
    data = encoded(fmt, (40, 30), "L" if mode == "L" else "RGB")
    reply = server.request("POST", "/api/upload", body=data)
    assert reply.status == 200, reply.body
    assert reply.json() == {"format": fmt, "width": 40, "height": 30, "mode": mode, "bytes": len(data)}


HOSTILE = {
    "bomb-png": (lambda: png_bomb(3000, 3000), 413, "limit"),  # 9 MP of zeros in ~9 KB
    "huge-declared-size": (lambda: declared_only(100_000, 100_000), 413, "limit"),
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 415, "not an"),
    "html": (lambda: b"<!doctype html><html><body>hi</body></html>", 415, "not an"),
    "not-an-image": (lambda: bytes(range(256)) * 8, 415, "not an"),
    "truncated-png": (lambda: encoded("PNG", (300, 200))[:400], 400, "truncated"),
    "truncated-jpeg": (lambda: _noisy_jpeg()[:1500], 400, "truncated"),
    "empty": (lambda: b"", 400, "empty"),
    "over-the-byte-limit": (lambda: b"\x89PNG" + bytes(UPLOAD_BYTES), 413, "limit"),
}


def _noisy_jpeg() -> bytes:
    import numpy as np

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_uploads_get_only_a_4xx_and_the_server_keeps_serving(server, name):
    make, status, word = HOSTILE[name]
    reply = server.request("POST", "/api/upload", body=make())
    assert reply.status == status, reply.body
    assert word in reply.json()["error"]
    assert server.get(ALIVE).status == 200


def test_the_bomb_really_is_over_the_pixel_limit():
    """The oracle for the bomb case: PIL reads it as 3000 x 3000, above the server's 4 MP."""
    img = Image.open(io.BytesIO(png_bomb(3000, 3000)))
    assert img.size[0] * img.size[1] > UPLOAD_PIXELS and len(png_bomb(3000, 3000)) < 50_000


def test_a_huge_declared_length_is_refused_before_the_body_is_read(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000000\r\n\r\n\x89PNG")
        answer = b""
        while b"}" not in answer:  # headers and body may arrive in separate segments
            part = sock.recv(4096)
            if not part:
                break
            answer += part
    assert answer.startswith(b"HTTP/1.1 413") and b"limit" in answer
    assert server.get(ALIVE).status == 200


def test_a_batch_of_hostile_uploads_at_once(server):
    from concurrent.futures import ThreadPoolExecutor

    bodies = [make() for make, _, _ in HOSTILE.values()] * 3
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda b: server.request("POST", "/api/upload", body=b).status, bodies))
    assert all(400 <= s < 500 for s in statuses), statuses
    assert server.get(ALIVE).status == 200


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    """No Content-Length: the size is counted while reading."""
    import http.client

    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    chunks = (bytes(64 * 1024) for _ in range(UPLOAD_BYTES // (64 * 1024) + 4))
    conn.request("POST", "/api/upload", body=chunks, encode_chunked=True)
    reply = conn.getresponse()
    assert reply.status == 413 and b"limit" in reply.read()
    conn.close()
    assert server.get(ALIVE).status == 200

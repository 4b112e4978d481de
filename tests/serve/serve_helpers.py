"""Helpers of the explorer's tests (imported by tests/serve/conftest.py and the test files).

A real explorer on 127.0.0.1 for the tests: uvicorn in a thread on a free port, three models, small limits.

Models: "0" the built-in one (32² grey, StyleGAN2), "1" NVIDIA's sg3t_tiny.pkl (32² RGB, StyleGAN3), "2" NVIDIA's
sg2_tiny_cond.pkl (16² grey, 5 classes). Without the [serve] extra the tests skip (fail under CI=true).
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ci_skip import skip_or_fail

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs"
ATT_FACE = FIXTURES.parent / "att-faces" / "s1" / "1.pgm"  # AT&T Laboratories Cambridge (see its README)
SG3 = FIXTURES / "sg3t_tiny.pkl"
COND = FIXTURES / "sg2_tiny_cond.pkl"
UPLOAD_BYTES = 2 * 2**20  # small limits, so that hostile files stay small too
UPLOAD_PIXELS = 4_000_000
PROJECT_QUEUE = 2  # projections waiting or running
PREVIEW_EVERY = 2  # steps between the projection's preview images


def require_serve_extra() -> None:
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed: the [serve] extra (make venv)")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    host: str
    port: int
    slots: list

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return Reply(res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)


def start_server(app, host: str = "127.0.0.1"):
    """(uvicorn.Server, thread, port): serving `app` on a free port of `host` until server.should_exit."""
    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as `stylegan serve` does (see cli/serve.py)
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return server, thread, sock.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    require_serve_extra()
    from stylegan.serve import Settings, UploadLimits, create_app, load_slots

    slots = load_slots([None, str(SG3), str(COND)], torch.device("cpu"), timeout_s=60)
    settings = Settings(
        uploads=UploadLimits(max_bytes=UPLOAD_BYTES, max_pixels=UPLOAD_PIXELS),
        project_steps=100,  # as `stylegan serve`: tests name their (small) step counts
        project_queue=PROJECT_QUEUE,
        preview_every=PREVIEW_EVERY,
    )
    uv, thread, port = start_server(create_app(slots, settings))
    yield Server("127.0.0.1", port, slots)
    uv.should_exit = True
    thread.join(timeout=10)


def png_of(pixels, fmt: str = "PNG") -> bytes:
    """uint8 [H, W] or [H, W, 3] pixels as an image file's bytes (no metadata, no mark)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def generated_photo(seed: int = 3, side: int = 128) -> bytes:
    """A built-in model's image (32², grey) enlarged to side² (nearest), as a plain PNG: a quick projection target."""
    import numpy as np

    from stylegan.editing.generate import generate_images
    from stylegan.io import load_generator

    img = generate_images(load_generator(None), [seed])[0, 0].numpy()
    return png_of(np.kron(img, np.ones((side // 32, side // 32), dtype=np.uint8)))


def marked_generated_png(seed: int = 3) -> bytes:
    """A built-in model's image enlarged 8x (256², as `stylegan edit --zoom 8` would) and saved by png_bytes: it
    carries the provenance mark (model 'default', this seed) and the AI-generated metadata."""
    from stylegan.editing.generate import generate_images
    from stylegan.images import png_bytes, zoom
    from stylegan.io import load_generator

    img = generate_images(load_generator(None), [seed])[0]
    return png_bytes(zoom(img, 8), metadata={"model": "default", "seed": seed}, mark=True)

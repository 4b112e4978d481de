"""The explorer's ASGI app (Starlette): the page, its static files and a small JSON/PNG API.

Routes:
    GET  /                  the page (static/index.html); views are sections of it, one ES module each
    GET  /static/...        HTML, JS, CSS shipped in the package (no build step, nothing from a CDN)
    GET  /api/models        the models offered and what their controls need (JSON)
    GET  /api/generate.png  one image: model, seed, psi, cutoff, class, noise, tx, ty, rotate
    GET  /api/mix.png       the style-mixing grid: model, rows, cols, styles, psi, cutoff, class, noise
    POST /api/upload        an image as the request body -> {format, width, height, mode, bytes} or a 4xx

Images are PNG bytes made in memory, never files; their CLI equivalent travels in the `X-Stylegan-Command` header
(percent-encoded). Client mistakes are 4xx with {"error": "one line"}; a full queue is 429, a stuck job 504.
"""

from __future__ import annotations

import contextlib
import logging
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stylegan.serve.models import ModelSlot, render_generate, render_mix
from stylegan.serve.params import GenerateRequest, MixRequest, ParamError
from stylegan.serve.uploads import UploadError, UploadLimits, inspect_image, too_large
from stylegan.serve.worker import Busy, JobTimeout

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("stylegan.serve")

# The page only talks to its own origin; nothing inline, nothing from elsewhere, no framing.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


@dataclass(frozen=True)
class Settings:
    """Limits of a server. `allowed_hosts`: Host headers accepted (DNS-rebinding guard); ["*"] accepts any."""

    uploads: UploadLimits = field(default_factory=UploadLimits)
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1", "[::1]")
    decode_slots: int = 2  # uploads decoded at once (each may hold up to max_pixels * 4 bytes)


def create_app(slots: list[ModelSlot], settings: Settings | None = None) -> Starlette:
    """The app serving `slots` (at least one). Closing the app's lifespan stops the models' worker threads."""
    if not slots:
        raise ValueError("the explorer needs at least one model")
    settings = settings or Settings()
    api = _Api({s.key: s for s in slots}, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for slot in slots:
            slot.worker.close()

    routes = [
        Route("/", _index),
        Route("/api/models", api.models),
        Route("/api/generate.png", api.generate),
        Route("/api/mix.png", api.mix),
        Route("/api/upload", api.upload, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts)),
        Middleware(_SecurityHeaders),
    ]
    handlers = {
        ParamError: _client_error,
        UploadError: _client_error,
        ValueError: _client_error,
        Busy: _busy,
        JobTimeout: _timeout,
        HTTPException: _http_error,
        Exception: _server_error,
    }
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan)


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


class _Api:
    def __init__(self, slots: dict[str, ModelSlot], settings: Settings):
        self.slots, self.settings = slots, settings
        self.decoders = anyio.CapacityLimiter(settings.decode_slots)

    def slot(self, request: Request) -> ModelSlot:
        key = request.query_params.get("model", next(iter(self.slots)))
        if key not in self.slots:
            raise ParamError(f"model must be one of {', '.join(self.slots)} (see /api/models); got {key[:20]!r}")
        return self.slots[key]

    async def models(self, request: Request) -> Response:
        return JSONResponse({"models": [slot.describe() for slot in self.slots.values()]})

    async def generate(self, request: Request) -> Response:
        slot = self.slot(request)
        req = GenerateRequest.parse(request.query_params, slot.info)
        png = await slot.worker.run(render_generate, slot, req)
        return _png(png, req.cli_command(slot.info))

    async def mix(self, request: Request) -> Response:
        slot = self.slot(request)
        req = MixRequest.parse(request.query_params, slot.info, slot.describe()["groups"]["coarse"])
        png = await slot.worker.run(render_mix, slot, req)
        return _png(png, req.cli_command(slot.info))

    async def upload(self, request: Request) -> Response:
        data = await _read_body(request, self.settings.uploads)
        info = await anyio.to_thread.run_sync(inspect_image, data, self.settings.uploads, limiter=self.decoders)
        return JSONResponse(info)


async def _read_body(request: Request, limits: UploadLimits) -> bytes:
    """The body, refused (413) as soon as it is known to exceed the limit: by its declared length or while read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise too_large(int(declared), limits)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_bytes:
            raise too_large(size, limits)
        chunks.append(chunk)
    return b"".join(chunks)


def _png(data: bytes, command: str) -> Response:
    headers = {"cache-control": "no-store", "x-stylegan-command": urllib.parse.quote(command, safe=" =,-./:'\"")}
    return Response(data, media_type="image/png", headers=headers)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _client_error(request: Request, exc: Exception) -> Response:
    return _error(getattr(exc, "status", 400), str(exc).splitlines()[0] if str(exc) else "bad request")


async def _busy(request: Request, exc: Exception) -> Response:
    return _error(429, str(exc), {"retry-after": "1"})


async def _timeout(request: Request, exc: Exception) -> Response:
    return _error(504, str(exc))


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return _error(exc.status_code, exc.detail, exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("request %s failed", request.url.path)
    return _error(500, f"internal error ({type(exc).__name__}); the server keeps running")


class _SecurityHeaders:
    """Pure ASGI middleware adding SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)

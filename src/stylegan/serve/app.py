"""The explorer's ASGI app (Starlette): the page, its static files and a small JSON/PNG API.

Routes:
    GET  /                  the page (static/index.html); views are sections of it, one ES module each
    GET  /static/...        HTML, JS, CSS shipped in the package (no build step, nothing from a CDN)
    GET  /api/models        the models offered and what their controls need (JSON)
    GET  /api/generate.png  one image: model, seed, psi, cutoff, class, noise, tx, ty, rotate
    GET  /api/mix.png       the style-mixing grid: model, rows, cols, styles, psi, cutoff, class, noise
    GET  /api/edit.png      a seed or a projection moved along a direction: model, seed | projection, direction,
                            strength, layers, psi, cutoff, class, noise
    POST /api/upload        an image as the request body -> {format, width, height, mode, bytes} or a 4xx
    POST /api/check         an image as the body -> mark, metadata, C2PA, detector, verdicts, spectrum pictures
    POST /api/project       an image as the body (model, steps, class in the query) -> 202 and the job's status;
                            429 when the projection queue is full
    GET  /api/project/ID    the job's status (polled: a job nobody polls is cancelled after a while)
    GET  /api/project/ID/preview.png | target.png | projected_w.npz;  POST /api/project/ID/cancel

Images are PNG bytes made in memory, never files (`png_bytes`: generated images carry the mark; the projection
target, a crop of the user's photo, is declared a real image); their CLI equivalent travels in the
`X-Stylegan-Command` header (percent-encoded). Client mistakes are 4xx with {"error": "one line"}; a full queue
is 429, a stuck job 504.
"""

from __future__ import annotations

import contextlib
import io
import logging
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import numpy as np
import torch
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stylegan.editing.project import ProjectionSettings, projected_w_npz
from stylegan.images import png_bytes
from stylegan.serve.check import Checker, check_command
from stylegan.serve.editing import render_edit
from stylegan.serve.models import ModelSlot, render_generate, render_mix, served_png
from stylegan.serve.params import (
    EditRequest,
    GenerateRequest,
    MixRequest,
    ParamError,
    parse_truncation,
    project_steps,
)
from stylegan.serve.projection import Job, Projector, make_target, project_command
from stylegan.serve.uploads import UploadError, UploadLimits, inspect_image, open_image, too_large
from stylegan.serve.worker import Busy, JobTimeout, Worker

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
    project_steps: int = 100  # default W steps of a projection (the paper's 1000 take minutes on a CPU)
    max_project_steps: int = 2000
    project_queue: int = 2  # projections waiting or running; one more is 429
    project_timeout_s: float = 600.0  # a projection running longer is stopped
    project_abandon_s: float = 30.0  # a projection whose status nobody polled for this long is stopped
    preview_every: int = 10  # the projection's current image is kept every this many steps
    check_timeout_s: float = 60.0


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
        api.close()

    routes = [
        Route("/", _index),
        Route("/api/models", api.models),
        Route("/api/generate.png", api.generate),
        Route("/api/mix.png", api.mix),
        Route("/api/edit.png", api.edit),
        Route("/api/upload", api.upload, methods=["POST"]),
        Route("/api/check", api.check, methods=["POST"]),
        Route("/api/project", api.project, methods=["POST"]),
        Route("/api/project/{id}", api.project_status),
        Route("/api/project/{id}/preview.png", api.project_preview),
        Route("/api/project/{id}/target.png", api.project_target),
        Route("/api/project/{id}/projected_w.npz", api.project_npz),
        Route("/api/project/{id}/cancel", api.project_cancel, methods=["POST"]),
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
        self.projector = Projector(
            max_pending=settings.project_queue,
            timeout_s=settings.project_timeout_s,
            abandon_s=settings.project_abandon_s,
            preview_every=settings.preview_every,
        )
        self.checker = Checker(settings.uploads)
        self.check_worker = Worker("check", max_pending=8, timeout_s=settings.check_timeout_s)

    def close(self) -> None:
        self.projector.close()
        self.check_worker.close()

    def slot(self, request: Request) -> ModelSlot:
        key = request.query_params.get("model", next(iter(self.slots)))
        if key not in self.slots:
            raise ParamError(f"model must be one of {', '.join(self.slots)} (see /api/models); got {key[:20]!r}")
        return self.slots[key]

    async def models(self, request: Request) -> Response:
        s = self.settings
        project = dict(steps=s.project_steps, max_steps=s.max_project_steps, preview_every=s.preview_every)
        return JSONResponse({"models": [slot.describe() for slot in self.slots.values()], "project": project})

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

    async def edit(self, request: Request) -> Response:
        slot = self.slot(request)
        req = EditRequest.parse(request.query_params, slot.info)
        projected = None if req.projection is None else self.projection(req.projection, slot).ws
        png = await slot.worker.run(render_edit, slot, req, projected)
        return _png(png, req.cli_command(slot.info))

    def projection(self, job_id: str, slot: ModelSlot | None = None, *, done: bool = True) -> Job:
        """The job `job_id` (404 if unknown); with done, it must have finished, and on `slot`'s model if given."""
        job = self.projector.get(job_id)
        if job is None:
            raise UploadError(404, "no such projection (ids are kept for the last 16 projections of this server)")
        if done and job.state != "done":
            raise UploadError(409, f"the projection is {job.state}, not done")
        if slot is not None and job.slot.key != slot.key:
            raise ParamError(f"the projection was made with model {job.slot.key}; pick that model to edit it")
        return job

    async def project(self, request: Request) -> Response:
        slot = self.slot(request)
        steps = project_steps(request.query_params, self.settings.project_steps, self.settings.max_project_steps)
        class_idx = parse_truncation(request.query_params, slot.info).class_idx
        data = await _read_body(request, self.settings.uploads)
        target = await anyio.to_thread.run_sync(self._target, slot, data, limiter=self.decoders)
        c = None if class_idx is None else _one_hot(class_idx, slot.info.c_dim)
        command = project_command(slot.spec, steps, class_idx, target.aligned, slot.G.img_resolution)
        job = self.projector.submit(slot, target, ProjectionSettings(steps=steps), c, command)
        return JSONResponse(job.status(), status_code=202)

    def _target(self, slot: ModelSlot, data: bytes):
        return make_target(slot, open_image(data, self.settings.uploads))

    async def project_status(self, request: Request) -> Response:
        return JSONResponse(self.projection(request.path_params["id"], done=False).status())

    async def project_cancel(self, request: Request) -> Response:
        job = self.projection(request.path_params["id"], done=False)
        job.cancel.set()
        return JSONResponse(job.status())

    async def project_preview(self, request: Request) -> Response:
        job = self.projection(request.path_params["id"], done=False)
        if job.preview is None:
            raise UploadError(409, "no image yet: the projection has not reached its first preview step")
        trunc = parse_truncation({}, job.slot.info)
        png = await anyio.to_thread.run_sync(served_png, job.preview, job.slot, trunc, None)
        return _png(png, job.command)

    async def project_target(self, request: Request) -> Response:
        job = self.projection(request.path_params["id"], done=False)
        return _png(png_bytes(job.target.pixels, generated=False, compress_level=1), job.command)

    async def project_npz(self, request: Request) -> Response:
        job = self.projection(request.path_params["id"])
        buf = io.BytesIO()
        np.savez(buf, **projected_w_npz(job.ws))
        headers = {"content-disposition": 'attachment; filename="projected_w.npz"', "cache-control": "no-store"}
        return Response(buf.getvalue(), media_type="application/octet-stream", headers=headers)

    async def check(self, request: Request) -> Response:
        data = await _read_body(request, self.settings.uploads)
        report = await self.check_worker.run(self.checker.check, data)
        return JSONResponse({**report, "command": check_command(report["format"])})

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


def _one_hot(class_idx: int, c_dim: int) -> torch.Tensor:
    c = torch.zeros([1, c_dim])
    c[0, class_idx] = 1
    return c


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

"""The Project view's jobs: an uploaded photo projected into a model's W, one job at a time, with live progress.

A projection is a heavy job (seconds to minutes), so it does not run on the model's worker: `Projector` holds one
thread and a bounded list of waiting or running jobs (`Busy`, HTTP 429, when full). Each job is checked after every
optimisation step: cancelled (the page's Cancel button, the page closing, or no status poll for `abandon_s`: the
client went away) or past `timeout_s`, it stops there. The page polls `status()`; every `preview_every` steps the
job keeps G's current image, which the page fetches as a (marked) PNG.

A finished job keeps its latent ws [1, num_ws, w_dim] under its id (32 random hex digits, never a path) for the
Edit view, the last `keep` jobs only.

Targets: for a face model (its name says faces / ffhq / celeba / metfaces) with the `faces` extra installed, the
largest face found is aligned (FFHQ-style, stylegan.faces); otherwise, or when no face is found, the photo is
centre-cropped and resized (stylegan.editing.project.prepare_target), as `stylegan project` does.
"""

from __future__ import annotations

import copy
import secrets
import shlex
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import PIL.Image
import torch

from stylegan.editing import project as P
from stylegan.serve.models import ModelSlot
from stylegan.serve.uploads import UploadError
from stylegan.serve.worker import Busy

STATES = ("queued", "running", "done", "failed", "cancelled")


class Stop(Exception):
    """Raised inside a job's progress callback to end the projection (cancelled or out of time)."""


@dataclass
class Target:
    """A photo made ready for a model: pixels uint8 [C, R, R], how (note), and the CLI lines that do the same."""

    pixels: torch.Tensor
    note: str
    aligned: bool


@dataclass
class Job:
    """One projection; its fields are written by the projection thread and read by the event loop."""

    id: str
    slot: ModelSlot
    target: Target
    settings: P.ProjectionSettings
    c: torch.Tensor | None
    command: str
    state: str = "queued"
    step: int = 0
    lpips: float | None = None
    first_lpips: float | None = None
    error: str | None = None
    preview: torch.Tensor | None = None  # uint8 [C, R, R]: G's image at the latest preview step
    preview_version: int = 0
    ws: torch.Tensor | None = None  # the result, [1, num_ws, w_dim] on the CPU
    seconds: float = 0.0
    last_seen: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""

    def status(self) -> dict:
        """What the page polls: state, progress, LPIPS, the preview's version, the error or the stop reason."""
        return dict(
            id=self.id,
            model=self.slot.key,
            state=self.state,
            step=self.step,
            steps=self.settings.steps,
            lpips=self.lpips,
            first_lpips=self.first_lpips,
            preview=self.preview_version,
            seconds=round(self.seconds, 2),
            note=self.target.note,
            error=self.error or (self.stop_reason if self.state == "cancelled" else None),
            command=self.command,
        )


class Projector:
    """One projection thread; at most `max_pending` jobs waiting or running; the last `keep` jobs remembered."""

    def __init__(self, *, max_pending: int, timeout_s: float, abandon_s: float, preview_every: int, keep: int = 16):
        self.max_pending, self.timeout_s, self.abandon_s = max_pending, timeout_s, abandon_s
        self.preview_every, self.keep = preview_every, keep
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="serve-project")
        self._lock = threading.Lock()
        self._lpips = None  # loaded on the projection thread at the first job

    def submit(self, slot: ModelSlot, target: Target, settings: P.ProjectionSettings, c, command: str) -> Job:
        """Queues a projection; Busy when `max_pending` jobs are already waiting or running."""
        with self._lock:
            active = [j for j in self.jobs.values() if j.state in ("queued", "running")]
            if len(active) >= self.max_pending:
                raise Busy(f"{len(active)} projections are queued or running (the limit); retry when one is done")
            job = Job(secrets.token_hex(16), slot, target, settings, c, command)
            self.jobs[job.id] = job
            self._forget_old()
        self._pool.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job (and a sign of life from its client), or None for an unknown or forgotten id."""
        job = self.jobs.get(job_id)
        if job is not None:
            job.last_seen = time.monotonic()
        return job

    def close(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _forget_old(self) -> None:
        finished = [k for k, j in self.jobs.items() if j.state not in ("queued", "running")]
        for key in finished[: max(0, len(self.jobs) - self.keep)]:
            del self.jobs[key]

    def _run(self, job: Job) -> None:
        """The job, on the projection thread: its state ends as done, failed or cancelled."""
        try:
            self._check(job, time.monotonic())
            job.state = "running"
            self._project(job)
            job.state = "done"
        except Stop as stop:
            job.state, job.stop_reason = "cancelled", str(stop)
        except Exception as err:  # the job's failure is reported to the page; the server goes on
            job.state, job.error = "failed", _line(err)

    def _project(self, job: Job) -> None:
        started = time.monotonic()
        if self._lpips is None:
            from stylegan.metrics.lpips import load_lpips

            self._lpips = load_lpips(device=job.slot.device)
        G, latest = job.slot.worker.call(_private_copy, job.slot), {}
        G.synthesis.register_forward_hook(lambda module, args, out: latest.update(img=out))

        def progress(event: P.Progress) -> None:
            job.step, job.lpips, job.seconds = event.step, event.lpips, time.monotonic() - started
            job.first_lpips = event.lpips if job.first_lpips is None else job.first_lpips
            if event.step % self.preview_every == 0 or event.step == event.steps:
                job.preview, job.preview_version = _uint8(latest["img"]), event.step
            self._check(job, started)

        result = P.project(G, job.target.pixels, settings=job.settings, c=job.c, lpips=self._lpips, callback=progress)
        job.ws, job.preview = result.ws, result.image
        job.preview_version, job.seconds = job.preview_version + 1, time.monotonic() - started

    def _check(self, job: Job, started: float) -> None:
        now = time.monotonic()
        if job.cancel.is_set():
            raise Stop("cancelled")
        if now - job.last_seen > self.abandon_s:
            raise Stop(f"abandoned: no client asked for it for {self.abandon_s:g} s")
        if now - started > self.timeout_s:
            raise Stop(f"stopped after {self.timeout_s:g} s (the server's limit per projection)")


def _private_copy(slot: ModelSlot) -> torch.nn.Module:
    """A copy of the slot's G, made on its worker thread (so no request is half-way through a StyleGAN3 transform)."""
    return copy.deepcopy(slot.G)


def _uint8(img: torch.Tensor) -> torch.Tensor:
    """G's output [1, C, R, R] in [-1, 1] -> uint8 [C, R, R] on the CPU."""
    return (img.detach()[0].float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()


def _line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


# ------------------------------------------------------------------------------------------------- targets


def make_target(slot: ModelSlot, img: PIL.Image.Image) -> Target:
    """The photo as a projection target for the slot's model: aligned (face models) or centre-cropped."""
    from PIL import ImageOps

    G = slot.G
    img = ImageOps.exif_transpose(img)
    smallest = max(P.MIN_TARGET_SIDE, G.img_resolution // 8)
    if min(img.size) < smallest:
        raise UploadError(
            400,
            f"image is {img.width}x{img.height}: too small for a {G.img_resolution}² model (sides >= {smallest} px)",
        )
    if P.is_face_model(slot.spec):
        aligned, why = _aligned_face(img, G.img_resolution)
        if aligned is not None:
            return Target(P.prepare_target(aligned, G.img_resolution, G.img_channels), "face found and aligned", True)
        note = f"centre-cropped ({why})"
    else:
        note = "centre-cropped and resized"
    return Target(P.prepare_target(img, G.img_resolution, G.img_channels), note, False)


def _aligned_face(img: PIL.Image.Image, resolution: int) -> tuple[PIL.Image.Image | None, str]:
    """(the largest face aligned FFHQ-style, '') or (None, why not)."""
    from stylegan import faces

    try:
        faces.require_faces()
        aligned = faces.align_faces(faces.to_hwc(img), resolution=resolution, largest=True)[0]
    except faces.FacesUnavailableError:
        return None, "the faces extra is not installed: pip install 'stylegan[faces]'"
    except faces.NoFaceError:
        return None, "no face found"
    return PIL.Image.fromarray(np.squeeze(aligned.image)), ""


def project_command(spec: str | None, steps: int, class_idx: int | None, aligned: bool, resolution: int) -> str:
    """The CLI lines doing what the job does (the photo saved as photo.png)."""
    network = [] if spec is None else ["--network", spec]
    label = [] if class_idx is None else ["--class", str(class_idx)]
    lines = []
    target = "photo.png"
    if aligned:
        lines.append(
            ["stylegan", "align", "photo.png", "--dest", "aligned", "--resolution", str(resolution), "--largest"]
        )
        target = "aligned/photo.png"
    lines.append(
        ["stylegan", "project", *network, "--target", target, "--steps", str(steps), *label, "--outdir", "out/proj"]
    )
    return " && ".join(shlex.join(line) for line in lines)

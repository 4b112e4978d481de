"""Face swap on a video, frame by frame, with the face's track and latent smoothed over time.

- The source photo is projected once.
- Every frame: the largest face is detected; its box and 5 landmarks go through a one-euro filter (Casiez et al.
  2012, "1 euro filter": a low-pass whose cut-off rises with the signal's speed, so a still face does not shake
  and a moving one does not lag much); the frame is aligned with the smoothed face.
- The target's latent: the first frame with a face is projected with the swap's mode (PTI by default) and its
  tuned G is kept for the whole clip; each later frame starts from the previous frame's ws and takes
  `frame_steps` Adam steps in W+ (LPIPS + L2 to that frame's aligned face), and the result is averaged with the
  previous ws (weight `latent_smoothing` on the previous one).
- Frames without a face are written unchanged (but for the provenance mark, which every frame gets).
- Every finished frame is a PNG in a work folder next to the output (`.<name>.swap/`), with its state (ws, filter
  state) beside it: a rerun skips them. Then the frames are marked (editing.video_mark) and encoded (H.264), the
  original audio stream is copied in with ffmpeg (AAC when the codec does not fit an mp4), and the mp4 is written
  atomically; the work folder is removed afterwards.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from torch import nn

from stylegan.editing import swap as S
from stylegan.editing.video_mark import CRF, FrameMarker
from stylegan.faces import Face, align_face, detect_faces

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".gif")


class VideoError(ValueError):
    """A video cannot be read, has no frames, or cannot be written."""


@dataclass(frozen=True)
class VideoSettings:
    """Attributes:
    frame_steps: W+ Adam steps per frame after the first, warm-started from the previous frame.
    frame_lr: their learning rate.
    latent_smoothing: weight of the previous frame's ws in each frame's ws (0: none).
    min_cutoff, beta: the one-euro filter's minimum cut-off (Hz) and speed coefficient (per pixel/s).
    keep_frames: keep the work folder after the mp4 is written.
    """

    frame_steps: int = 10
    frame_lr: float = 0.01
    latent_smoothing: float = 0.5
    min_cutoff: float = 1.0
    beta: float = 0.05
    keep_frames: bool = False

    def __post_init__(self) -> None:
        if self.frame_steps < 0:
            raise ValueError(f"frame_steps must be >= 0, got {self.frame_steps}")
        if not 0 <= self.latent_smoothing < 1:
            raise ValueError(f"latent_smoothing must be within [0, 1), got {self.latent_smoothing}")


# ----------------------------------------------------------------------------------------------------------------
# Smoothing the face track.


class OneEuroFilter:
    """One-euro filter over a vector signal sampled at `rate` Hz; state kept as arrays so it can be saved.

    x_hat = a(fc) x + (1 - a(fc)) x_hat_prev with a(fc) = 1 / (1 + rate / (2 pi fc)) and fc = min_cutoff +
    beta * |dx_hat|, dx_hat being the derivative low-passed at 1 Hz.
    """

    def __init__(self, rate: float, min_cutoff: float, beta: float, state: dict | None = None):
        self.rate, self.min_cutoff, self.beta = rate, min_cutoff, beta
        self.x = None if state is None else np.asarray(state["x"], np.float64)
        self.dx = None if state is None else np.asarray(state["dx"], np.float64)

    def _alpha(self, cutoff: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + self.rate / (2 * math.pi * cutoff))

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, np.float64)
        if self.x is None:
            self.x, self.dx = value.copy(), np.zeros_like(value)
            return value
        speed = (value - self.x) * self.rate
        self.dx = self.dx + self._alpha(np.array(1.0)) * (speed - self.dx)
        self.x = self.x + self._alpha(self.min_cutoff + self.beta * np.abs(self.dx)) * (value - self.x)
        return self.x.copy()

    def state(self) -> dict[str, np.ndarray]:
        return {"x": self.x, "dx": self.dx}


def face_vector(face: Face) -> np.ndarray:
    """[14]: the box (4) and the 5 landmarks (10)."""
    return np.concatenate([np.asarray(face.box, np.float64), face.landmarks.reshape(-1)])


def vector_face(vec: np.ndarray, score: float = 0.0) -> Face:
    """Inverse of face_vector."""
    return Face(box=tuple(float(v) for v in vec[:4]), score=score, landmarks=vec[4:].reshape(5, 2).copy())


# ----------------------------------------------------------------------------------------------------------------
# Reading and writing video.


@dataclass(frozen=True)
class VideoInfo:
    """fps, size (width, height), frames (exact count) and whether the file has an audio stream."""

    fps: float
    size: tuple[int, int]
    frames: int
    audio: bool


def probe(path: str | os.PathLike) -> VideoInfo:
    """What a video holds; VideoError (one line) when it cannot be read or has no frames."""
    import imageio_ffmpeg

    name = Path(path).name
    if not Path(path).is_file():
        raise VideoError(f"{name}: no such file")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        reader.close()
        count, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (OSError, RuntimeError, StopIteration, ValueError):
        raise VideoError(f"{name}: not a video that ffmpeg can read") from None
    if count <= 0:
        raise VideoError(f"{name}: the video has no frames")
    fps = float(meta.get("fps") or 0) or 25.0
    return VideoInfo(fps=fps, size=tuple(meta["size"]), frames=int(count), audio=has_audio(path))


def has_audio(path: str | os.PathLike) -> bool:
    """Whether ffmpeg lists an audio stream in the file (parsed from `ffmpeg -i` output)."""
    return any(" Audio: " in line for line in ffmpeg_streams(path))


def ffmpeg_streams(path: str | os.PathLike) -> list[str]:
    """The 'Stream #...' lines of `ffmpeg -i path` (ffmpeg's own description of the file)."""
    import imageio_ffmpeg

    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    return [line.strip() for line in proc.stderr.splitlines() if line.strip().startswith("Stream #")]


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames of a video as uint8 [H, W, 3], decoded one at a time."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    for raw in reader:
        yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def encode_with_audio(
    frames: list[Path],
    source: Path,
    out: Path,
    fps: float,
    comment: str,
    work: Path,
    signing: tuple | None = None,
    mark: FrameMarker | None = None,
) -> None:
    """Encode PNG frames (H.264 at video_mark.CRF, each frame marked by `mark` when given) and copy `source`'s audio
    stream in; the mp4 is written atomically (and signed first when `signing` = (credentials, chunks) is given, see
    swap_video)."""
    import imageio_ffmpeg

    from stylegan.io.native import atomic_write

    silent = work / "video-only.mp4"
    first = np.asarray(PIL.Image.open(frames[0]).convert("RGB"))
    params = ["-f", "mp4", "-crf", str(CRF)]
    writer = imageio_ffmpeg.write_frames(
        str(silent), (first.shape[1], first.shape[0]), fps=fps, macro_block_size=1, output_params=params
    )
    writer.send(None)
    for path in frames:
        rgb = np.ascontiguousarray(np.asarray(PIL.Image.open(path).convert("RGB")))  # [H, W, 3]
        writer.send(rgb if mark is None else mark(rgb))
    writer.close()
    if signing is None:
        atomic_write(out, lambda tmp: _mux(silent, source, tmp, comment))
        return
    from stylegan.forensics import c2pa

    muxed = work / "unsigned.mp4"
    _mux(silent, source, str(muxed), comment)
    definition = c2pa.manifest(signing[1], out.name, "video/mp4", c2pa.COMPOSITE)
    atomic_write(out, lambda tmp: c2pa.sign_copy(muxed, tmp, signing[0], definition))


def _mux(video: Path, source: Path, dest: str, comment: str) -> None:
    """ffmpeg: video from `video`, audio (if any) from `source`, copied; AAC if copying fails."""
    import imageio_ffmpeg

    base = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(video)]
    base += ["-i", str(source), "-map", "0:v:0", "-map", "1:a?", "-c:v", "copy"]
    tail = ["-metadata", f"comment={comment}", "-shortest", "-f", "mp4", dest]
    for audio in (["-c:a", "copy"], ["-c:a", "aac"]):
        proc = subprocess.run(base + audio + tail, capture_output=True, text=True)
        if proc.returncode == 0:
            return
    raise VideoError(f"ffmpeg could not write the video: {proc.stderr.strip().splitlines()[-1:] or '?'}")


# ----------------------------------------------------------------------------------------------------------------
# Latents frame to frame.


def refine_ws(G: nn.Module, target: torch.Tensor, ws: torch.Tensor, steps: int, lr: float, lpips) -> torch.Tensor:
    """`steps` Adam steps on ws [1, num_ws, w_dim] (W+) from the given start, minimising LPIPS + L2 between
    G.synthesis(ws) and target uint8 [C, R, R]; G's stored noise maps are used. Returns ws on the CPU."""
    device = next(G.parameters()).device
    goal = target.to(device).float()[None] / 127.5 - 1  # [1, C, R, R]
    latent = ws.detach().to(device).clone().requires_grad_(True)
    opt = torch.optim.Adam([latent], lr=lr)
    goal_feats = None
    for _ in range(steps):
        img = G.synthesis(latent, noise_mode="const", force_fp32=True)
        if goal_feats is None:
            with torch.no_grad():
                goal_feats = lpips.features(_rgb(goal))
        loss = lpips.distance_of_features(lpips.features(_rgb(img)), goal_feats)[0] + (img - goal).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return latent.detach().cpu()


def _rgb(img: torch.Tensor) -> torch.Tensor:
    return img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img


# ----------------------------------------------------------------------------------------------------------------
# The job.


@dataclass
class FrameReport:
    """What the progress callback receives after each frame: index (0-based), total, and whether it was reused
    from an earlier run, had no face, and where the mask's centre (x, y) was."""

    index: int
    total: int
    reused: bool
    face: bool
    centre: tuple[float, float]


def work_folder(out: str | os.PathLike) -> Path:
    """The folder next to the output where finished frames wait: `.<out name>.swap`."""
    out = Path(out)
    return out.parent / f".{out.name}.swap"


def swap_video(
    G: nn.Module,
    source_photo: np.ndarray,
    target: str | os.PathLike,
    out: str | os.PathLike,
    settings: S.SwapSettings | None = None,
    video: VideoSettings | None = None,
    *,
    job: dict | None = None,
    comment: str = "",
    signing: tuple | None = None,
    mark: FrameMarker | None = None,
    lpips=None,
    device=None,
    callback: Callable[[FrameReport], None] | None = None,
) -> list[FrameReport]:
    """Swap the source photo's face into every frame of the video `target`; write `out` (.mp4) with its audio.

    Args:
        G, source_photo, settings: as for swap.swap_faces.
        target: the video file.
        out: the .mp4 to write (atomically).
        video: VideoSettings (per-frame steps, smoothing).
        job: what identifies this job (file names, settings); a work folder holding another job is started over.
        comment: the provenance text stored as the mp4's comment.
        signing: (forensics.c2pa.SigningCredentials, metadata chunks) to embed signed C2PA content credentials
            (a composite: real video, generated face), or None. The mp4 appears only once signed.
        mark: the provenance mark for every frame (editing.video_mark; swap.SWAP_MARK_PSNR keeps the real parts
            within that PSNR of the target), or None; the comment's `stylegan:mark` should say mark.note(H, W).
        callback: called after every frame with its FrameReport (for a progress bar).

    Returns:
        One FrameReport per frame. Raises VideoError for unreadable videos or videos without frames,
        NoFaceError when the source has no face or no frame has one.
    """
    # Frames follow the target's projection frame to frame, so its (tuned) G draws them: render='target'.
    settings = replace(settings or S.SwapSettings(), render="target")
    video = video or VideoSettings()
    info = probe(target)
    layers = S.swap_layers(G, settings.layers)
    work = _open_work(work_folder(out), {**(job or {}), "settings": asdict(settings), "video": asdict(video)})
    if lpips is None:
        from stylegan.metrics.lpips import load_lpips

        lpips = load_lpips(device=device or next(G.parameters()).device)
    source_ws = _source_ws(G, source_photo, settings, work, lpips, device)
    track = _Track(G, settings, video, info, work, lpips, device)
    reports = []
    for index, frame in enumerate(read_frames(target)):
        reports.append(track.frame(index, frame, source_ws, layers))
        if callback is not None:
            callback(reports[-1])
    if not any(r.face for r in reports):
        raise S.NoFaceError(f"no face found in any frame of {Path(target).name}")
    pngs = [work / f"{i:06d}.png" for i in range(len(reports))]
    encode_with_audio(pngs, Path(target), Path(out), info.fps, comment, work, signing, mark)
    if not video.keep_frames:
        shutil.rmtree(work, ignore_errors=True)
    return reports


def _open_work(work: Path, job: dict) -> Path:
    """Create the work folder, or reuse it when it holds the same job (else empty it)."""
    text = json.dumps(job, sort_keys=True, default=str)
    stamp = work / "job.json"
    if work.exists() and (not stamp.is_file() or stamp.read_text() != text):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(text)
    return work


def _source_ws(G, source_photo, settings, work: Path, lpips, device) -> torch.Tensor:
    """The source's ws, projected once per job (kept in the work folder)."""
    path = work / "source-ws.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    aligned = S.find_face(source_photo, G.img_resolution, what="source")
    ws = S.project_face(G, aligned, settings, role="source", lpips=lpips, device=device).ws
    torch.save(ws, path)
    return ws


class _Track:
    """Per-frame state: the face filter, the previous ws, the target's (tuned) G."""

    def __init__(self, G, settings, video: VideoSettings, info: VideoInfo, work: Path, lpips, device):
        self.G0, self.settings, self.video, self.work = G, settings, video, work
        self.lpips, self.device = lpips, device
        self.filter = OneEuroFilter(info.fps, video.min_cutoff, video.beta)
        self.G: nn.Module | None = None
        self.ws: torch.Tensor | None = None
        self.total = info.frames

    def frame(self, index: int, frame: np.ndarray, source_ws: torch.Tensor, layers) -> FrameReport:
        png, state = self.work / f"{index:06d}.png", self.work / f"{index:06d}.npz"
        if png.is_file() and state.is_file():
            return self._restore(index, state)
        faces = detect_faces(frame)
        if not faces:
            PIL.Image.fromarray(frame).save(png)
            self._save(state, face=False, centre=(math.nan, math.nan))
            return FrameReport(index, self.total, False, False, (math.nan, math.nan))
        face = vector_face(self.filter(face_vector(faces[0])), faces[0].score)
        aligned = align_face(frame, face, resolution=self.G0.img_resolution)
        self._follow(aligned)
        out_face = S.synthesize_face(self.G, S.mix_ws(source_ws, self.ws, layers))
        image, mask = S.blend_face(frame, out_face, aligned, self.settings)
        PIL.Image.fromarray(image).save(png)
        centre = tuple(float(v) for v in S.B.mask_centre(mask))
        self._save(state, face=True, centre=centre)
        return FrameReport(index, self.total, False, True, centre)

    def _follow(self, aligned) -> None:
        """Project the first face (PTI by default); later ones: a few W+ steps from the previous ws, smoothed."""
        if self.G is None and not self._load_tuned():
            projected = S.project_face(
                self.G0, aligned, self.settings, role="target", lpips=self.lpips, device=self.device
            )
            self.G, self.ws = projected.G, projected.ws
            state = {name: t.detach().cpu() for name, t in self.G.state_dict().items()}  # noise maps included
            torch.save({"G": state, "ws": self.ws}, self.work / "target-G.pt")
            return
        target = S.model_input(aligned, self.G)
        fresh = refine_ws(self.G, target, self.ws, self.video.frame_steps, self.video.frame_lr, self.lpips)
        self.ws = torch.lerp(fresh, self.ws, self.video.latent_smoothing)

    def _load_tuned(self) -> bool:
        """The first frame's tuned G (and, if no frame state gave one, its ws) from an earlier run."""
        path = self.work / "target-G.pt"
        if not path.is_file():
            return False
        import copy

        saved = torch.load(path, weights_only=True)
        self.G = copy.deepcopy(self.G0).eval().requires_grad_(False)
        self.G.load_state_dict(saved["G"])
        self.ws = saved["ws"] if self.ws is None else self.ws
        return True

    def _save(self, path: Path, *, face: bool, centre) -> None:
        arrays = {"face": np.array(face), "centre": np.array(centre)}
        if self.ws is not None:
            arrays["ws"] = self.ws.numpy()
        if self.filter.x is not None:
            arrays.update(filter_x=self.filter.x, filter_dx=self.filter.dx)
        np.savez(path, **arrays)

    def _restore(self, index: int, path: Path) -> FrameReport:
        with np.load(path) as data:
            if "ws" in data:
                self.ws = torch.from_numpy(data["ws"].copy())
            if "filter_x" in data:
                self.filter.x, self.filter.dx = data["filter_x"].copy(), data["filter_dx"].copy()
            face, centre = bool(data["face"]), tuple(float(v) for v in data["centre"])
        return FrameReport(index, self.total, True, face, centre)

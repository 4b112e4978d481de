"""Inputs for the face swap tests and benchmark, made in code from the AT&T faces (AT&T Laboratories Cambridge).

- `att_photo`: one AT&T photo, uint8 [112, 92, 1].
- `composite`: an AT&T face on a larger colour background (a "photo with a background").
- `make_clip`: a short mp4 of a face moving across a background, with a sine-tone audio track.
- `swap_args`: the `stylegan swap` arguments every CLI test starts with.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import PIL.Image

ATT = Path("/work/shared/data/att-faces")


def swap_args(source, target, out, *extra: str) -> list[str]:
    """`swap --source S --target T --out O --network default` and `extra`, as CliRunner takes them."""
    return ["swap", "--source", str(source), "--target", str(target), "--out", str(out), "--network", "default", *extra]


def att_available() -> bool:
    return (ATT / "s1" / "1.pgm").is_file()


def att_photo(person: int, shot: int = 1) -> np.ndarray:
    """AT&T photo s<person>/<shot>.pgm as uint8 [112, 92, 1]."""
    return np.asarray(PIL.Image.open(ATT / f"s{person}" / f"{shot}.pgm").convert("L"))[:, :, None]


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 [H, W, 3]: a colour gradient with a little texture (so that a changed pixel would show)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    rgb = np.stack([60 + 150 * xs, 80 + 60 * ys, 200 - 140 * xs * ys], axis=-1)
    return np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)


def composite(
    face: np.ndarray, size: tuple[int, int] = (160, 160), at: tuple[int, int] | None = None, seed: int = 0
) -> np.ndarray:
    """The grey face uint8 [h, w, 1] pasted (as RGB) on a colour background of size (width, height)."""
    width, height = size
    canvas = background(height, width, seed)
    h, w = face.shape[:2]
    left, top = at if at is not None else ((width - w) // 2, (height - h) // 2)
    canvas[top : top + h, left : left + w] = face
    return canvas


def sine_wav(path: Path, seconds: float, rate: int = 16000, freq: float = 440.0) -> Path:
    """A mono 16-bit sine tone."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def clip_positions(frames: int, start: tuple[float, float], stop: tuple[float, float]) -> np.ndarray:
    """[frames, 2] integer (left, top) of the face: a straight line from start to stop, rounded."""
    t = np.linspace(0, 1, frames)[:, None]
    return np.rint(np.asarray(start) * (1 - t) + np.asarray(stop) * t).astype(int)


def make_clip(
    path: Path,
    *,
    person: int = 1,
    seconds: float = 3.0,
    fps: int = 10,
    size: int = 128,
    scale: float = 0.75,
    audio: bool = True,
) -> np.ndarray:
    """Write an mp4 of an AT&T face (scaled) moving left to right across a background; returns its positions
    [frames, 2] (left, top of the face in each frame)."""
    import imageio_ffmpeg

    face = PIL.Image.fromarray(att_photo(person)[:, :, 0])
    face = np.asarray(face.resize((round(92 * scale), round(112 * scale)), PIL.Image.Resampling.LANCZOS))[:, :, None]
    frames = round(seconds * fps)
    top = (size - face.shape[0]) // 2
    positions = clip_positions(frames, (2, top), (size - face.shape[1] - 2, top))
    wav = sine_wav(path.with_suffix(".wav"), seconds) if audio else None
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (size, size),
        fps=fps,
        macro_block_size=1,
        quality=9,
        audio_path=None if wav is None else str(wav),
        audio_codec=None if wav is None else "aac",
    )
    writer.send(None)
    for left, tp in positions:
        writer.send(np.ascontiguousarray(composite(face, (size, size), (int(left), int(tp)))))
    writer.close()
    return positions

"""Animations and videos for `stylegan detect`: what kind of file it is, a few frames spread over its length, and the
provenance text its container carries.

Videos (MP4/MOV, WebM/Matroska, AVI) are told apart by their first bytes, not their names. Their frames are decoded
with ffmpeg from the `video` extra (imageio-ffmpeg, as editing.video_swap reads video), one seek per sampled frame,
so a long video costs no more than a short one. An MP4's `comment` (where our writers put the provenance text,
metadata.comment_text) is read from its boxes here, without ffmpeg, so it is reported even without the extra;
other containers' tags come from ffmpeg's metadata dump. Animated GIF/PNG/WebP frames come from Pillow.
"""

from __future__ import annotations

import io
import re
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VIDEO_HINT = "frames not decoded: video needs the video extra (pip install stylegan[video])"
SAMPLES = 3  # frames checked per animation or video: at 0, 1/3 and 2/3 of its length
MEAN_SAMPLES = 12  # frames averaged for the mark when none of the SAMPLES has it (report._media_mark) ...
MEAN_PIXELS = 24 << 20  # ... or every frame, when all of them hold no more pixels than this (mean_indices)
MAX_MOOV = 64 << 20  # an MP4 metadata box larger than this is not read into memory
_PAIR = re.compile(r"; (?=[A-Za-z][\w:.-]*=)")  # the separator of metadata.comment_text, not a '; ' inside a value


@dataclass
class VideoInfo:
    """What ffmpeg says about a video's first video stream; frames: the exact count (None when not decoded)."""

    container: str
    size: tuple[int, int] | None = None
    fps: float | None = None
    duration_s: float | None = None
    codec: str | None = None
    frames: int | None = None
    rate: float | None = None  # frames per second, as counted (frames / duration)
    samples: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (frame index, uint8 [H, W, 3])


def spread(count: int, samples: int) -> list[int]:
    """The indices of `samples` frames spread evenly over `count` (from the first; fewer when count is smaller)."""
    return sorted({count * k // samples for k in range(samples)})


def mean_indices(count: int, size: tuple[int, int]) -> list[int]:
    """The frames whose mean is searched for the mark when the sampled ones do not read: every frame of an animation
    or video whose frames hold at most MEAN_PIXELS pixels in all (up to 1,536 frames of 128x128, 27 of 1280x720),
    else MEAN_SAMPLES spread over its length."""
    if count * size[0] * size[1] <= MEAN_PIXELS:
        return list(range(count))
    return spread(count, MEAN_SAMPLES)


def video_container(head: bytes) -> str | None:
    """'MP4' / 'MOV' (ISO BMFF), 'WebM' (Matroska or WebM), 'AVI' or None (not a video) from a file's first 12 bytes."""
    if head[4:8] == b"ftyp":
        return "MOV" if head[8:12] == b"qt  " else "MP4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    return None


def sniff(path: str | Path) -> str | None:
    """video_container of a file; ValueError (one line) when it cannot be opened."""
    try:
        with open(path, "rb") as f:
            return video_container(f.read(12))
    except OSError as err:
        raise ValueError((err.strerror or str(err)).lower()) from None


def parse_comment(text: str) -> dict[str, str]:
    """'key=value; key=value' (metadata.comment_text) -> {key: value}; {} when the text is not in that form."""
    pairs = [part.partition("=") for part in _PAIR.split(text.strip())]
    if not pairs or any(not sep or not key or " " in key for key, sep, _ in pairs):
        return {}
    return {key: value for key, _, value in pairs}


def ffmpeg_available() -> bool:
    """Whether the video extra's ffmpeg (imageio-ffmpeg) can be imported."""
    import importlib.util

    return importlib.util.find_spec("imageio_ffmpeg") is not None


# ----------------------------------------------------------------------------------------------------------------
# ISO BMFF (MP4, MOV): box layout and the udta comment, without ffmpeg.


def _top_boxes(f, length: int):
    """(type, payload offset, payload size) of each top-level box; ValueError when one runs past the end."""
    offset = 0
    while offset + 8 <= length:
        f.seek(offset)
        size, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:  # the last box runs to the end of the file
            size = length - offset
        name = kind.decode("latin-1")
        if size < header:
            raise ValueError(f"broken video (box '{name}' at byte {offset} has size {size})")
        if offset + size > length:
            raise ValueError(f"truncated video (box '{name}' runs {offset + size - length} bytes past the end)")
        yield name, offset + header, size - header
        offset += size


def _child(data: bytes, kind: bytes) -> bytes | None:
    """The payload of the first box `kind` directly inside `data` (a box payload), or None."""
    offset = 0
    while offset + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[offset : offset + 8])
        if size < 8:
            return None
        if name == kind:
            return data[offset + 8 : offset + size]
        offset += size
    return None


def bmff_comment(path: str | Path) -> str | None:
    """The text of moov/udta/meta/ilst/(c)cmt/data (what ffmpeg writes for `-metadata comment=...`), or None.

    Raises ValueError (one line) for a file whose boxes run past its end or that has no `moov` box: a truncated
    download or an unfinished recording, which no player can show.
    """
    path = Path(path)
    length = path.stat().st_size
    with open(path, "rb") as f:
        boxes = {name: (start, size) for name, start, size in reversed(list(_top_boxes(f, length)))}
        if "moov" not in boxes:
            raise ValueError("broken video (no 'moov' box: truncated or never finished)")
        start, size = boxes["moov"]
        if size > MAX_MOOV:
            return None
        f.seek(start)
        moov = f.read(size)
    meta = _child(_child(moov, b"udta") or b"", b"meta")
    ilst = _child(meta[4:], b"ilst") if meta else None  # `meta` is a full box: 4 bytes of version and flags first
    data = _child(_child(ilst or b"", b"\xa9cmt") or b"", b"data")
    return data[8:].decode("utf-8", "replace") if data and len(data) >= 8 else None  # 8: type and locale


# ----------------------------------------------------------------------------------------------------------------
# ffmpeg (the video extra).


def _ffmpeg(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs the video extra's ffmpeg binary (imageio-ffmpeg) with `args`; stdout as bytes, stderr as text.

    Raises ValueError (one line) when the binary is missing or ffmpeg runs longer than `timeout` seconds.
    """
    import imageio_ffmpeg

    try:
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", *args]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ValueError(f"ffmpeg took over {timeout:g} s to read it") from None
    except (OSError, RuntimeError) as err:  # imageio-ffmpeg without its binary
        raise ValueError(f"ffmpeg cannot run ({str(err).splitlines()[0]})") from None
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    return proc


def ffmpeg_tags(path: str | Path) -> dict[str, str]:
    """The container's global tags from `ffmpeg -f ffmetadata` (keys lower-case); {} when ffmpeg fails."""
    proc = _ffmpeg("-v", "error", "-i", str(path), "-f", "ffmetadata", "-")
    return _parse_ffmetadata(proc.stdout.decode("utf-8", "replace")) if proc.returncode == 0 else {}


def _parse_ffmetadata(text: str) -> dict[str, str]:
    """The global section of an FFMETADATA1 dump: key=value lines where '\\' escapes '=', ';', '#', '\\' and newline."""
    tags, raw = {}, re.sub(r"\\\n", "\x00", text)  # an escaped newline continues the value
    for line in raw.splitlines()[1:]:
        if line.startswith("["):  # [STREAM], [CHAPTER]: past the global tags
            break
        if not line or line.startswith((";", "#")):
            continue
        key, value = re.split(r"(?<!\\)=", line, maxsplit=1) if "=" in line else (line, "")
        tags[_unescape(key).lower()] = _unescape(value).replace("\x00", "\n")
    return tags


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def probe_video(path: str | Path, container: str, max_pixels: int, samples: int = SAMPLES) -> VideoInfo:
    """Size, rate, codec and exact frame count of a video, and `samples` frames spread over it (uint8 [H, W, 3]).

    Raises ValueError (one line) when ffmpeg cannot decode it or its frames are larger than `max_pixels`.
    """
    import imageio_ffmpeg

    info = _stream_facts(path, container)
    width, height = info.size
    if width * height > max_pixels:
        raise ValueError(f"{width}x{height} video frames are too large (over {max_pixels:,} pixels)")
    try:
        info.frames, info.duration_s = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (RuntimeError, OSError) as err:
        raise ValueError(f"broken video: ffmpeg cannot read it ({_cause(str(err))})") from None
    if info.frames <= 0:
        raise ValueError("the video has no frames")
    info.rate = info.frames / info.duration_s if info.duration_s > 0 else info.fps or 25.0
    info.samples = video_frames(path, spread(info.frames, samples), info.rate)
    if not info.samples:
        raise ValueError("broken video: ffmpeg decoded no frame")
    return info


def video_frames(path: str | Path, indices: list[int], rate: float) -> list[tuple[int, np.ndarray]]:
    """(index, uint8 [H, W, 3]) of the frames `indices` of a video shown at `rate` frames per second (one seek each,
    or for more than MEAN_SAMPLES frames one pass decoding the video in order; those that do not decode are left
    out)."""
    if len(indices) > MEAN_SAMPLES:
        wanted = set(indices)
        return [(index, pixels) for index, pixels in enumerate(_frames_in_order(path)) if index in wanted]
    frames = ((index, _frame_at(path, index / rate)) for index in indices)
    return [(index, pixels) for index, pixels in frames if pixels is not None]


def _frames_in_order(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video as uint8 [H, W, 3], decoded in one pass (as PPM images, each with its own header, so
    that a rotated video's frames come out as shown)."""
    proc = _ffmpeg("-v", "error", "-i", str(path), "-f", "image2pipe", "-c:v", "ppm", "-")
    data, frames, at = proc.stdout, [], 0
    header = re.compile(rb"P6\s+(\d+)\s+(\d+)\s+255\s")  # binary PPM: size, then maxval 255 and one blank
    while (found := header.match(data, at)) is not None:
        width, height = int(found[1]), int(found[2])
        end = found.end() + width * height * 3
        if end > len(data):
            break
        frames.append(np.frombuffer(data, np.uint8, width * height * 3, found.end()).reshape(height, width, 3))
        at = end
    return frames


def _stream_facts(path: str | Path, container: str) -> VideoInfo:
    """Codec, frame size and rate of the first video stream, from the stream line `ffmpeg -i` prints."""
    proc = _ffmpeg("-i", str(path))  # no output file: ffmpeg describes the input and stops
    lines = [line for line in proc.stderr.splitlines() if line.lstrip().startswith("Stream #") and " Video: " in line]
    if not lines:
        raise ValueError(f"broken video: ffmpeg finds no video stream in it ({_cause(proc.stderr)})")
    line = lines[0].split(" Video: ", 1)[1]
    size = re.search(r"\b([1-9]\d*)x([1-9]\d*)\b", line)  # not the codec tag's 0x... number
    if size is None:
        raise ValueError("broken video: ffmpeg gives no frame size")
    fps = re.search(r"([\d.]+) fps", line)
    codec = line.split()[0].rstrip(",")
    return VideoInfo(container, (int(size[1]), int(size[2])), float(fps[1]) if fps else None, codec=codec)


def _frame_at(path: str | Path, seconds: float) -> np.ndarray | None:
    """The frame shown at `seconds` (ffmpeg's accurate seek) as uint8 [H, W, 3]; None when none decodes."""
    import PIL.Image

    proc = _ffmpeg(
        "-v",
        "error",
        "-ss",
        f"{seconds:.6f}",
        "-i",
        str(path),
        "-frames:v",
        "1",
        "-f",
        "image2pipe",
        "-c:v",
        "ppm",
        "-",
    )
    if proc.returncode != 0 or not proc.stdout:
        return None
    with PIL.Image.open(io.BytesIO(proc.stdout)) as img:
        return np.asarray(img.convert("RGB"))


def _cause(stderr: str) -> str:
    """ffmpeg's first '[demuxer @ ...] why' line (the cause), else the last line of its message."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    causes = [re.sub(r"^\[[^\]]*\]\s*", "", line) for line in lines if re.match(r"^\[\S+ @ ", line)]
    return causes[0] if causes else lines[-1] if lines else "no message"

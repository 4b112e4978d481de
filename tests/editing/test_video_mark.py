"""The provenance mark in the frames of the MP4s the toolkit writes, through a real H.264 encode and a real detect.

Oracles: the payload is what the command was asked for (model name hashed here with hashlib, the first seed), the
mark is looked for in every decoded frame by forensics.mark.detect, and `stylegan detect` must report the same.
Frames below 128 px, GIF frames and --no-mark stay unmarked, and the metadata says which.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("imageio_ffmpeg", reason="the video extra (imageio-ffmpeg) is not installed")

from stylegan.cli.main import main  # noqa: E402
from stylegan.editing.video_swap import read_frames  # noqa: E402
from stylegan.forensics import mark  # noqa: E402

FACES = f"{int.from_bytes(hashlib.sha256(b'faces').digest()[:2], 'big') >> 4:03x}"  # 12-bit prefix of sha256('faces')


def run(*args) -> str:
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def detect_json(path) -> dict:
    [line] = run("detect", "--json", path).strip().splitlines()
    return json.loads(line)


def interpolate(out, *extra) -> None:
    run("figure", "interpolate", "--network", "faces", "--seeds", "3,4", "--frames", "3", "--out", out, *extra)


def frame_marks(path) -> list[mark.MarkResult]:
    return [mark.detect(pixels) for pixels in read_frames(path)]


def test_interpolate_mp4_frames_all_carry_the_mark(tmp_path):
    out = tmp_path / "walk.mp4"
    interpolate(out, "--zoom", "4")
    found = frame_marks(out)
    assert len(found) == 6 and all(r.found for r in found)
    assert {(r.payload.tool, f"{r.payload.model:03x}", r.payload.seed) for r in found} == {(5, FACES, 3)}
    report = detect_json(out)
    assert report["size"] == [256, 256]
    assert report["mark"]["found"] and report["mark"]["found_in"] == 3
    assert (report["mark"]["model"], report["mark"]["seed"]) == (FACES, 3)
    assert report["metadata"]["mark"] == f"v1 model={FACES} seed=3 (every frame)"


def test_no_mark_leaves_mp4_frames_unmarked_and_says_so(tmp_path):
    out = tmp_path / "walk.mp4"
    interpolate(out, "--zoom", "4", "--no-mark")
    assert not any(r.found for r in frame_marks(out))
    report = detect_json(out)
    assert report["metadata"]["mark"] == "off (--no-mark)" and not report["mark"]["found"]
    assert report["mark"]["reason"] == "not embedded in MP4 frames, as its metadata says"


def test_frames_below_128_px_stay_unmarked_and_metadata_says_so(tmp_path):
    out = tmp_path / "small.mp4"
    interpolate(out, "--zoom", "1")  # the faces model's own 64² frames
    report = detect_json(out)
    assert report["size"] == [64, 64] and not report["mark"]["found"]
    assert report["metadata"]["mark"] == "none (video frames smaller than 128 px)"


def test_gif_frames_stay_unmarked_and_metadata_says_why(tmp_path):
    out = tmp_path / "walk.gif"
    interpolate(out, "--zoom", "4")
    report = detect_json(out)
    assert report["kind"] == "animation" and not report["mark"]["found"]
    assert report["metadata"]["mark"] == "none (video frames: a GIF's palette would wipe the mark out)"


def test_edit_video_carries_the_first_seed(tmp_path):
    out = tmp_path / "edit.mp4"
    run("edit", "--network", "faces", "--seeds", "5", "--zoom", "4", "--frames", "3", "--out", out)
    found = frame_marks(out)
    assert found and all(r.found and r.payload.seed == 5 and f"{r.payload.model:03x}" == FACES for r in found)


def test_frame_marker_keeps_the_psnr_and_leaves_small_frames_alone():
    from stylegan.editing.video_mark import FrameMarker, frame_payload

    rng = np.random.default_rng(0)
    frame = rng.integers(20, 236, (160, 192, 3), dtype=np.uint8)
    marked = FrameMarker(frame_payload("faces", 9))(frame)
    mse = np.mean((marked.astype(float) - frame) ** 2)
    assert 40.0 <= 10 * np.log10(255**2 / mse) <= 41.0
    assert np.array_equal(marked[..., 0].astype(int) - frame[..., 0], marked[..., 2].astype(int) - frame[..., 2])
    small = rng.integers(0, 255, (127, 300, 3), dtype=np.uint8)
    assert FrameMarker(frame_payload("faces", 9))(small) is small


def test_write_video_without_metadata_marks_frames_only_when_asked(tmp_path):
    from stylegan.editing.figures import write_video
    from stylegan.editing.video_mark import FrameMarker, frame_payload

    frames = [torch.full((3, 128, 128), 90 + 10 * k, dtype=torch.uint8) for k in range(3)]
    written = write_video(frames, tmp_path / "a.mp4", mark=FrameMarker(frame_payload(None, 12)))
    assert written.frames == 3 and written.metadata is None
    assert all(r.found and r.payload.seed == 12 and r.payload.model == 0 for r in frame_marks(tmp_path / "a.mp4"))

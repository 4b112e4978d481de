"""`stylegan detect` on videos and animations, with files written by the real writers.

`stylegan figure interpolate` writes a C2PA-signed MP4 and GIF under a throwaway test CA (tests/c2pa_pki.py); detect
must call the signer trusted under that CA, untrusted under another, and the MP4 invalid once a byte of its frames
is changed; the metadata must be what the writer put in the container's comment, the frame count what the writer
printed, and the mark "not embedded" as the writer's metadata says. A video whose frames we marked ourselves must
give back the payload from the one marked frame among those sampled. Truncated or undecodable MP4s get one line and
the other files are still reported; without the video extra, C2PA and the comment are still reported.
"""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("imageio_ffmpeg", reason="the video extra (imageio-ffmpeg) is not installed")
pytest.importorskip("c2pa", reason="the c2pa extra (c2pa-python) is not installed")

from c2pa_pki import make_pki  # noqa: E402
from stylegan.cli.main import main  # noqa: E402
from stylegan.forensics import media  # noqa: E402

SIGNER = "walker signer"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """{'mp4', 'gif': paths, 'frames': {suffix: count the writer printed}, 'pki', 'other': an unrelated CA}."""
    folder = tmp_path_factory.mktemp("videos")
    pki, other = make_pki(folder, "walker"), make_pki(folder, "stranger")
    found = {"pki": pki, "other": other, "frames": {}}
    for suffix in ("mp4", "gif"):
        out = folder / f"walk.{suffix}"
        res = run(
            "figure",
            "interpolate",
            "--zoom",
            "1",
            "--seeds",
            "0,1",
            "--frames",
            "3",
            "--out",
            out,
            "--sign-cert",
            pki.cert,
            "--sign-key",
            pki.key,
        )
        assert res.exit_code == 0 and "(C2PA-signed)" in res.output, res.output
        found[suffix] = out
        found["frames"][suffix] = int(re.search(r"\((\d+) frames\)", res.output)[1])
    return found


def detect_json(*args) -> list[dict]:
    res = run("detect", "--json", *args)
    return [json.loads(line) for line in res.output.strip().splitlines()]


def test_signed_mp4_is_trusted_under_its_ca_and_untrusted_under_another(made):
    [trusted] = detect_json(made["mp4"], "--trust-anchors", made["pki"].ca)
    [untrusted] = detect_json(made["mp4"], "--trust-anchors", made["other"].ca)
    count = made["frames"]["mp4"]
    assert trusted["kind"] == "video" and trusted["format"] == "MP4" and trusted["frames"] == count == 6
    assert trusted["size"] == [32, 32] and trusted["video"]["codec"] == "h264" and trusted["video"]["fps"] == 24
    assert trusted["frames_checked"] == [0, 2, 4]  # 0, 1/3 and 2/3 of the way through
    assert trusted["c2pa"]["status"] == "valid" and trusted["c2pa"]["trusted"]
    assert trusted["c2pa"]["verdict"] == f"valid, trusted (signer: CN={SIGNER})"
    assert trusted["c2pa"]["generation"]["model"] == "default"
    assert untrusted["c2pa"]["status"] == "valid" and not untrusted["c2pa"]["trusted"]
    assert untrusted["c2pa"]["verdict"].startswith(f"valid, untrusted signer (CN={SIGNER}; not issued under")
    meta = trusted["metadata"]  # from the mp4's comment
    assert meta["ai_generated"] and meta["model"] == "default" and meta["software"].startswith("stylegan")
    assert meta["mark"] == "none (video frames smaller than 128 px)"  # the default model: 32² frames
    assert (
        not trusted["mark"]["found"] and trusted["mark"]["reason"] == "not embedded in MP4 frames, as its metadata says"
    )
    assert trusted["detector"]["frames"] == 3 and set(trusted["detector"]["p_generated"]) == {"spectral", "cnn"}


def test_text_line_and_one_c2pa_read_per_file(made, monkeypatch):
    from stylegan.forensics import c2pa

    calls = []
    real_read = c2pa.read
    monkeypatch.setattr(c2pa, "read", lambda path, *a, **k: calls.append(path) or real_read(path, *a, **k))
    res = run("detect", made["mp4"], made["gif"], "--trust-anchors", made["pki"].ca)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 0 and len(lines) == 2, res.output
    assert len(calls) == 2  # the trust anchors go with the first read: no second pass
    assert f"C2PA: valid, trusted (signer: CN={SIGNER})" in lines[0]
    assert "no mark (not embedded in MP4 frames" in lines[0] and "model=default" in lines[0]
    assert "frames: 6 (MP4 video, 24 fps" in lines[0] and "checked frame(s) 0, 2, 4" in lines[0]
    assert "(mean of 3 frames)" in lines[0]


def test_animated_gif_reports_frames_comment_and_c2pa(made):
    [gif] = detect_json(made["gif"], "--trust-anchors", made["pki"].ca)
    count = made["frames"]["gif"]
    assert gif["kind"] == "animation" and gif["format"] == "GIF" and gif["frames"] == count
    assert gif["frames_checked"] == sorted({0, count // 3, 2 * count // 3})
    assert gif["metadata"]["model"] == "default" and gif["metadata"]["ai_generated"]
    assert gif["c2pa"]["trusted"] and gif["mark"]["reason"] == "not embedded in GIF frames, as its metadata says"
    res = run("detect", made["gif"])
    assert "animated GIF" in res.output and "valid, untrusted signer" in res.output


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def test_tampered_mp4_is_invalid_and_still_reported(made, tmp_path):
    data = made["mp4"].read_bytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(flip(data, data.index(b"mdat") + 40))  # inside the first frame's data, not the manifest
    [report] = detect_json(bad, "--trust-anchors", made["pki"].ca)
    assert report["c2pa"]["status"] == "invalid" and "assertion.bmffHash.mismatch" in report["c2pa"]["failures"]
    assert report["c2pa"]["verdict"].startswith("invalid: assertion.bmffHash.mismatch")
    assert report["metadata"]["model"] == "default" and report["frames"] == 6


def test_truncated_and_undecodable_files_get_one_line_each(made, tmp_path):
    data = made["mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    empty_moov = tmp_path / "nothing.mp4"  # well-formed boxes, nothing ffmpeg can decode
    empty_moov.write_bytes(b"\0\0\0\x10ftypisom\0\0\x02\0" + b"\0\0\0\x10moov" + b"\0" * 8)
    (tmp_path / "notes.mp4").write_text("not a video")
    files = [cut, made["mp4"], empty_moov, tmp_path / "notes.mp4", made["gif"], tmp_path / "gone.mp4"]
    res = run("detect", *files)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == len(files), res.output
    assert re.fullmatch(r".*cut\.mp4: error: truncated video \(box '\w+' runs \d+ bytes past the end\)", lines[0])
    assert "C2PA: valid" in lines[1] and "C2PA: valid" in lines[4]
    assert "error: broken video: ffmpeg" in lines[2]
    assert "error: not an image or video" in lines[3] and "error: no such file" in lines[5]


def test_without_the_video_extra_c2pa_and_comment_are_still_reported(made, tmp_path, monkeypatch):
    monkeypatch.setattr(media, "ffmpeg_available", lambda: False)
    [report] = detect_json(made["mp4"], "--trust-anchors", made["pki"].ca)
    assert report["c2pa"]["trusted"] and report["metadata"]["model"] == "default"
    assert report["frames"] is None and report["size"] is None and report["note"] == media.VIDEO_HINT
    assert report["detector"] == {"skipped": media.VIDEO_HINT} and not report["mark"]["found"]
    page = tmp_path / "report.html"
    res = run("detect", made["mp4"], "--report", page)
    assert res.exit_code == 0 and "pip install stylegan[video]" in res.output.splitlines()[0], res.output
    assert "data:image/png" not in page.read_text()


def test_report_page_shows_a_video_frame(made, tmp_path):
    page = tmp_path / "report.html"
    res = run("detect", made["mp4"], made["gif"], "--report", page)
    assert res.exit_code == 0, res.output
    assert page.read_text().count("data:image/png;base64,") == 2 * 3  # picture, spectrum, profile per file


def _frames_with_one_marked(count: int, marked: int, seed: int) -> list[torch.Tensor]:
    """`count` textured 256 x 256 RGB frames, frame `marked` carrying the provenance mark with `seed`."""
    from stylegan.forensics import mark as M

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:256, 0:256] / 256
    frames = []
    for k in range(count):
        wave = 128 + 100 * np.sin(6 * xx + 0.3 * k) * np.cos(4 * yy)
        img = np.stack([wave, 60 + 150 * xx, 60 + 150 * yy], -1) + rng.integers(-20, 20, (256, 256, 3))
        img = np.clip(img, 0, 255).astype(np.uint8)
        if k == marked:
            img = M.embed(img, M.Payload(model=0x123, seed=seed))
        frames.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
    return frames


def test_mark_in_a_sampled_video_frame_is_found(tmp_path):
    from stylegan.editing.figures import write_video

    out = tmp_path / "marked.mp4"
    write_video(_frames_with_one_marked(6, marked=2, seed=77), out, fps=24)  # H.264: lossy, as a real upload
    [report] = detect_json(out)
    mark = report["mark"]
    assert mark["found"] and mark["seed"] == 77 and mark["model"] == "123"
    assert mark["frame"] == 2 and mark["found_in"] == 1 and report["frames_checked"] == [0, 2, 4]
    assert "(frame 2; in 1 of 3 sampled frames)" in run("detect", out).output


def test_sampled_frames_are_the_frames_a_sequential_decode_gives(made):
    from stylegan.editing.video_swap import read_frames

    every = list(read_frames(made["mp4"]))
    info = media.probe_video(made["mp4"], "MP4", 10**8)
    assert [i for i, _ in info.samples] == [0, 2, 4]
    for index, pixels in info.samples:
        np.testing.assert_array_equal(pixels, every[index])


def test_frames_fetched_later_are_the_frames_a_sequential_decode_gives(made):
    """The frames report._media_mark fetches for the mean of media.MEAN_SAMPLES (one seek each) are the right ones."""
    from stylegan.editing.video_swap import read_frames
    from stylegan.forensics.report import open_media

    every = list(read_frames(made["mp4"]))
    found = open_media(made["mp4"])
    fetched = found.more([1, 3, 5])
    assert [i for i, _ in fetched] == [1, 3, 5]
    for index, pixels in fetched:
        np.testing.assert_array_equal(pixels, every[index])


def test_many_frames_fetched_in_one_pass_are_the_frames_a_sequential_decode_gives(made, monkeypatch):
    """More than media.MEAN_SAMPLES frames are decoded in one pass (PPM stream) instead of one seek each."""
    from stylegan.editing.video_swap import read_frames
    from stylegan.forensics.report import open_media

    every = list(read_frames(made["mp4"]))
    found = open_media(made["mp4"])
    monkeypatch.setattr(media, "MEAN_SAMPLES", 2)
    monkeypatch.setattr(media, "_frame_at", None)  # no seeking
    fetched = found.more([1, 3, 4, 5])
    assert [i for i, _ in fetched] == [1, 3, 4, 5]
    for index, pixels in fetched:
        np.testing.assert_array_equal(pixels, every[index])


def test_webm_comment_and_frames(made, tmp_path):
    import imageio_ffmpeg

    out = tmp_path / "walk.webm"
    comment = "Software=stylegan 0.1; stylegan:model=default; stylegan:seed=5"
    proc = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(made["mp4"]),
            "-c:v",
            "libvpx-vp9",
            "-metadata",
            f"comment={comment}",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"this ffmpeg writes no VP9 WebM: {proc.stderr.strip()[-200:]}")
    [report] = detect_json(out)
    assert report["kind"] == "video" and report["format"] == "WebM" and report["frames"] == 6
    assert report["metadata"]["model"] == "default" and report["metadata"]["seed"] == "5"
    assert report["c2pa"]["status"] == "none" and report["frames_checked"] == [0, 2, 4]


@pytest.mark.parametrize(
    "text, pairs",
    [
        ("a=1; b:c=two words; d=x=y", {"a": "1", "b:c": "two words", "d": "x=y"}),
        (
            "Description=made by a model; not a photo; seed=3",
            {"Description": "made by a model; not a photo", "seed": "3"},
        ),
        ("just a sentence", {}),
        ("", {}),
    ],
)
def test_parse_comment(text, pairs):
    assert media.parse_comment(text) == pairs


def test_parse_ffmetadata_unescapes_and_stops_at_sections():
    dump = ";FFMETADATA1\nencoder=Lavf\ncomment=a\\=1\\; b\\=2\\\nline two\nTitle=x\\#y\n[STREAM]\ncomment=stream\n"
    assert media._parse_ffmetadata(dump) == {"encoder": "Lavf", "comment": "a=1; b=2\nline two", "title": "x#y"}


def test_video_container_by_first_bytes():
    assert media.video_container(b"\0\0\0\x18ftypisom") == "MP4"
    assert media.video_container(b"\0\0\0\x14ftypqt  ") == "MOV"
    assert media.video_container(b"\x1a\x45\xdf\xa3\x01\0\0\0") == "WebM"
    assert media.video_container(b"RIFF\0\0\0\0AVI ") == "AVI"
    assert media.video_container(b"\x89PNG\r\n\x1a\n\0\0\0\r") is None
    assert media.video_container(b"GIF89a") is None

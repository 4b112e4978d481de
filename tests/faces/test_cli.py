"""`stylegan align` and `stylegan dataset --transform align-face`."""

import io
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner
from composites import FIXTURE

from stylegan.cli.main import main
from stylegan.data import make_dataset


@pytest.fixture()
def photos(tmp_path):
    """Two AT&T photos, a noise image and a text file posing as an image."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("s1/1", "s2/3"):
        PIL.Image.open(FIXTURE / f"{name}.pgm").save(folder / f"{name.replace('/', '_')}.png")
    noise = np.random.default_rng(0).integers(0, 256, (80, 80), dtype=np.uint8)
    PIL.Image.fromarray(noise).save(folder / "noise.png")
    (folder / "broken.jpg").write_text("hello")
    return folder


def test_align_writes_faces_and_reports_the_rest(photos, tmp_path):
    dest = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["align", str(photos), "--dest", str(dest), "--resolution", "64", "--detector", "hog"]
    )
    assert result.exit_code == 1  # not every photo gave a face
    lines = result.output.splitlines()
    assert any(line.endswith("noise.png: skipped: no face found") for line in lines)
    assert any("broken.jpg: skipped: not an image" in line for line in lines)
    assert lines[-1] == "aligned 2 face(s) from 4 photo(s); 2 photo(s) skipped"
    out = PIL.Image.open(dest / "s1_1.png")
    assert out.size == (64, 64) and out.mode == "L"
    assert out.text.get("Software", "").startswith("stylegan") and "DigitalSourceType" not in str(out.text)
    assert not any("mark" in key for key in out.text)  # a real photo: no provenance mark, no AI declaration


def test_align_does_not_overwrite_without_force(photos, tmp_path):
    dest = tmp_path / "out"
    args = ["align", str(photos / "s1_1.png"), "--dest", str(dest), "--resolution", "32"]
    assert CliRunner().invoke(main, args).exit_code == 0
    before = (dest / "s1_1.png").read_bytes()
    again = CliRunner().invoke(main, [*args[:-1], "64"])
    assert again.exit_code == 1 and "already exists; pass --force" in again.output
    assert (dest / "s1_1.png").read_bytes() == before
    forced = CliRunner().invoke(main, [*args[:-1], "64", "--force"])
    assert forced.exit_code == 0 and PIL.Image.open(dest / "s1_1.png").size == (64, 64)


def test_align_refuses_a_bad_resolution_before_work(photos, tmp_path):
    result = CliRunner().invoke(main, ["align", str(photos), "--dest", str(tmp_path / "o"), "--resolution", "100"])
    assert result.exit_code != 0 and "power of two" in result.output
    assert not (tmp_path / "o").exists()


def test_dataset_align_face_keeps_grey_and_skips_faceless(photos, tmp_path):
    dest = tmp_path / "faces.zip"
    report = make_dataset(photos, dest, resolution=32, transform="align-face")
    assert report.num_images == 2 and report.channels == 1
    assert {name for name, _ in report.skipped} == {"noise.png", "broken.jpg"}
    assert "noise.png (no face found)" in report.summary()
    with zipfile.ZipFile(dest) as z:
        img = PIL.Image.open(io.BytesIO(z.read("00000/img00000001.png")))
    assert img.size == (32, 32) and img.mode == "L"


def test_dataset_cli_offers_align_face(photos, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "dataset",
            "--source",
            str(photos),
            "--dest",
            str(tmp_path / "d.zip"),
            "--resolution",
            "16",
            "--transform",
            "align-face",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 2 images of 16x16x1" in result.output and "skipped 2 file(s)" in result.output


@pytest.mark.parametrize("command", ["align", "dataset"])
def test_missing_extra_stops_before_any_work(photos, tmp_path, monkeypatch, command):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "face_recognition_models" else real(name, *a)
    )
    dest = tmp_path / ("o" if command == "align" else "o.zip")
    args = ["align", str(photos), "--dest", str(dest)]
    if command == "dataset":
        args = [
            "dataset",
            "--source",
            str(photos),
            "--dest",
            str(dest),
            "--resolution",
            "16",
            "--transform",
            "align-face",
        ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1].endswith('pip install "stylegan[faces]"')
    assert not dest.exists()

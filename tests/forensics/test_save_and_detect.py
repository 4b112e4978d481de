"""save_png writes the mark and the metadata; `stylegan generate` tags its images; `stylegan detect` reports one line
per file and goes on past bad files."""

import json

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main
from stylegan.forensics import mark as M
from stylegan.images import save_png


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def photo(size: int = 256) -> torch.Tensor:
    """A smooth RGB test card [3, H, W]: gradients and discs (no random texture)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    r = 128 + 100 * np.sin(6 * xx) * np.cos(4 * yy)
    g = 255 * ((xx - 0.5) ** 2 + (yy - 0.4) ** 2 < 0.08)
    b = 60 + 150 * yy
    return torch.from_numpy(np.clip(np.stack([r, g * 0.7 + 40, b]), 0, 255).astype(np.uint8))


def test_save_png_marks_and_tags(tmp_path):
    img = photo()
    path = save_png(img, tmp_path / "a.png", metadata={"model": "ffhq", "seed": 77, "truncation_psi": 0.7})
    with Image.open(path) as f:
        text, pixels = dict(f.text), np.asarray(f)
    assert text["stylegan:seed"] == "77" and text["stylegan:model"] == "ffhq"
    assert "trainedAlgorithmicMedia" in text["DigitalSourceType"] and text["Software"].startswith("stylegan")
    found = M.detect(pixels)
    assert found.found and found.payload == M.Payload(model=M.model_hash_prefix("ffhq"), seed=77)


def test_fainter_mark_and_extra_chunks(tmp_path):
    img = photo()
    path = save_png(img, tmp_path / "a.png", metadata={"seed": 5}, mark_psnr=46.0, extra={"operation": "face swap"})
    with Image.open(path) as f:
        text, pixels = dict(f.text), np.asarray(f)
    assert text["stylegan:operation"] == "face swap" and text["stylegan:seed"] == "5"
    assert M.psnr_db(pixels, img.permute(1, 2, 0).numpy()) >= 45.5  # the strength asked for, measured independently
    assert M.detect(pixels).found


def test_no_mark_keeps_pixels_and_metadata(tmp_path):
    img = photo()
    path = save_png(img, tmp_path / "b.png", mark=False, metadata={"seed": 1})
    with Image.open(path) as f:
        assert np.array_equal(np.asarray(f), img.permute(1, 2, 0).numpy())
        assert f.text["stylegan:mark"].startswith("off") and "DigitalSourceType" in f.text


def test_generate_tags_each_seed(tmp_path):
    res = run("generate", "--seeds", "3-4", "--outdir", tmp_path, "--no-mark")
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "seed0004.png") as f:
        assert f.text["stylegan:seed"] == "4" and f.text["stylegan:mark"].startswith("off")
    res = run("generate", "--seeds", "5", "--outdir", tmp_path)
    with Image.open(tmp_path / "seed0005.png") as f:  # the packaged model makes 32 x 32 images: too small to mark
        assert f.text["stylegan:mark"].startswith("none (smaller than")


def test_detect_one_line_per_file_and_goes_on(tmp_path):
    save_png(photo(), tmp_path / "marked.png", metadata={"seed": 9})
    save_png(photo(), tmp_path / "plain.png", mark=False)
    (tmp_path / "text.png").write_text("not an image")
    data = (tmp_path / "marked.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    files = [tmp_path / n for n in ("text.png", "marked.png", "cut.png", "plain.png", "missing.png")]
    res = run("detect", *files)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 5
    assert "error" in lines[0] and "error" in lines[2] and "error" in lines[4]
    assert "mark found" in lines[1] and "seed 9" in lines[1]
    assert "no mark" in lines[3] and "AI-generated" in lines[3]
    res = run("detect", "--json", tmp_path / "marked.png")
    report = json.loads(res.output)
    assert res.exit_code == 0 and report["mark"]["found"] and report["mark"]["seed"] == 9


def test_gif_comment_is_added_without_touching_frames(tmp_path):
    from stylegan.forensics.metadata import add_gif_comment, comment_text, generation_metadata

    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (0, 128, 255)]
    path = tmp_path / "walk.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)
    add_gif_comment(path, comment_text(generation_metadata(seed=3)) * 3)  # longer than one 255-byte sub-block
    with Image.open(path) as f:
        assert f.n_frames == 3
        f.seek(2)
        assert np.asarray(f.convert("L")).max() == 255
    with Image.open(path) as f:
        assert b"trainedAlgorithmicMedia" in f.info.get("comment", b"")

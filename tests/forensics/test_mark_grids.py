"""The provenance mark in figures and grids, written by the real CLI code path (`stylegan mix`, `stylegan generate
--grid`) and read back from the PNG file.

Oracles: the payload expected is computed here from its definition (the model name's hash prefix, seed 0: a figure
has no single seed); attacks are done by Pillow. Host photos for the large-cell grid: AT&T faces (AT&T
Laboratories Cambridge).
"""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main
from stylegan.forensics import mark as M

FACES = Path("/work/shared/data/att-faces")
if not FACES.exists():
    FACES = Path(__file__).parents[1] / "fixtures" / "att-faces"


def payload_of(model: str) -> M.Payload:
    return M.Payload(model=M.model_hash_prefix(model), seed=0)


def jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf))


def half(x: np.ndarray) -> np.ndarray:
    img = Image.fromarray(x)
    return np.asarray(img.resize((img.width // 2, img.height // 2), Image.BICUBIC))


def run_cli(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


@pytest.mark.parametrize("zoom", ["1", "auto"])  # auto: 2x for the 64² model
def test_faces_mix_figure_found_clean_and_after_jpeg(tmp_path, zoom):
    out = tmp_path / "mix.png"
    rows, cols = "300,301,302,303,304", "350,351,352,353"
    run_cli(["mix", "--network", "faces", "--rows", rows, "--cols", cols, "--zoom", zoom, "--out", str(out)])
    x = read(out)
    assert x.shape == ((394, 328) if zoom == "1" else (788, 656))
    for attacked in (x, jpeg(x, 75)):
        found = M.detect(attacked)
        assert found.found and found.payload == payload_of("faces"), found


@pytest.mark.xfail(strict=True, reason="known limit: grids' own cell structure hides the mark, worst after a resize")
def test_grid_of_large_cells_found_after_jpeg_and_half_size(tmp_path):
    """A 2 x 2 grid of 128 px cells with the figures' white gaps, as a 128 px model's grid would be."""
    from stylegan.editing.figures import PAD
    from stylegan.images import save_png, tile

    files = sorted(FACES.glob("s*/*.pgm"))[:4]
    if len(files) < 4:
        pytest.skip("AT&T faces not found")
    cells = [np.asarray(Image.open(f).resize((128, 128), Image.BICUBIC)) for f in files]
    grid = tile(torch.from_numpy(np.stack(cells))[:, None], pad=PAD)
    out = save_png(grid, tmp_path / "grid.png", metadata={"model": "big.pkl"})
    x = read(out)
    for attacked in (x, jpeg(x, 75), half(x)):
        found = M.detect(attacked)
        assert found.found and found.payload == payload_of("big.pkl"), found


def rotate(x: np.ndarray, degrees: float) -> np.ndarray:
    return np.asarray(Image.fromarray(x).rotate(degrees, resample=Image.BICUBIC))


def test_default_mix_figure_found_at_the_default_zoom(tmp_path):
    """--zoom auto writes the 32² model's figure 4x larger (cells of 128 px): the mark is found, also after JPEG
    and after a 5° rotation (the lattice search tries the known periods at every angle, so the cells' own pitch
    does not hide it)."""
    out = tmp_path / "mix.png"
    run_cli(["mix", "--network", "default", "--out", str(out)])
    x = read(out)
    assert x.shape == (4 * 202, 4 * 168)
    for attacked in (x, jpeg(x, 75), rotate(x, 5)):
        found = M.detect(attacked)
        assert found.found and found.payload == payload_of("default"), found


def webp(x: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "WEBP")  # Pillow's default quality, 80
    return np.asarray(Image.open(buf).convert("L"))


def contrast(x: np.ndarray, factor: float) -> np.ndarray:
    """Contrast around the image's mean, clipped to 0..255: near-black backgrounds go to 0 when it is raised."""
    mean = x.mean()
    return np.clip((x.astype(np.float64) - mean) * factor + mean, 0, 255).astype(np.uint8)


def noise(x: np.ndarray, sigma: float = 0.02) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.clip(x + rng.normal(0, sigma * 255, x.shape), 0, 255).astype(np.uint8)


LAUNDERING = {"contrast+20%": lambda x: contrast(x, 1.2), "webp": webp, "noise0.02": noise}


@pytest.mark.parametrize("attack", list(LAUNDERING))
def test_default_mix_figure_survives_laundering(tmp_path, attack):
    """The 32² model's default figure (--zoom auto: 672 x 808, clothes on black) after the attacks that used to
    wipe the mark out of it: raised contrast clips the black background (and the mark in it) to 0."""
    out = tmp_path / "mix.png"
    run_cli(
        [
            "mix",
            "--network",
            "default",
            "--rows",
            "7000,7001,7002,7003,7004",
            "--cols",
            "7050,7051,7052,7053",
            "--out",
            str(out),
        ]
    )
    x = read(out)
    assert x.shape == (4 * 202, 4 * 168)
    assert np.mean(contrast(x, 1.2) == 0) > 0.4  # most of the figure is clipped to black by the attack
    found = M.detect(LAUNDERING[attack](x))
    assert found.found and found.payload == payload_of("default"), found


def test_default_generate_grid_found_at_the_default_zoom(tmp_path):
    """`generate --grid` of 16 seeds of the 32² model (--zoom auto: 536 x 536), clean and after contrast +20 %,
    WebP and noise."""
    run_cli(["generate", "--network", "default", "--seeds", "1000-1015", "--grid", "--outdir", str(tmp_path)])
    x = read(tmp_path / "grid.png")
    assert x.shape == (536, 536)
    for attacked in (x, *(attack(x) for attack in LAUNDERING.values())):
        found = M.detect(attacked)
        assert found.found and found.payload == payload_of("default"), found


@pytest.mark.xfail(strict=True, reason="known limit: 32 px cells leave too little room for the mark at 40 dB")
def test_default_mix_figure_found_unzoomed(tmp_path):
    out = tmp_path / "mix.png"
    run_cli(["mix", "--network", "default", "--zoom", "1", "--out", str(out)])
    assert M.detect(read(out)).payload == payload_of("default")


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known limit: 32 px cells leave too little room for the mark at 40 dB")
def test_default_generate_grid_found(tmp_path):
    run_cli(["generate", "--network", "default", "--seeds", "0-35", "--grid", "--zoom", "1", "--outdir", str(tmp_path)])
    assert M.detect(read(tmp_path / "grid.png")).payload == payload_of("default")


@pytest.mark.parametrize(
    "command, shape",  # the native figure (32 px cells, 2 px gaps) enlarged 4x by --zoom auto
    [
        (["mixing"], (4 * 236, 4 * 202)),
        (["noise"], (4 * 66, 4 * 168)),
        (["noise-layers"], (4 * 66, 4 * 134)),
        (["truncation"], (4 * 66, 4 * 202)),
    ],
)
def test_paper_figures_of_the_default_model_enlarged_and_marked(tmp_path, command, shape):
    """`stylegan figure mixing|noise|noise-layers|truncation` on the 32² model at the default --zoom auto: written
    4x larger, and the mark read back from the file (at their own size, 66-236 px, it is not found)."""
    out = tmp_path / "fig.png"
    run_cli(["figure", *command, "--network", "default", "--out", str(out)])
    x = read(out)
    assert x.shape == shape
    found = M.detect(x)
    assert found.found and found.payload == payload_of("default"), found

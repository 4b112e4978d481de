"""The paper's figures from a StyleGAN3 pickle made by NVIDIA's code (tests/fixtures/nvlabs/sg3t_tiny.pkl, 32² RGB).

Cells are checked against G.mapping / G.synthesis called directly with NVIDIA's seed -> z recipe; the layer groups
against values derived by hand from the paper's cutoff schedule.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main
from stylegan.editing import figures
from stylegan.io import load_generator

PKL = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs" / "sg3t_tiny.pkl"
RES, PAD = 32, figures.PAD

# sg3t_tiny: 14 layers, 2 critically sampled, first cutoff 2, last 32/2 = 16, so layer i's cutoff is
# f_c = 2 * 8^(min(i, 12) / 12) and 2 f_c = 2^(2 + min(i, 12) / 4). Rounded to a power of two (x.5 up): layers
# 0-1 -> 4, 2-5 -> 8, 6-9 -> 16, 10-14 -> 32. w 0 drives the input (2 f_c = 4), w i + 1 layer i:
WS_RES = [4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 32, 32, 32, 32, 32]
# Below 64² the levels 4², 8², 16², 32² split in thirds: coarse 4²-8², middle 16², fine 32².
GROUPS = {"coarse": list(range(0, 7)), "middle": list(range(7, 11)), "fine": list(range(11, 16))}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def G():
    return load_generator(PKL)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ws_of(G, seeds, psi=1.0):
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    with torch.no_grad():
        return G.mapping(z, None, truncation_psi=psi)


def render(G, ws):
    """uint8 [N, H, W, C] of G.synthesis(ws)."""
    with torch.no_grad():
        img = G.synthesis(ws).numpy().transpose(0, 2, 3, 1)
    return np.clip(img * 127.5 + 128, 0, 255).astype(np.uint8)


def _cells(path, rows, cols):
    img = np.asarray(Image.open(path))
    assert img.shape[:2] == (rows * (RES + PAD) - PAD, cols * (RES + PAD) - PAD)
    step = RES + PAD
    return [[img[r * step : r * step + RES, c * step : c * step + RES] for c in range(cols)] for r in range(rows)]


def _close(a, b):
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.05


def test_layer_groups_follow_the_cutoff_schedule(G):
    assert G.num_ws == 16
    assert figures.ws_resolutions(G) == WS_RES
    assert figures.layer_groups(G) == GROUPS
    assert figures.describe_groups(G) == "coarse ws 0-6 (4²-8²), middle ws 7-10 (16²), fine ws 11-15 (32²)"


def test_mixing_figure(G, tmp_path):
    out = tmp_path / "fig3.png"
    args = ["--cols", "1,2", "--coarse", "3", "--middle", "4", "--fine", "5", "--out", out]
    res = run("figure", "mixing", "--network", PKL, *args, "--zoom", "1")
    assert res.exit_code == 0, res.output
    assert "coarse ws 0-6 (4²-8²)" in res.output
    cells = _cells(out, rows=4, cols=3)
    ws_b = ws_of(G, [1, 2])
    for j, img in enumerate(render(G, ws_b)):
        _close(cells[0][j + 1], img)
    for r, (seed, group) in enumerate([(3, "coarse"), (4, "middle"), (5, "fine")], start=1):
        mixed = ws_of(G, [seed]).repeat(2, 1, 1)
        mixed[:, GROUPS[group]] = ws_b[:, GROUPS[group]]
        for j, img in enumerate(render(G, mixed)):
            _close(cells[r][j + 1], img)


def test_truncation_figure(G, tmp_path):
    out = tmp_path / "fig8.png"
    res = run(
        "figure", "truncation", "--network", PKL, "--seeds", "5", "--psis", "1,0.5,0", "--out", out, "--zoom", "1"
    )
    assert res.exit_code == 0, res.output
    cells = _cells(out, rows=1, cols=3)[0]
    for cell, psi in zip(cells, [1.0, 0.5, 0.0], strict=True):
        _close(cell, render(G, ws_of(G, [5], psi))[0])
    w_avg = G.mapping.w_avg.reshape(1, 1, -1).expand(1, G.num_ws, -1)
    _close(cells[2], render(G, w_avg)[0])


def test_interpolation_gif(G, tmp_path):
    out = tmp_path / "walk.gif"
    res = run("figure", "interpolate", "--network", PKL, "--seeds", "1,2", "--frames", "2", "--out", out, "--zoom", "1")
    assert res.exit_code == 0, res.output
    gif = Image.open(out)
    assert gif.n_frames == 4 and gif.size == (RES, RES)
    w1, w2 = ws_of(G, [1]), ws_of(G, [2])
    for frame, ws in [(0, w1), (1, (w1 + w2) / 2), (2, w2)]:
        gif.seek(frame)
        ours = np.asarray(gif.convert("RGB")).astype(int)
        assert np.abs(ours - render(G, ws)[0]).mean() < 8  # GIF palette


@pytest.mark.parametrize("command", ["noise", "noise-layers"])
def test_noise_figures_refuse_stylegan3_in_one_line(command, tmp_path):
    res = run("figure", command, "--network", PKL, "--seeds", "1", "--out", tmp_path / "x.png")
    assert res.exit_code != 0 and "Traceback" not in res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Error:") and "no noise inputs" in last

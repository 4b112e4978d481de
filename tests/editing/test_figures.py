"""The paper's figures, made by the CLI from tiny random models (StyleGAN1 and StyleGAN2) saved natively."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main
from stylegan.editing import figures
from stylegan.editing.generate import compute_ws, synthesize
from stylegan.io import save_networks
from stylegan.networks import stylegan1, stylegan2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is fastest, and far faster than two on a loaded machine (no spin-waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


RES = 16
PAD = figures.PAD


def _with_noise(G):
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.7)
    return G.eval()


def _sg1():
    g, _ = stylegan1.preset_configs(
        "ffhq1024",
        img_resolution=RES,
        fmap_base=32,
        fmap_max=8,
        z_dim=8,
        w_dim=8,
        mapping_layers=2,
        mapping_features=8,
    )
    return _with_noise(stylegan1.Generator(g))


def _sg2():
    g = stylegan2.GeneratorConfig(
        z_dim=8, w_dim=8, img_resolution=RES, channel_base=64, channel_max=8, mapping_layers=2
    )
    return _with_noise(stylegan2.Generator(g))


@pytest.fixture(scope="module", params=["stylegan1", "stylegan2"])
def model(request, tmp_path_factory):
    G = _sg1() if request.param == "stylegan1" else _sg2()
    G.mapping.w_avg.copy_(torch.randn(G.w_dim))
    path = tmp_path_factory.mktemp(request.param) / "model.safetensors"
    save_networks(path, {"G_ema": G})
    return path, G


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _cells(img, rows, cols):
    h, w = img.shape[:2]
    assert (h, w) == (rows * (RES + PAD) - PAD, cols * (RES + PAD) - PAD)
    return [
        [img[r * (RES + PAD) : r * (RES + PAD) + RES, c * (RES + PAD) : c * (RES + PAD) + RES] for c in range(cols)]
        for r in range(rows)
    ]


def _close(a, b):
    """uint8 images equal up to rounding (batch size and lerp change the float path by ~1e-7)."""
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.05


def _png(path):
    return np.asarray(Image.open(path))


def test_mixing_figure(model, tmp_path):
    path, G = model
    out = tmp_path / "fig3.png"
    res = run(
        "figure",
        "mixing",
        "--network",
        path,
        "--cols",
        "1,2,3",
        "--coarse",
        "4,5",
        "--middle",
        "6",
        "--fine",
        "7",
        "--trunc",
        "1",
        "--out",
        out,
        "--device",
        "cpu",
    )
    assert res.exit_code == 0, res.output
    cells = _cells(_png(out), rows=5, cols=4)
    assert (cells[0][0] == 255).all()  # blank corner
    ws_b = compute_ws(G, [1, 2, 3])
    _close(np.concatenate(cells[0][1:], axis=1), np.concatenate(list(synthesize(G, ws_b)), axis=1))
    ws_a = compute_ws(G, [7])  # the fine row: A's coarse/middle styles, B's fine ones
    fine = figures.layer_groups(G)["fine"]
    mixed = ws_a.repeat(3, 1, 1)
    mixed[:, fine] = ws_b[:, fine]
    _close(cells[4][0], synthesize(G, ws_a)[0])
    _close(cells[4][3], synthesize(G, mixed)[2])


def test_noise_figures(model, tmp_path):
    path, G = model
    out4, out5 = tmp_path / "fig4.png", tmp_path / "fig5.png"
    args = ["--seeds", "3,4", "--draws", "3", "--std-draws", "6", "--out", out4]
    res = run("figure", "noise", "--network", path, *args)
    assert res.exit_code == 0, res.output
    cells = _cells(_png(out4), rows=2, cols=4)
    assert not np.array_equal(cells[0][0], cells[0][1])  # different noise draws
    assert cells[0][3].max() == 255 and np.ptp(cells[0][3]) > 0  # std image, scaled to white
    res = run("figure", "noise-layers", "--network", path, "--seeds", "3", "--out", out5)
    assert res.exit_code == 0, res.output
    all_, none, fine, coarse = _cells(_png(out5), rows=1, cols=4)[0]
    psi, cutoff = figures.default_truncation(G)
    ws = compute_ws(G, [3], truncation_psi=psi, truncation_cutoff=cutoff)
    _close(none, synthesize(G, ws, noise_mode="none")[0])
    torch.manual_seed(0)
    _close(all_, synthesize(G, ws, noise_mode="random")[0])
    assert len({a.tobytes() for a in (all_, none, fine, coarse)}) == 4


def test_noise_only_at_restores_strengths():
    G = _sg1()
    before = {n: p.clone() for n, p in G.named_parameters()}
    with figures.noise_only_at(G, lambda r: r >= 16):
        zeroed = [m.resolution for m, _ in figures._noise_layers(G) if (m.noise_strength == 0).all()]
        assert sorted(set(zeroed)) == [4, 8]
    for n, p in G.named_parameters():
        torch.testing.assert_close(p, before[n])


def test_truncation_figure(model, tmp_path):
    path, G = model
    out = tmp_path / "fig8.png"
    res = run("figure", "truncation", "--network", path, "--seeds", "5,6", "--psis", "1,0,-1", "--out", out)
    assert res.exit_code == 0, res.output
    cells = _cells(_png(out), rows=2, cols=3)
    _close(cells[0][0], synthesize(G, compute_ws(G, [5]))[0])
    _close(cells[0][1], cells[1][1])  # psi 0: every seed becomes w_avg


def test_interpolation_gif(model, tmp_path):
    path, G = model
    out = tmp_path / "walk.gif"
    res = run(
        "figure",
        "interpolate",
        "--network",
        path,
        "--seeds",
        "1,2",
        "--frames",
        "3",
        "--trunc",
        "1",
        "--out",
        out,
    )
    assert res.exit_code == 0, res.output
    gif = Image.open(out)
    assert gif.n_frames == 6 and gif.size == (RES, RES)
    first = np.asarray(gif.convert("RGB"))
    assert np.abs(first.astype(int) - synthesize(G, compute_ws(G, [1]))[0].astype(int)).mean() < 8  # GIF palette


def test_interpolation_mp4(model, tmp_path):
    """mp4 through imageio-ffmpeg when installed; otherwise a one-line error that says what to install."""
    out = tmp_path / "walk.mp4"
    res = run("figure", "interpolate", "--network", model[0], "--seeds", "1,2", "--frames", "2", "--out", out)
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        assert res.exit_code != 0 and "imageio-ffmpeg" in res.output.splitlines()[-1]
        return
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 0


def test_layer_groups_follow_the_paper():
    """1024²: StyleGAN1 coarse = ws 0-3 (4²-8²), middle 4-7 (16²-32²), fine 8-17 (64²-1024²)."""
    blocks = {f"b{2**i}": SimpleNamespace(num_conv=1 if i == 2 else 2) for i in range(2, 11)}
    sg2 = SimpleNamespace(
        img_resolution=1024,
        num_ws=18,
        synthesis=SimpleNamespace(block_resolutions=[2**i for i in range(2, 11)], **blocks),
    )
    sg1 = SimpleNamespace(
        img_resolution=1024,
        num_ws=18,
        synthesis=SimpleNamespace(
            block_resolutions=[2**i for i in range(2, 11)], **{k: SimpleNamespace() for k in blocks}
        ),
    )
    assert figures.layer_groups(sg1) == {
        "coarse": [0, 1, 2, 3],
        "middle": [4, 5, 6, 7],
        "fine": list(range(8, 18)),
    }
    assert figures.layer_groups(sg2) == {
        "coarse": [0, 1, 2],
        "middle": [3, 4, 5, 6],
        "fine": list(range(7, 18)),
    }
    assert figures.ws_resolutions(sg2)[-1] == 1024
    small = figures.layer_groups(_sg1())  # 16²: three levels, one group each
    assert small == {"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]}


@pytest.mark.parametrize(
    "args, message",
    [
        (["mixing", "--cols", "1,x"], "bad --cols"),
        (["mixing", "--coarse", "", "--middle", "", "--fine", ""], "at least one of"),
        (["noise", "--draws", "0"], "--draws"),
        (["noise", "--std-draws", "1"], "--std-draws"),
        (["truncation", "--psis", "1,abc"], "--psis"),
        (["truncation", "--psis", "5"], "out of range"),
        (["interpolate", "--seeds", "3"], "at least 2 seeds"),
        (["interpolate", "--out", "walk.avi"], ".gif or .mp4"),
        (["noise", "--device", "cuda:7"] if not torch.cuda.is_available() else ["noise", "--draws", "0"], ""),
    ],
)
def test_bad_arguments_give_one_line_errors(model, args, message):
    res = run("figure", *args[:1], "--network", model[0], *args[1:])
    assert res.exit_code != 0
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error:") and message in lines[-1]
    assert "Traceback" not in res.output


def test_missing_network_and_default_model(tmp_path):
    res = run("figure", "noise", "--network", tmp_path / "none.safetensors")
    assert res.exit_code != 0 and "no such file" in res.output
    from stylegan.io import default_model_path

    if not default_model_path().exists():
        res = run("figure", "mixing")
        assert res.exit_code != 0 and "no --network given" in res.output


@pytest.mark.parametrize("command", ["mixing", "noise", "noise-layers", "truncation", "interpolate"])
def test_help_has_an_example(command):
    res = run("figure", command, "--help")
    assert res.exit_code == 0 and "Example:" in res.output and "stylegan figure" in res.output

"""The paper's figures, made by the CLI from tiny random models (StyleGAN1 and StyleGAN2) saved natively.

Every figure is checked cell by cell against an oracle that calls the networks directly (G.mapping, G.synthesis)
with NVIDIA's seed -> z recipe, never through stylegan.editing.
"""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main
from stylegan.editing import figures
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
    return path, G, request.param


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
    assert a.shape == b.shape
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.05


def _png(path):
    arr = np.asarray(Image.open(path))
    return arr[:, :, None] if arr.ndim == 2 else arr


# ---- the oracle: the networks called directly, NVIDIA's seed -> z recipe, pixels quantised with numpy ----


def ws_of(G, seeds, psi=1.0, cutoff=None):
    """[N, num_ws, w_dim] from z = RandomState(seed).randn(z_dim)."""
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    with torch.no_grad():
        return G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)


def pixels(img):
    """Float images [N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C]."""
    return np.clip(img.numpy().transpose(0, 2, 3, 1) * 127.5 + 128, 0, 255).astype(np.uint8)


def render(G, ws, noise_mode="const"):
    with torch.no_grad():
        return pixels(G.synthesis(ws, noise_mode=noise_mode))


# Layer groups derived by hand for the 16² test models (coarse / middle / fine = thirds of 4², 8², 16²):
# StyleGAN1 has two ws per resolution; StyleGAN2 one at 4², two at 8² and 16², and the last ToRGB's at 16².
GROUPS = {
    "stylegan1": {"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]},
    "stylegan2": {"coarse": [0], "middle": [1, 2], "fine": [3, 4, 5]},
}
PRINTED = {
    "stylegan1": "coarse ws 0-1 (4²), middle ws 2-3 (8²), fine ws 4-5 (16²)",
    "stylegan2": "coarse ws 0 (4²), middle ws 1-2 (8²), fine ws 3-5 (16²)",
}


def test_mixing_figure(model, tmp_path):
    path, G, family = model
    out = tmp_path / "fig3.png"
    args = ["--cols", "1,2,3", "--coarse", "4,5", "--middle", "6", "--fine", "7", "--trunc", "1", "--out", out]
    res = run("figure", "mixing", "--network", path, *args, "--device", "cpu", "--zoom", "1")
    assert res.exit_code == 0, res.output
    assert PRINTED[family] in res.output  # the groups of this model, not the paper's 1024² ones
    cells = _cells(_png(out), rows=5, cols=4)
    assert (cells[0][0] == 255).all()  # blank corner
    ws_b = ws_of(G, [1, 2, 3])
    for j, img in enumerate(render(G, ws_b)):
        _close(cells[0][j + 1], img)
    for r, (seed, group) in enumerate([(4, "coarse"), (5, "coarse"), (6, "middle"), (7, "fine")], start=1):
        ws_a = ws_of(G, [seed])
        _close(cells[r][0], render(G, ws_a)[0])
        mixed = ws_a.repeat(3, 1, 1)
        mixed[:, GROUPS[family][group]] = ws_b[:, GROUPS[family][group]]
        for j, img in enumerate(render(G, mixed)):
            _close(cells[r][j + 1], img)


def test_stochastic_variation_figure(model, tmp_path):
    """Fig. 4: the draws are G.synthesis with fresh noise after manual_seed(--noise-seed); the last column is
    the per-pixel std-dev over the draws (mean over channels), scaled so its maximum is 255."""
    path, G, _ = model
    out = tmp_path / "fig4.png"
    res = run(
        "figure", "noise", "--network", path, "--seeds", "3,4", "--draws", "3", "--std-draws", "6", "--out", out,
        "--zoom", "1",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    cells = _cells(_png(out), rows=2, cols=4)
    psi, cutoff = figures.default_truncation(G)
    for row, seed in enumerate([3, 4]):
        torch.manual_seed(0)
        with torch.no_grad():
            draws = G.synthesis(ws_of(G, [seed], psi, cutoff).expand(6, -1, -1), noise_mode="random").numpy()
        for k, img in enumerate(pixels(torch.from_numpy(draws[:3]))):
            _close(cells[row][k], img)
        std = draws.std(axis=0, ddof=1).mean(axis=0)
        expected = (std / std.max() * 255).astype(np.uint8)
        assert np.abs(cells[row][3][:, :, 0].astype(int) - expected).max() <= 1
        assert not np.array_equal(cells[row][0], cells[row][1])


def _noise_only(G, keep_resolutions):
    """A copy of G whose layers outside `keep_resolutions` have noise_strength 0 (the oracle of Fig. 5)."""
    H = copy.deepcopy(G)
    with torch.no_grad():
        for name, p in H.named_parameters():
            if name.endswith("noise_strength") and int(name.split(".")[1][1:]) not in keep_resolutions:
                p.zero_()
    return H


def test_noise_layers_figure(model, tmp_path):
    path, G, _ = model
    out = tmp_path / "fig5.png"
    res = run("figure", "noise-layers", "--network", path, "--seeds", "3", "--out", out, "--zoom", "1")
    assert res.exit_code == 0, res.output
    cells = _cells(_png(out), rows=1, cols=4)[0]
    ws = ws_of(G, [3], *figures.default_truncation(G))
    expected = []
    for keep in [(4, 8, 16), (), (16,), (4, 8)]:  # all, none, fine (16² here), coarse and middle
        torch.manual_seed(0)
        expected.append(render(_noise_only(G, keep), ws, noise_mode="random")[0])
    for ours, ref in zip(cells, expected, strict=True):
        _close(ours, ref)
    _close(cells[1], render(G, ws, noise_mode="none")[0])
    assert len({c.tobytes() for c in cells}) == 4


def test_noise_only_at_restores_strengths():
    G = _sg1()
    before = {n: p.clone() for n, p in G.named_parameters()}
    with figures.noise_only_at(G, lambda r: r >= 16):
        zeroed = [m.resolution for m, _ in figures._noise_layers(G) if (m.noise_strength == 0).all()]
        assert sorted(set(zeroed)) == [4, 8]
    for n, p in G.named_parameters():
        torch.testing.assert_close(p, before[n])


def test_truncation_figure(model, tmp_path):
    path, G, _ = model
    out = tmp_path / "fig8.png"
    res = run(
        "figure", "truncation", "--network", path, "--seeds", "5,6", "--psis", "1,0,-1", "--out", out, "--zoom", "1"
    )
    assert res.exit_code == 0, res.output
    cells = _cells(_png(out), rows=2, cols=3)
    for row, seed in enumerate([5, 6]):
        for col, psi in enumerate([1.0, 0.0, -1.0]):
            _close(cells[row][col], render(G, ws_of(G, [seed], psi))[0])
    w_avg = G.mapping.w_avg.reshape(1, 1, -1).expand(1, G.num_ws, -1)
    _close(cells[0][1], render(G, w_avg)[0])  # psi 0: every seed becomes w_avg


def test_interpolation_gif(model, tmp_path):
    path, G, _ = model
    out = tmp_path / "walk.gif"
    args = ["--seeds", "1,2", "--frames", "3", "--trunc", "1", "--out", out, "--zoom", "1"]
    res = run("figure", "interpolate", "--network", path, *args)
    assert res.exit_code == 0, res.output
    gif = Image.open(out)
    assert gif.n_frames == 6 and gif.size == (RES, RES)
    w1, w2 = ws_of(G, [1]), ws_of(G, [2])
    for frame, ws in [(0, w1), (1, w1 + (w2 - w1) / 3), (3, w2), (5, w2 + (w1 - w2) * 2 / 3)]:
        gif.seek(frame)
        ours = np.asarray(gif.convert("RGB")).astype(int)
        assert np.abs(ours - render(G, ws)[0]).mean() < 8  # GIF palette


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
    import subprocess

    dump = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(out), "-f", "ffmetadata", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "trainedAlgorithmicMedia" in dump and "stylegan:seed" not in dump  # provenance, no per-image seed


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


FAST_ARGS = {
    "mixing": ["--cols", "1", "--coarse", "2", "--middle", "", "--fine", ""],
    "noise": ["--seeds", "1", "--draws", "1", "--std-draws", "2"],
    "noise-layers": ["--seeds", "1"],
    "truncation": ["--seeds", "1", "--psis", "1"],
    "interpolate": ["--seeds", "1,2", "--frames", "1"],
}


@pytest.mark.parametrize("command", list(FAST_ARGS))
def test_existing_output_needs_force(model, command, tmp_path):
    out = tmp_path / ("fig.gif" if command == "interpolate" else "fig.png")
    out.write_bytes(b"keep")
    args = ["figure", command, "--network", model[0], *FAST_ARGS[command], "--out", out]
    res = run(*args)
    assert res.exit_code != 0 and res.output.strip().splitlines()[-1].endswith("or choose another name")
    assert out.read_bytes() == b"keep"
    res = run(*args, "--force")
    assert res.exit_code == 0, res.output
    assert out.read_bytes() != b"keep" and len(list(tmp_path.iterdir())) == 1  # replaced, no temporary left

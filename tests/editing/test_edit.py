"""`stylegan edit` / editing.edit: edited ws against a loop written from the definition, figures cell by cell
against G.synthesis called directly, provenance of PNG and video outputs, and one-line errors."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main
from stylegan.editing import directions as D
from stylegan.editing import edit as E
from stylegan.io import load_generator, save_networks
from stylegan.networks import stylegan1

SG3_PKL = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs" / "sg3t_tiny.pkl"
PAD = 2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def G():
    return load_generator()


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ws_of(G, seeds, psi=1.0):
    """NVIDIA's seed -> z recipe, mapped directly."""
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    with torch.no_grad():
        return G.mapping(z, None, truncation_psi=psi)


def render(G, ws):
    """uint8 [N, C, H, W] straight from G.synthesis."""
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const")
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def cells(img: np.ndarray, rows: int, cols: int, res: int) -> np.ndarray:
    """[rows, cols, H, W, C] cut from an [H', W', C] figure with PAD-pixel gaps."""
    step = res + PAD
    return np.stack(
        [[img[r * step : r * step + res, c * step : c * step + res] for c in range(cols)] for r in range(rows)]
    )


def assert_close_uint8(got, expect):
    """Equal up to float rounding: batches of another size sum in another order, so a pixel may flip by one level."""
    diff = np.abs(np.asarray(got, np.int16) - np.asarray(expect, np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())


def test_parse_strengths():
    assert E.parse_strengths("-3:3:7") == pytest.approx(np.linspace(-3, 3, 7).tolist())
    assert E.parse_strengths("-2,0,2.5") == [-2.0, 0.0, 2.5]
    assert E.parse_strengths("1.5") == [1.5]
    for bad in ("a:b:c", "-3:3", "1:2:0", "x"):
        with pytest.raises(D.DirectionError, match="bad strengths"):
            E.parse_strengths(bad)


def _direction(w_dim, layers, scale=0.7, seed=0):
    v = np.random.RandomState(seed).randn(w_dim)
    return D.Direction(v / np.linalg.norm(v), scale, tuple(layers), "test", "", 8)


def test_edit_ws_moves_only_the_layers():
    ws = torch.randn(2, 8, 16)
    d1, d2 = _direction(16, [0, 1, 2]), _direction(16, [5], seed=1)
    strengths = [-1.0, 0.0, 2.0]
    out = E.edit_ws(ws, [d1, d2], strengths)
    assert out.shape == (2, 2, 3, 8, 16)
    for n in range(2):
        for j, d in enumerate((d1, d2)):
            for k, s in enumerate(strengths):
                expect = ws[n].clone()
                for layer in d.layers:
                    expect[layer] = ws[n, layer] + s * d.scale * torch.from_numpy(d.vector).float()
                torch.testing.assert_close(out[n, j, k], expect)
    override = E.edit_ws(ws, [d1], [1.0], layers=[7])
    torch.testing.assert_close(override[:, 0, 0, :7], ws[:, :7])
    assert not torch.allclose(override[:, 0, 0, 7], ws[:, 7])


def test_strip_cells_match_direct_synthesis(G):
    seeds, strengths = [0, 5], [-2.0, 0.0, 2.0]
    d = D.resolve_direction(G, "sefa:1")
    fig = E.edit_figure(G, ws_of(G, seeds), [d], strengths)
    got = cells(fig.permute(1, 2, 0).numpy(), len(seeds), len(strengths), 32)
    ws = ws_of(G, seeds)
    step = torch.from_numpy(d.vector).float() * d.scale
    for c, s in enumerate(strengths):
        expect = render(G, ws + s * step).permute(0, 2, 3, 1).numpy()
        assert_close_uint8(got[:, c], expect)


def test_projected_w_in_nvidia_format(G, tmp_path):
    w = ws_of(G, [3]).numpy()  # [1, num_ws, w_dim]
    np.savez(tmp_path / "projected_w.npz", w=w)
    torch.testing.assert_close(E.load_projected_w(tmp_path / "projected_w.npz", G), torch.from_numpy(w))
    np.savez(tmp_path / "wrong.npz", w=np.zeros([1, 10, 64], np.float32))
    with pytest.raises(D.DirectionError, match=r"w has shape \[1, 10, 64\], this model needs \[N, 8, 64\]"):
        E.load_projected_w(tmp_path / "wrong.npz", G)
    np.savez(tmp_path / "nokey.npz", ws=w)
    with pytest.raises(D.DirectionError, match="no array 'w'"):
        E.load_projected_w(tmp_path / "nokey.npz", G)


def _text(path):
    with Image.open(path) as im:
        return dict(im.text)


def test_cli_strip_with_provenance(G, tmp_path):
    out = tmp_path / "strip.png"
    res = run("edit", "--seeds", "0,5", "--direction", "sefa:1", "--strengths", "-2:2:3", "--out", out, "--zoom", "1")
    assert res.exit_code == 0, res.output
    img = np.asarray(Image.open(out))[..., None]
    assert img.shape == (2 * 32 + PAD, 3 * 32 + 2 * PAD, 1)
    meta = _text(out)
    assert meta["DigitalSourceType"].endswith("trainedAlgorithmicMedia")
    assert meta["stylegan:seeds"] == "0,5" and meta["stylegan:direction"] == "sefa:1"
    assert meta["stylegan:strengths"] == "-2,0,2" and meta["stylegan:model"] == "default"
    d = D.resolve_direction(G, "sefa:1")
    # The strength-0 column is the plain image of each seed (small figures carry no mark, so pixels are exact).
    assert_close_uint8(cells(img, 2, 3, 32)[:, 1], render(G, ws_of(G, [0, 5])).permute(0, 2, 3, 1).numpy())
    assert d.name == "sefa:1"
    assert run("edit", "--seeds", "0", "--out", out).exit_code != 0  # exists: needs --force
    assert run("edit", "--seeds", "0", "--out", out, "--force").exit_code == 0


def test_cli_grid_layers_and_projected_w(G, tmp_path):
    np.savez(tmp_path / "p.npz", w=ws_of(G, [7]).numpy())
    out = tmp_path / "grid.png"
    res = run(
        "edit", "--projected-w", tmp_path / "p.npz", "--direction", "sefa:0", "--direction", "ganspace:1",
        "--layers", "fine", "--strengths", "-1,1", "--out", out, "--zoom", "1",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "edited ws 5-7" in res.output
    img = np.asarray(Image.open(out))[..., None]
    got = cells(img, 2, 2, 32)
    ws = ws_of(G, [7])
    for r, spec in enumerate(("sefa:0", "ganspace:1")):
        d = D.resolve_direction(G, spec)
        for c, s in enumerate((-1.0, 1.0)):
            edited = ws.clone()
            edited[:, 5:] += s * d.scale * torch.from_numpy(d.vector).float()
            assert_close_uint8(got[r, c], render(G, edited)[0].permute(1, 2, 0).numpy())
    assert _text(out)["stylegan:layers"] == "5-7; 5-7"


def test_cli_video_carries_provenance(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    import imageio_ffmpeg

    out = tmp_path / "edit.mp4"
    res = run("edit", "--seeds", "1", "--direction", "sefa:0", "--frames", "4", "--out", out)
    assert res.exit_code == 0, res.output
    dump = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(out), "-f", "ffmetadata", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "trainedAlgorithmicMedia" in dump and "stylegan:direction\\=sefa:0" in dump
    frames = imageio_ffmpeg.count_frames_and_secs(str(out))[0]
    assert frames == 4


def test_sweep_goes_out_and_back():
    assert E.sweep([-3, 3], 4) == [-3.0, 0.0, 3.0, 0.0]


@pytest.mark.parametrize("family", ["stylegan1", "stylegan3"])
def test_other_families_edit(family, tmp_path):
    if family == "stylegan3":
        path, res = SG3_PKL, 32
    else:
        g, _ = stylegan1.preset_configs(
            "ffhq1024", img_resolution=16, fmap_base=32, fmap_max=8, z_dim=8, w_dim=8, mapping_layers=2,
            mapping_features=8,
        )  # fmt: skip
        path, res = tmp_path / "sg1.safetensors", 16
        save_networks(path, {"G_ema": stylegan1.Generator(g).eval()})
    out = tmp_path / "e.png"
    result = run(
        "edit", "--network", path, "--seeds", "0", "--direction", "sefa:0", "--layers", "coarse",
        "--strengths", "-2,0,2", "--trunc", "1", "--out", out, "--zoom", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    G = load_generator(path)
    img = np.asarray(Image.open(out))
    img = img[..., None] if img.ndim == 2 else img
    mid = cells(img, 1, 3, res)[0, 1]
    assert_close_uint8(mid, render(G, ws_of(G, [0]))[0].permute(1, 2, 0).numpy())
    assert not np.array_equal(cells(img, 1, 3, res)[0, 0], mid)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--direction", "smile"], "unknown direction 'smile'"),
        (["--layers", "9-12"], "out of range: this model has layers (ws indices) 0..7"),
        (["--layers", "chin"], "bad layers 'chin'"),
        (["--strengths", "3"], None),
        (["--strengths", "1:2"], "bad strengths"),
        (["--seeds", "0", "--projected-w", "x.npz"], "either --seeds or --projected-w"),
        (["--projected-w", "missing.npz"], "missing.npz: no such file"),
        (["--out", "x.jpg"], "use .png"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    args = [a if a != "missing.npz" else tmp_path / a for a in args]
    if "--out" not in args:
        args += ["--out", tmp_path / "o.png"]
    res = run("edit", *args)
    if message is None:
        assert res.exit_code == 0, res.output
        return
    assert res.exit_code != 0
    assert message in res.output and res.output.count("\n") == 1 and "Traceback" not in res.output, res.output


def test_cli_mismatched_npz(tmp_path):
    np.savez(tmp_path / "p.npz", w=np.zeros([1, 8, 32], np.float32))
    res = run("edit", "--projected-w", tmp_path / "p.npz", "--out", tmp_path / "o.png")
    assert res.exit_code != 0 and "this model needs [N, 8, 64]" in res.output and res.output.count("\n") == 1


def test_cli_directions_writes_and_lists(G, tmp_path):
    res = run("directions", "--method", "sefa", "--layers", "coarse", "--num", "3", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    assert "sefa-0-2.npz" in res.output and "sefa:2" in res.output and "sefa:3" not in res.output
    dirs = D.load_directions(tmp_path / "sefa-0-2.npz")
    assert dirs.layers == (0, 1, 2) and dirs.model_hash == D.model_hash(G)
    again = run("directions", "--method", "sefa", "--layers", "coarse", "--out", tmp_path)
    assert again.exit_code != 0 and "--force" in again.output
    bad = run("directions", "--method", "boundary", "--out", tmp_path)
    assert bad.exit_code != 0 and "needs a label" in bad.output
    bad = run("directions", "--method", "boundary", "--classifier", "fmnist:12", "--out", tmp_path)
    assert bad.exit_code != 0 and "fmnist:K with K in 0..9" in bad.output
    bad = run("directions", "--method", "boundary", "--class", "1", "--out", tmp_path)
    assert bad.exit_code != 0 and "unconditional" in bad.output

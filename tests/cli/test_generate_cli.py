"""generate / mix / convert / env end to end on CPU, against NVIDIA's official outputs, and one-line errors.

Oracles: the official fixture images (tests/fixtures/nvlabs/*.npz, made by NVIDIA's code from seeds 0..7 with
z = RandomState(seed).randn(z_dim)), quantised here with numpy, and networks called directly.
"""

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvlabs"
OFFICIAL = np.load(FIXTURES / "sg2_tiny.npz")
PAD = 2  # pixels between the cells of grids and figures


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def quantise(img: np.ndarray) -> np.ndarray:
    """Official float image [C, H, W] in [-1, 1] -> uint8 [H, W, C] (x * 127.5 + 128, clipped, truncated)."""
    return np.clip(img.transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)


def png(path) -> np.ndarray:
    """A PNG as [H, W, C] (grey images get C = 1)."""
    arr = np.asarray(Image.open(path))
    return arr[:, :, None] if arr.ndim == 2 else arr


def assert_same_image(ours: np.ndarray, ref: np.ndarray) -> None:
    """Equal up to one step of rounding (the official float images differ from ours by < 1e-4)."""
    assert ours.shape == ref.shape
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())


def cell(fig: np.ndarray, row: int, col: int, size: int) -> np.ndarray:
    step = size + PAD
    return fig[row * step : row * step + size, col * step : col * step + size]


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "sg2.safetensors"
    assert run("convert", FIXTURES / "sg2_tiny.pkl", out).exit_code == 0
    return out


@pytest.mark.parametrize("network", ["pickle", "native"])
@pytest.mark.parametrize("psi", ["1", "0.7"])
def test_generate_equals_the_official_images(network, psi, native, tmp_path):
    """Seeds 0..7 through the CLI equal NVIDIA's images of the same seeds, for psi 1 and 0.7 (const noise)."""
    path = FIXTURES / "sg2_tiny.pkl" if network == "pickle" else native
    res = run("generate", "--network", path, "--seeds", "0-7", "--trunc", psi, "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"seed{s:04d}.png" for s in range(8)]
    ref = OFFICIAL["img_psi100" if psi == "1" else "img_psi070"]
    for seed in range(8):
        assert_same_image(png(tmp_path / f"seed{seed:04d}.png"), quantise(ref[seed]))


def test_noise_mode_none_equals_the_official_image(native, tmp_path):
    res = run("generate", "--network", native, "--seeds", "2,5", "--noise-mode", "none", "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    for seed in (2, 5):
        ours = png(tmp_path / f"seed{seed:04d}.png")
        assert_same_image(ours, quantise(OFFICIAL["img_psi100_noise_none"][seed]))
        assert np.abs(ours.astype(int) - quantise(OFFICIAL["img_psi100"][seed]).astype(int)).max() > 1


def test_grid_tiles_the_seed_images(native, tmp_path):
    res = run("generate", "--network", native, "--seeds", "0-4", "--grid", "--outdir", tmp_path, "--zoom", "1")
    assert res.exit_code == 0, res.output
    grid = png(tmp_path / "grid.png")
    assert grid.shape == (2 * 32 + PAD, 3 * 32 + 2 * PAD, 3)  # 5 images: 3 columns, 2 rows
    for i in range(5):
        assert np.array_equal(cell(grid, i // 3, i % 3, 32), png(tmp_path / f"seed{i:04d}.png"))
    assert (cell(grid, 1, 2, 32) == 255).all() and (grid[32 : 32 + PAD] == 255).all()  # empty cell, gap


@pytest.mark.parametrize("seed, class_idx", [(4, 4), (6, 1)])
def test_conditional_grayscale_model(seed, class_idx, tmp_path):
    """Official labels: seed s has class s % 5."""
    cond = np.load(FIXTURES / "sg2_tiny_cond.npz")
    assert cond["c"][seed].argmax() == class_idx
    args = ["--seeds", seed, "--class", class_idx, "--outdir", tmp_path]
    res = run("generate", "--network", FIXTURES / "sg2_tiny_cond.pkl", *args)
    assert res.exit_code == 0, res.output
    assert_same_image(png(tmp_path / f"seed{seed:04d}.png"), quantise(cond["img_psi100"][seed]))


def test_mix_equals_the_official_style_mixing(native, tmp_path):
    """Rows 0..3 with cols 4..7's styles in ws 4..7: the diagonal cells are NVIDIA's img_mix (mix_cut = 4)."""
    out = tmp_path / "fig.png"
    res = run(
        "mix", "--network", native, "--rows", "0-3", "--cols", "4-7", "--styles", "4-7", "--out", out, "--no-mark",
        "--zoom", "1",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert int(OFFICIAL["mix_cut"]) == 4 and int(OFFICIAL["num_ws"]) == 8
    fig = png(out)
    assert fig.shape == (5 * 32 + 4 * PAD, 5 * 32 + 4 * PAD, 3)
    assert (cell(fig, 0, 0, 32) == 255).all()
    for i in range(4):
        assert_same_image(cell(fig, 0, i + 1, 32), quantise(OFFICIAL["img_psi100"][4 + i]))  # sources B
        assert_same_image(cell(fig, i + 1, 0, 32), quantise(OFFICIAL["img_psi100"][i]))  # sources A
        assert_same_image(cell(fig, i + 1, i + 1, 32), quantise(OFFICIAL["img_mix"][i]))


def test_mix_defaults_to_the_models_coarse_layers(native, tmp_path):
    """A 32² StyleGAN2 has ws 0 (4²), 1-2 (8²), 3-4 (16²), 5-7 (32²); its coarse group is 4²-8²: ws 0-2."""
    from stylegan import load_generator

    out = tmp_path / "fig.png"
    res = run("mix", "--network", native, "--rows", "1", "--cols", "6", "--out", out, "--zoom", "1")
    assert res.exit_code == 0, res.output
    assert "ws 0-2" in res.output
    ws = torch.from_numpy(OFFICIAL["ws_psi100"][1].copy())
    ws[:3] = torch.from_numpy(OFFICIAL["ws_psi100"][6][:3])
    with torch.no_grad():
        ref = load_generator(native).synthesis(ws[None], noise_mode="const")[0].numpy()
    assert_same_image(cell(png(out), 1, 1, 32), quantise(ref))


def test_outputs_are_not_overwritten_silently(native, tmp_path):
    out = tmp_path / "fig.png"
    out.write_bytes(b"keep me")
    res = run("mix", "--network", native, "--rows", "1", "--cols", "2", "--out", out, "--zoom", "1")
    assert res.exit_code != 0 and "--force" in res.output and len(res.output.strip().splitlines()) == 1
    assert out.read_bytes() == b"keep me"
    res = run("mix", "--network", native, "--rows", "1", "--cols", "2", "--out", out, "--force", "--zoom", "1")
    assert res.exit_code == 0, res.output
    assert png(out).shape == (2 * 32 + PAD, 2 * 32 + PAD, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]  # no temporary file left behind


def test_generate_replaces_its_own_files_and_keeps_others(native, tmp_path):
    """As NVIDIA's generate.py: seedNNNN.png is rewritten (help says so); unrelated files stay."""
    (tmp_path / "seed0003.png").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    res = run("generate", "--network", native, "--seeds", "3", "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    assert_same_image(png(tmp_path / "seed0003.png"), quantise(OFFICIAL["img_psi100"][3]))
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert "replaced" in run("generate", "--help").output


def test_env_reports_what_torch_detects(monkeypatch):
    """Every value comes from torch/platform at call time: change what torch reports and the output follows."""
    torch.set_num_threads(3)
    res = run("env")
    assert res.exit_code == 0, res.output
    report = dict(line.split(": ", 1) for line in res.output.strip().splitlines())
    report = {k.strip(): v for k, v in report.items()}
    assert report["torch"] == torch.__version__ and report["python"] == platform.python_version()
    assert report["cpu threads"] == "3"
    assert report["oneDNN (mkldnn)"] == ("yes" if torch.backends.mkldnn.is_available() else "no")
    assert report["cpu capability"] == torch.backends.cpu.get_cpu_capability()
    if not torch.cuda.is_available():
        assert report["device (auto)"] in ("cpu", "mps") and report["cuda"].startswith("not available")
        assert report["fp16 blocks"].startswith("fp32")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Pretend GPU")
    res = run("env")
    assert res.exit_code == 0, res.output
    assert "device (auto): cuda" in res.output and "2 x Pretend GPU" in res.output
    assert "fp16 blocks: fp16" in res.output and "activation layout: contiguous" in res.output


def test_convert_which(tmp_path):
    from stylegan.io import load_networks

    res = run("convert", FIXTURES / "sg2_tiny.pkl", tmp_path / "d.safetensors", "--which", "D")
    assert res.exit_code == 0, res.output
    assert list(load_networks(tmp_path / "d.safetensors")) == ["D"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["generate", "--network", "missing.pkl"], "no such file"),
        (["generate", "--network", "{readme}"], "not a model file"),
        (["generate", "--network", "{native}", "--seeds", "3-1"], "runs backwards"),
        (["generate", "--network", "{native}", "--seeds", "x"], "bad seeds"),
        (["generate", "--network", "{native}", "--trunc", "3"], "out of range"),
        (["generate", "--network", "{native}", "--class", "1"], "unconditional"),
        (["generate", "--network", "{cond}", "--class", "9"], "out of range"),
        (["generate", "--network", "{cond}"], "conditional"),
        (["generate", "--network", "{native}", "--outdir", "{readme}"], "is a file"),
        (["mix", "--network", "{native}", "--styles", "0-40"], "out of range"),
        (["mix", "--network", "{native}", "--out", "{readme}/fig.png"], "is a file, but a folder is needed"),
        (["mix", "--network", "{native}", "--out", "{readme}"], "already exists; pass --force"),
        (["mix", "--network", "{native}", "--out", "{tmp}"], "is a folder"),
        (["convert", "{cond}", "{tmp}/x.bin"], "must end in .safetensors"),
        (["generate", "--network", "{native}", "--device", "cuda"], "no CUDA"),
    ],
)
def test_user_errors_are_one_line(args, message, native, tmp_path):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    readme = tmp_path / "README.md"
    readme.write_text("# not a model\n")
    subs = {"native": native, "cond": FIXTURES / "sg2_tiny_cond.pkl", "readme": readme, "tmp": tmp_path}
    res = run(*[a.format(**subs) for a in args])
    assert res.exit_code != 0
    assert message in res.output, res.output
    assert "Traceback" not in res.output and "Errno" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


def test_os_errors_become_sentences():
    import errno

    from stylegan.cli.common import os_error_line

    assert os_error_line(PermissionError(errno.EACCES, "Permission denied", "/x")) == "/x: permission denied"
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device", "a.png")).startswith("no space left")
    assert os_error_line(OSError(errno.EIO, "Input/output error", "a.png")) == "a.png: input/output error"
    assert os_error_line(FileNotFoundError("model.pkl: no such file")) == "model.pkl: no such file"


def test_truncated_file_is_an_error_not_a_traceback(tmp_path):
    bad = tmp_path / "cut.pkl"
    bad.write_bytes((FIXTURES / "sg2_tiny.pkl").read_bytes()[:5000])
    exe = shutil.which("stylegan") or str(Path(sys.executable).with_name("stylegan"))
    proc = subprocess.run(
        [exe, "generate", "--network", str(bad), "--outdir", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("Error:"), proc.stderr


def test_stylegan1_models_default_to_the_papers_truncation(tmp_path):
    """A StyleGAN (2019) model generates with psi 0.7 / cutoff 8 unless told otherwise, as NVIDIA's Gs did.

    Oracle: z from RandomState(seed), then the network's mapping with those values and its synthesis.
    """
    from stylegan.io import save_networks
    from stylegan.networks import stylegan1

    g_cfg, _ = stylegan1.preset_configs(
        "ffhq1024",
        img_resolution=32,
        fmap_base=64,
        fmap_max=16,
        z_dim=16,
        w_dim=16,
        mapping_layers=2,
        mapping_features=16,
    )
    G = stylegan1.Generator(g_cfg).eval()
    G.mapping.w_avg.copy_(torch.randn(16))
    save_networks(tmp_path / "sg1.safetensors", {"G_ema": G})
    z = torch.from_numpy(np.random.RandomState(5).randn(1, 16)).float()

    def oracle(psi, cutoff):
        with torch.no_grad():
            ws = G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)
            return quantise(G.synthesis(ws, noise_mode="const")[0].numpy())

    for name, extra, psi, cutoff in [("default", [], 0.7, 8), ("off", ["--trunc", "1"], 1.0, None)]:
        args = ["--network", tmp_path / "sg1.safetensors", "--seeds", "5", "--outdir", tmp_path / name, *extra]
        res = run("generate", *args)
        assert res.exit_code == 0, res.output
        assert_same_image(png(tmp_path / name / "seed0005.png"), oracle(psi, cutoff))
    assert not np.array_equal(oracle(0.7, 8), oracle(1.0, None))


def test_stylegan3_translate_moves_the_content(tmp_path):
    """--translate by whole pixels shifts an SG3-R image by those pixels (alias-free: up to the border margin);
    the same flag on a StyleGAN2 model is refused in one line."""
    from stylegan.io import load_generator
    from stylegan.networks.stylegan3 import make_transform

    pkl = FIXTURES / "sg3r_tiny.pkl"
    res = CliRunner().invoke(
        main,
        ["generate", "--network", str(pkl), "--seeds", "5", "--outdir", str(tmp_path / "a"), "--translate", "0.125,0"],
    )
    assert res.exit_code == 0, res.output
    moved = np.asarray(Image.open(tmp_path / "a" / "seed0005.png")).astype(float)
    G = load_generator(pkl)
    z = torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim))
    with torch.no_grad():
        G.synthesis.input.transform.copy_(torch.linalg.inv(make_transform((0.125, 0), 0)))  # independent of the CLI
        direct = G(z, None, noise_mode="const")
        G.synthesis.input.transform.copy_(torch.eye(3))
        still = G(z, None, noise_mode="const")
    to_px = lambda t: (t[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy().astype(float)  # noqa: E731
    np.testing.assert_allclose(moved, to_px(direct), atol=1)
    shift = round(0.125 * G.img_resolution)  # 4 pixels to the right
    inner = slice(8, -8)
    aligned = np.abs(to_px(direct)[inner, shift + 8 : -8] - to_px(still)[inner, 8 : -8 - shift]).mean()
    unaligned = np.abs(to_px(direct)[inner, 8:-8] - to_px(still)[inner, 8:-8]).mean()
    assert aligned < unaligned / 4, (aligned, unaligned)
    res = CliRunner().invoke(
        main,
        [
            "generate",
            "--network",
            str(FIXTURES / "sg2_tiny.pkl"),
            "--seeds",
            "0",
            "--outdir",
            str(tmp_path / "b"),
            "--rotate",
            "10",
        ],
    )
    assert res.exit_code == 1 and "StyleGAN3" in res.output and "Traceback" not in res.output

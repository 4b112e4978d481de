"""generate / mix / convert / env end to end on CPU, and one-line errors for user mistakes."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvlabs"


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "sg2.safetensors"
    assert run("convert", FIXTURES / "sg2_tiny.pkl", out).exit_code == 0
    return out


@pytest.mark.parametrize("network", ["pickle", "native"])
def test_generate_writes_pngs_and_grid(network, native, tmp_path):
    path = FIXTURES / "sg2_tiny.pkl" if network == "pickle" else native
    res = run("generate", "--network", path, "--seeds", "0-2,7", "--trunc", "0.7", "--grid", "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    img = np.asarray(Image.open(tmp_path / "seed0000.png"))
    assert img.shape == (32, 32, 3) and img.std() > 0


def test_generate_matches_library_and_official_images(native, tmp_path):
    """Seed 0 through the CLI equals the official image (NVIDIA's seed -> z convention), up to uint8 rounding."""
    assert run("generate", "--network", native, "--seeds", "0", "--outdir", tmp_path).exit_code == 0
    ref = np.load(FIXTURES / "sg2_tiny.npz")["img_psi100"][0]  # [C, H, W]
    ref8 = np.clip(ref.transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)
    ours = np.asarray(Image.open(tmp_path / "seed0000.png"))
    assert np.abs(ours.astype(int) - ref8.astype(int)).max() <= 1


def test_conditional_grayscale_model(tmp_path):
    res = run(
        "generate",
        "--network",
        FIXTURES / "sg2_tiny_cond.pkl",
        "--seeds",
        "1",
        "--class",
        "4",
        "--outdir",
        tmp_path,
    )
    assert res.exit_code == 0, res.output
    assert np.asarray(Image.open(tmp_path / "seed0001.png")).shape == (16, 16)


def test_mix_figure_layout(native, tmp_path):
    out = tmp_path / "fig.png"
    res = run(
        "mix",
        "--network",
        native,
        "--rows",
        "85,100,75",
        "--cols",
        "55,821,1789,3",
        "--styles",
        "0-3",
        "--out",
        out,
    )
    assert res.exit_code == 0, res.output
    fig = np.asarray(Image.open(out))
    assert fig.shape == (4 * 32, 5 * 32, 3)
    assert (fig[:32, :32] == 255).all()  # blank corner; header row and column hold the sources


def test_convert_which_and_env(native, tmp_path):
    from stylegan.io import load_networks

    res = run("convert", FIXTURES / "sg2_tiny.pkl", tmp_path / "d.safetensors", "--which", "D")
    assert res.exit_code == 0, res.output
    assert list(load_networks(tmp_path / "d.safetensors")) == ["D"]
    res = run("env")
    assert res.exit_code == 0 and "pure PyTorch" in res.output


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
        (["mix", "--network", "{native}", "--styles", "0-40"], "out of range"),
        (["convert", "{cond}", "{tmp}/x.bin"], "must end in .safetensors"),
        (["generate", "--network", "{native}", "--device", "cuda"], "no CUDA"),
    ],
)
def test_user_errors_are_one_line(args, message, native, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# not a model\n")
    subs = {"native": native, "cond": FIXTURES / "sg2_tiny_cond.pkl", "readme": readme, "tmp": tmp_path}
    res = run(*[a.format(**subs) for a in args])
    assert res.exit_code != 0
    assert message in res.output, res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


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
    """A StyleGAN (2019) model generates with psi 0.7 / cutoff 8 unless told otherwise, as NVIDIA's Gs did."""
    import torch

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
    G = stylegan1.Generator(g_cfg)
    G.mapping.w_avg.copy_(torch.randn(16))
    save_networks(tmp_path / "sg1.safetensors", {"G_ema": G})
    outs = {}
    for name, extra in [
        ("default", []),
        ("paper", ["--trunc", "0.7", "--trunc-cutoff", "8"]),
        ("off", ["--trunc", "1"]),
    ]:
        res = run(
            "generate", "--network", tmp_path / "sg1.safetensors", "--seeds", "5", "--outdir", tmp_path / name, *extra
        )
        assert res.exit_code == 0, res.output
        outs[name] = np.asarray(Image.open(tmp_path / name / "seed0005.png"))
    assert np.array_equal(outs["default"], outs["paper"])
    assert not np.array_equal(outs["default"], outs["off"])

"""`stylegan train` errors are one line (no traceback); --dry-run resolves options without training."""

import json

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from stylegan.cli.train import train


def _invoke(args):
    return CliRunner().invoke(train, args)


def _one_line_error(result, expected: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert expected in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    _one_line_error(_invoke(["--data", str(tmp_path / "empty"), "--outdir", str(tmp_path)]), "no images found")


def test_mixed_resolutions_need_resolution(tmp_path):
    data = tmp_path / "mixed"
    data.mkdir()
    for i, side in enumerate((16, 32)):
        PIL.Image.fromarray(np.zeros([side, side], np.uint8)).save(data / f"{i}.png")
    _one_line_error(_invoke(["--data", str(data), "--outdir", str(tmp_path)]), "different sizes")


def test_batch_not_divisible(faces, tmp_path, tiny_args):
    args = [*tiny_args, "--data", str(faces), "--outdir", str(tmp_path), "--batch", "6", "--batch-gpu", "4"]
    _one_line_error(_invoke(args), "not divisible")


def test_fixed_aug_needs_p(faces, tmp_path, tiny_args):
    _one_line_error(_invoke([*tiny_args, "--data", str(faces), "--aug", "fixed"]), "--aug fixed needs --p")


def test_resume_latest_without_runs(tmp_path):
    _one_line_error(_invoke(["--resume", "latest", "--outdir", str(tmp_path)]), "no run in")


def test_missing_data():
    result = _invoke([])
    assert result.exit_code != 0 and "--data is required" in result.output


def test_dry_run_resolves_without_writing(faces, tmp_path, tiny_args):
    result = _invoke([*tiny_args, "--data", str(faces), "--outdir", str(tmp_path / "runs"), "--dry-run"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["resolution"] == 16 and summary["num_images"] == 12 and summary["batch_gpu"] == 4
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("flag", [["--gpus", "0"], ["--cfg", "nope"], ["--target", "1.5"]])
def test_click_validates_ranges(flag):
    assert _invoke(["--data", "x", *flag]).exit_code == 2


def test_find_resume_state_accepts_latest_a_run_folder_or_a_state_file(tmp_path):
    from stylegan.training import ResumeError, find_resume_state

    for name, kimgs in (
        ("00000-a", ["000000.004", "000000.012"]),
        ("00001-b", ["000000.008"]),
        ("00002-c", []),
    ):
        run = tmp_path / name
        run.mkdir()
        (run / "config.json").write_text("{}")
        for k in kimgs:
            (run / f"training-state-{k}.pt").write_bytes(b"")
    assert find_resume_state("latest", tmp_path) == tmp_path / "00001-b" / "training-state-000000.008.pt"
    assert find_resume_state(str(tmp_path / "00000-a"), tmp_path).name == "training-state-000000.012.pt"
    state = tmp_path / "00000-a" / "training-state-000000.004.pt"
    assert find_resume_state(str(state), tmp_path) == state
    with pytest.raises(ResumeError, match="not a run folder"):
        find_resume_state(str(tmp_path / "00002-c"), tmp_path)


def test_unknown_augpipe(faces, tiny_args):
    _one_line_error(_invoke([*tiny_args, "--data", str(faces), "--augpipe", "nope", "--dry-run"]), "--augpipe")


def test_cpu_run_says_its_size_and_suggests_the_cpu_recipe(faces, tmp_path, tiny_options):
    from stylegan.distributed import ProcessInfo
    from stylegan.training.loop import CPU_RECIPE, setup_run

    lines: list[str] = []
    default_size = dict(cbase=None, cmax=None, z_dim=512, w_dim=512, map_depth=None, mbstd_group=None, batch=None)
    run = setup_run(tiny_options(data=str(faces), outdir=str(tmp_path), **default_size), ProcessInfo(),
                    say=lines.append)  # fmt: skip
    n = sum(p.numel() for p in run.G.parameters())
    assert lines[0] == f"run folder: {run.run_dir}"
    assert lines[1].startswith(f"CPU run: --cfg auto at 16x16, G {n / 1e6:.2f}M parameters, batch 32")
    assert CPU_RECIPE in lines[1] and f"--data {faces} --resolution 16" in lines[1] and n > 5_000_000
    tiny: list[str] = []
    setup_run(tiny_options(data=str(faces), outdir=str(tmp_path)), ProcessInfo(), say=tiny.append)
    assert tiny[1].startswith("CPU run: --cfg auto at 16x16") and CPU_RECIPE not in tiny[1]


def test_the_grid_of_reals_is_not_declared_generated(faces, tmp_path, tiny_options):
    """reals.png shows training images: no provenance mark and no AI-generated metadata on it."""
    import PIL.Image

    from stylegan.distributed import ProcessInfo
    from stylegan.forensics.metadata import read_metadata, says_generated
    from stylegan.training.loop import setup_run

    run = setup_run(tiny_options(data=str(faces), outdir=str(tmp_path)), ProcessInfo(), say=lambda line: None)
    chunks = read_metadata(PIL.Image.open(run.run_dir / "reals.png"))
    assert chunks.get("Software", "").startswith("stylegan") and not says_generated(chunks)
    assert not any(key.startswith("stylegan:") for key in chunks)

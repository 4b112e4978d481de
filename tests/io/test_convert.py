"""stylegan.io.convert_model and `stylegan convert`: refuses to overwrite, writes atomically, thin CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from stylegan.cli.main import main
from stylegan.io import ModelFormatError, OutputExistsError, convert_model, read_native_metadata

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs"
SRC = Path(__file__).resolve().parents[2] / "src" / "stylegan"


def test_convert_writes_the_chosen_networks(tmp_path):
    out = tmp_path / "all.safetensors"
    assert convert_model(FIXTURES / "sg2_tiny.pkl", out, which="all") == ["G", "D", "G_ema"]
    meta = read_native_metadata(out)
    assert list(meta["networks"]) == ["G", "D", "G_ema"] and meta["converted_from"] == "sg2_tiny.pkl"


def _only_g_ema(tmp_path: Path) -> Path:
    path = tmp_path / "g_ema.safetensors"
    if not path.exists():
        convert_model(FIXTURES / "sg2_tiny.pkl", path)
    return path


def test_existing_output_is_kept_without_force(tmp_path):
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="already exists"):
        convert_model(FIXTURES / "sg2_tiny.pkl", out)
    assert out.read_bytes() == b"precious"
    assert convert_model(FIXTURES / "sg2_tiny.pkl", out, force=True) == ["G_ema"]
    assert list(read_native_metadata(out)["networks"]) == ["G_ema"]


def test_cli_refuses_overwrite_in_one_line(tmp_path):
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"precious")
    res = CliRunner().invoke(main, ["convert", str(FIXTURES / "sg2_tiny.pkl"), str(out)])
    assert res.exit_code == 1 and out.read_bytes() == b"precious"
    assert res.output.strip() == f"Error: {out} exists; pass --force to overwrite it"
    res = CliRunner().invoke(main, ["convert", str(FIXTURES / "sg2_tiny.pkl"), str(out), "--force"])
    assert res.exit_code == 0, res.output
    assert list(read_native_metadata(out)["networks"]) == ["G_ema"]


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    """An error (or Ctrl-C) while writing leaves neither a partial output nor a temporary file."""
    out = tmp_path / "out.safetensors"

    def interrupted(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr("safetensors.torch.save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_model(FIXTURES / "sg2_tiny.pkl", out)
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        convert_model(FIXTURES / "sg2_tiny.pkl", out, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.safetensors"] and out.read_bytes() == b"old"


def test_converted_generator_equals_the_pickle(tmp_path):
    from stylegan.io import load_generator

    G_pkl, G_native = load_generator(FIXTURES / "sg2_tiny.pkl"), load_generator(_only_g_ema(tmp_path))
    z = torch.randn(2, G_pkl.z_dim)
    torch.testing.assert_close(G_native(z, noise_mode="const"), G_pkl(z, noise_mode="const"), rtol=0, atol=0)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("package", ["compat", "io"])
def test_imports_flow_one_way(package):
    """io may use compat's readers; compat never imports io; neither imports click (library code)."""
    for path in sorted((SRC / package).rglob("*.py")):
        found = _imports(path)
        assert not any(name == "click" or name.startswith("click.") for name in found), path
        if package == "compat":
            assert not any(name.startswith("stylegan.io") for name in found), path


def test_missing_network_is_one_line(tmp_path):
    with pytest.raises(ModelFormatError, match=r"g_ema.safetensors holds no D \(it has G_ema\)"):
        convert_model(_only_g_ema(tmp_path), tmp_path / "d.safetensors", which="D")
    with pytest.raises(ValueError, match="must end in .safetensors"):
        convert_model(FIXTURES / "sg2_tiny.pkl", tmp_path / "x.pt")


def test_format_errors_are_one_short_line_whatever_the_file_put_in_them():
    """A mutated pickle can put an array where a name belongs; the error stays one line of bounded length."""
    import numpy as np

    from stylegan.io import ModelFormatError

    err = ModelFormatError(f"TensorFlow Network {np.arange(10_000).reshape(100, 100)!r} lacks a version")
    assert "\n" not in str(err) and len(str(err)) <= ModelFormatError.MAX_MESSAGE
    assert str(ModelFormatError("a\n  b")) == "a b"

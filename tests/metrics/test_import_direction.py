"""Imports flow one way: training may import metrics, metrics never imports training; library code never click."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "stylegan"


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions (absolute names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


LAYERS = [
    ("metrics", "stylegan.training"),
    ("distributed.py", "stylegan.training"),
    ("distributed.py", "stylegan.metrics"),
]


@pytest.mark.parametrize("package,forbidden", LAYERS)
def test_lower_layers_do_not_import_higher_ones(package, forbidden):
    files = [SRC / package] if package.endswith(".py") else sorted((SRC / package).rglob("*.py"))
    offenders = {f.name: m for f in files for m in _imported_modules(f) if m.startswith(forbidden)}
    assert not offenders


@pytest.mark.parametrize("package", ["metrics", "training"])
def test_library_code_does_not_import_click(package):
    offenders = [f.name for f in (SRC / package).rglob("*.py") if any(m.split(".")[0] == "click"
                                                                      for m in _imported_modules(f))]  # fmt: skip
    assert not offenders


def test_the_scan_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from stylegan.training.distributed import spawn\n")
    assert "stylegan.training.distributed" in _imported_modules(probe)

"""The package's layering, checked on the source: nn <- networks <- the rest, only cli imports everything, no cycles
between packages, no click in library code. Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "stylegan"
# What each unit may import from stylegan (top-level modules are units too). Everything else is forbidden.
ALLOWED = {
    "nn": {"nn"},
    "device": set(),
    "networks": {"nn", "networks", "device"},
    "compat": {"compat", "networks", "nn", "device"},
    "io": {"io", "compat", "networks", "device"},
    "images": {"io", "forensics"},
    "forensics": {"forensics", "io"},
    "faces": {"faces", "images"},
    "data": {"data", "io", "images", "faces"},
    "distributed": set(),
}
LIBRARY = [
    "nn",
    "networks",
    "compat",
    "io",
    "data",
    "faces",
    "metrics",
    "training",
    "editing",
    "images",
    "forensics",
    "device",
    "distributed",
]


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    """Top-level stylegan units (and other top-level modules) a file imports, wherever in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        unit = _unit(path)
        deps = {m.split(".")[1] for m in _imports(path) if m.startswith("stylegan.")} - {unit}
        graph.setdefault(unit, set()).update(d for d in deps if (SRC / d).exists() or (SRC / f"{d}.py").exists())
    return graph


@pytest.mark.parametrize("unit", sorted(ALLOWED))
def test_lower_units_import_only_what_is_below_them(unit):
    assert _graph().get(unit, set()) - ALLOWED[unit] == set()


def test_no_cycles_between_packages():
    graph = _graph()
    graph.pop("__main__", None)
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join(path + (node,))}"
        if node in done:
            return
        for dep in sorted(graph.get(node, ())):
            visit(dep, path + (node,))
        done.add(node)

    for unit in sorted(graph):
        visit(unit, ())


def test_nothing_below_cli_imports_cli_or_click():
    offenders = sorted(
        f"{path.relative_to(SRC)}: {name}"
        for path in SRC.rglob("*.py")
        if _unit(path) in LIBRARY
        for name in _imports(path)
        if name.split(".")[0] == "click" or name.startswith("stylegan.cli")
    )
    assert offenders == []


def test_the_checker_sees_a_violation(tmp_path):
    """The scan is not vacuous: a function-level import upwards is found."""
    global SRC
    fake = tmp_path / "stylegan"
    (fake / "nn").mkdir(parents=True)
    (fake / "training").mkdir()
    (fake / "nn" / "ops.py").write_text("def f():\n    from stylegan.training import loop\n")
    real, SRC = SRC, fake
    try:
        assert _graph()["nn"] == {"training"}
    finally:
        SRC = real

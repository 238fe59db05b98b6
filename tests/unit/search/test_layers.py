"""Layering of the search packages, checked on their import statements (what an
import-linter `forbidden` contract says): search/ knows no HTTP, server or CLI, and the
embeddings workflow knows no engine, compiler or server (DESIGN.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import factflow

ROOT = Path(factflow.__file__).parent

FORBIDDEN = {
    "search": ("factflow.api", "factflow.server", "factflow.cli", "factflow.dataflows"),
    "workflows/embeddings": (
        "factflow.dataflows", "factflow.compiler", "factflow.server", "factflow.api",
        "factflow.cli", "factflow.search", "bytewax",
    ),
    "db/repositories/search_index.py": ("factflow.workflows", "factflow.search"),
    "db/repositories/search_queries.py": ("factflow.workflows", "factflow.search"),
}  # fmt: skip


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("area", sorted(FORBIDDEN))
def test_area_imports_nothing_above_it(area: str) -> None:
    target = ROOT / area
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert files, area
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in sorted(imported(path))
        if name.startswith(FORBIDDEN[area])
    ]
    assert not wrong, wrong


def test_the_check_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import factflow.api.app\nfrom factflow.server import x\nfrom . import y\n")
    assert imported(sample) == {"factflow.api.app", "factflow.server"}

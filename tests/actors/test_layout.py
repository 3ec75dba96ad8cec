"""The actor runtime's shape: small modules with a docstring, and no import of ``server``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ACTORS = Path(__file__).resolve().parents[2] / "actors"
MODULES = sorted(ACTORS.rglob("*.py"))


def test_there_are_modules_to_check() -> None:
    names = {p.name for p in MODULES}
    assert {"supervisor.py", "registry.py", "fanout.py", "placement.py", "actor.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ACTORS)))
def test_module_is_small_has_a_docstring_and_imports_nothing_of_server(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 450
    tree = ast.parse(text)
    if path.name != "__init__.py" or text.strip():
        assert ast.get_docstring(tree), "a module docstring says what it owns"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [(node.module or "").split(".")[0]]
        else:
            continue
        assert "server" not in roots, f"{path.name} imports server"

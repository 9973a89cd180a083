"""The layers DESIGN.md §1 draws: the domain imports no framework and nothing of the layers
around it; the services know no web framework and nothing of the API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "oms"
FRAMEWORKS = ("sqlalchemy", "psycopg", "alembic", "fastapi", "starlette", "pydantic",
              "pydantic_settings", "httpx", "jinja2", "typer", "rich", "nats")


def _imported(path: Path) -> set[str]:
    """Every module the file imports, wherever in the file (function bodies included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _offending(layer: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        bad = sorted(name for name in _imported(path)
                     if any(name == f or name.startswith(f"{f}.") for f in forbidden))
        if bad:
            found[str(path.relative_to(PACKAGE))] = bad
    return found


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("domain", (*FRAMEWORKS, "oms.adapters", "oms.services", "oms.api", "oms.settings")),
    ("services", ("fastapi", "starlette", "jinja2", "typer", "oms.api")),
])
def test_a_layer_imports_nothing_it_must_not(layer: str, forbidden: tuple[str, ...]) -> None:
    assert _offending(layer, forbidden) == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from sqlalchemy.orm import Session\n    import fastapi\n")
    assert _imported(module) == {"sqlalchemy.orm", "fastapi"}

"""The README's configuration table names every setting, with its default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from oms.settings import Settings

README = Path(__file__).parents[2] / "README.md"
ROW = re.compile(r"^\| `(OMS_[A-Z0-9_]+)` \| ([^|]+) \| ([^|]+) \|$")


def _documented() -> dict[str, tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [ROW.match(line) for line in section.splitlines() if line.startswith("| `OMS_")]
    assert all(rows), [line for line in section.splitlines() if line.startswith("| `OMS_")]
    return {m[1]: (m[2].strip(), m[3].strip()) for m in rows if m}


def _shown(default: Any) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, dict):
        return "{}" if not default else repr(default)
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    documented = _documented()
    variables = {f"OMS_{name.upper()}": field.default
                 for name, field in Settings.model_fields.items()}
    assert sorted(set(variables) - set(documented)) == []
    assert sorted(set(documented) - set(variables)) == []
    for variable, default in variables.items():
        shown, meaning = documented[variable]
        assert shown.split(" (")[0].strip("`") == _shown(default), variable
        assert meaning, variable

"""The README's five-minute tour runs, command by command, against the demo data that
`make run` loads: every request it sends is answered 2xx."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.demo.loader import load_demo
from oms.domain.access import Role
from oms.services import apikeys

README = Path(__file__).parents[2] / "README.md"
#: Every curl of the tour reports its status and URL on stderr.
REPORTING_CURL = ('curl() { command curl -sS -w "%{stderr}[%{http_code} %{url_effective}]\\n" '
                  '"$@"; }\n')


def _tour() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## A five-minute tour\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("```\n", 1)[0]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the tour is written with curl")
def test_the_readme_tour_runs_against_the_demo_data(engine: Engine, live_url: str,
                                                    tmp_path: Path) -> None:
    load_demo(engine)
    with UnitOfWork(engine) as uow:
        _, key = apikeys.create_key(uow, Role.ADMIN, [], "demo admin")
    (tmp_path / ".oms-demo-key").write_text(key + "\n")
    tour = _tour()
    assert "URL=http://127.0.0.1:8000" in tour
    script = "set -eu\n" + REPORTING_CURL + tour.replace("http://127.0.0.1:8000", live_url)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    answers = re.findall(r"^\[(\d{3}) (\S+)\]$", done.stderr, re.MULTILINE)
    # (loops send some of them more than once)
    assert len(answers) >= len(re.findall(r"\bcurl -s\b", tour))
    assert [a for a in answers if not a[0].startswith("2")] == [], done.stdout[-2000:]
    assert "urn:oms:problem" not in done.stdout

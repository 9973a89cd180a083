"""The API documentation pages work without the internet: Swagger UI and ReDoc come from
this server, not from a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from oms.api.app import create_app
from oms.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    # The pages touch no database.
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'oms.db'}"))
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(("page", "assets"), [
    ("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")),
    ("/redoc", ("redoc.standalone.js",)),
])
def test_documentation_pages_load_everything_from_this_server(
        client: TestClient, page: str, assets: tuple[str, ...]) -> None:
    html = client.get(page)
    assert html.status_code == 200
    assert "text/html" in html.headers["content-type"]
    # Every script, style sheet and icon is a path on this server.
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html.text)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", html.text)
    assert urls, html.text
    assert [u for u in urls if not u.startswith("/")] == []
    assert not re.search(r"https?:|//cdn", html.text), html.text
    for asset in assets:
        [url] = [u for u in urls if u.endswith(asset)]
        got = client.get(url)
        assert got.status_code == 200, url
        assert len(got.content) > 100_000, url
    assert client.get("/openapi.json").status_code == 200

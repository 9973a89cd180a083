"""Helpers shared by the API tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient


class Api:
    """A TestClient that sends one API key."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def _h(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**self.headers, **(extra or {})}

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers=self._h(kw.pop("headers", None)), **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self.client.put(url, headers=self._h(kw.pop("headers", None)), **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers=self._h(kw.pop("headers", None)), **kw)

    def patch(self, url: str, **kw: Any) -> Any:
        return self.client.patch(url, headers=self._h(kw.pop("headers", None)), **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.client.delete(url, headers=self._h(kw.pop("headers", None)), **kw)


def location_body(city: str = "Berlin", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "store",
        "name": f"{city} store",
        "address": {"line1": "Alexanderplatz 1", "city": city, "postal_code": "10178",
                    "country": "DE", "lat": 52.5219, "lon": 13.4132},
        "capabilities": ["ship", "pickup", "returns"],
        "priority": 10,
        "active": True,
        "timezone": "Europe/Berlin",
    }
    body.update(overrides)
    return body


def product_body(name: str = "Running shirt", barcode: str | None = None,
                 **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "barcodes": [{"type": "ean13", "value": barcode}] if barcode else [],
        "price": {"amount": "19.90", "currency": "EUR"},
        "tax_class": "standard",
    }
    body.update(overrides)
    return body


def problem(response: Any, status: int) -> dict[str, Any]:
    """The body of an RFC 9457 error answer, once its status and shape are checked."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert {"type", "title", "detail"} <= body.keys(), body
    return body


def error_fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


@contextlib.contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free port until the block ends; its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)

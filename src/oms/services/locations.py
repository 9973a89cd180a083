"""Use cases of locations (stores, DCs, 3PLs)."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from oms.adapters.db.stored import Stored
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.adapters.egress import literal_refusal
from oms.domain.errors import FieldError, NotFound, ValidationFailed
from oms.domain.events import Event, utcnow
from oms.domain.locations import Location
from oms.schemas import location_out


def put_location(uow: UnitOfWork, location: Location, *, allow_private: bool = False
                 ) -> tuple[dict[str, Any], bool]:
    """Create or replace a location. A callback URL naming a private or metadata address is
    refused unless private targets are allowed; a name is checked when a request is sent."""
    url = location.fulfillment_callback_url
    refused = None if url is None or allow_private else literal_refusal(
        _address_form(urlsplit(url).hostname or ""))
    if refused is not None:
        field = "fulfillment_callback_url"
        raise ValidationFailed(f"{field}: {refused}", [FieldError(field, refused)])
    now = utcnow()
    version, created = uow.locations.upsert_many([location], now)[location.id]
    uow.reference_changed()
    body = location_out(location, version, now)
    uow.record(Event("location.upserted", location.id, version, body, now))
    uow.commit()
    return body, created


def _address_form(host: str) -> str:
    """An IPv4 address written as the resolver also reads one ("0x7f000001", "127.1", "0")
    in its usual form; any other host as it is. The URL is kept as it was given."""
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return host


def get_location(uow: UnitOfWork, location_id: str) -> Stored[Location]:
    stored = uow.locations.get(location_id)
    if stored is None:
        raise NotFound(f"no location with id {location_id!r}")
    return stored

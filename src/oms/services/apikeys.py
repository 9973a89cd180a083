"""API keys: created by the CLI, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

from oms.adapters.db.api_key_repositories import ApiKeyRecord
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.access import LOCATION_BOUND, Principal, Role
from oms.domain.errors import FieldError, NotFound, ValidationFailed
from oms.domain.events import Event, utcnow
from oms.domain.ids import new_id

KEY_PREFIX = "oms_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    uow: UnitOfWork, role: Role, location_ids: Sequence[str], name: str
) -> tuple[ApiKeyRecord, str]:
    """Returns the stored record and the plain key, which is never stored or shown again."""
    if role in LOCATION_BOUND and not location_ids:
        raise ValidationFailed(
            f"a {role.value} key must name at least one location",
            [FieldError("location", "required for manager and associate keys")],
        )
    if role not in LOCATION_BOUND and location_ids:
        raise ValidationFailed(f"a {role.value} key is not bound to locations")
    unknown = set(location_ids) - uow.locations.existing(location_ids)
    if unknown:
        raise NotFound(f"no location {', '.join(sorted(unknown))}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        id=new_id(), name=name, prefix=key[:12], role=role.value,
        location_ids=tuple(sorted(set(location_ids))), created_at=utcnow(), revoked_at=None,
    )
    uow.api_keys.add(record, hash_key(key))
    uow.record(Event("api_key.created", record.id, 1, key_out(record), record.created_at))
    uow.commit()
    return record, key


def revoke_key(uow: UnitOfWork, key_id: str) -> ApiKeyRecord:
    """Refuse the key from the next request on."""
    now = utcnow()
    if not uow.api_keys.revoke(key_id, now):
        raise NotFound(f"no active key {key_id}")
    record = uow.api_keys.get(key_id)
    assert record is not None
    uow.record(Event("api_key.revoked", record.id, 2, key_out(record), now))
    uow.commit()
    return record


def key_out(record: ApiKeyRecord) -> dict[str, Any]:
    """What a key is, never the key: not its hash, nor its first characters."""
    return {"id": record.id, "name": record.name, "role": record.role,
            "location_ids": list(record.location_ids),
            "created_at": record.created_at.isoformat(),
            "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None}


def authenticate(uow: UnitOfWork, key_hash: str) -> Principal | None:
    """Who holds the key with this hash (`hash_key`), or None for an unknown or revoked key."""
    record = uow.api_keys.by_hash(key_hash)
    if record is None or record.revoked_at is not None:
        return None
    return Principal(record.id, record.name, Role(record.role), frozenset(record.location_ids))

"""Who may do what: roles, and the locations a store role is bound to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from oms.domain.errors import Forbidden


class Role(StrEnum):
    ADMIN = "admin"
    INTEGRATOR = "integrator"
    MANAGER = "manager"
    ASSOCIATE = "associate"


#: Store roles act only at the locations their key names.
LOCATION_BOUND = frozenset({Role.MANAGER, Role.ASSOCIATE})


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: Role
    location_ids: frozenset[str]

    def has_role(self, roles: Iterable[Role]) -> bool:
        return self.role in set(roles)

    def may_act_at(self, location_id: str) -> bool:
        return self.role not in LOCATION_BOUND or location_id in self.location_ids

    def require_at(self, location_id: str) -> None:
        """Refuse unless this key may act at the location."""
        if not self.may_act_at(location_id):
            raise Forbidden(f"this key is not allowed at location {location_id!r}")

"""Who may do what: roles, the locations a store role is bound to, and the one rule of what
each key sees."""

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
class Scope:
    """What a key sees: everything (admins, integrators), or what touches the locations a
    store key is bound to. It is the one rule every read and every write goes through:

    - an order is seen at a location it touches: the store that sold it, an item routed
      there, a fulfilment request issued there (one since rejected too), its pickup store,
      the location it was pre-routed to; a return taken there will touch it as well.
      Seeing an order is seeing all of it: its items, payments, events, routing decisions,
      and its requests and shipments listed in it;
    - a customer is seen with any order of theirs that is seen;
    - a fulfilment request and a shipment are their location's work, seen only there;
    - an order is changed (cancelled, rerouted) only by a key bound to every location that
      fulfils it (`may_change_order`), and stock only at the key's locations (`covers`).

    What a key does not see does not exist for it: reading or acting on it answers 404, as
    for an id that was never issued, and lists leave it out, so nobody learns what other
    stores hold. 403 is kept for what it sees but may not do: a route its role may not use,
    a location that is not its own (locations are not secret), an order also fulfilled
    elsewhere. Products, locations, stock levels, availability and routing rules hold no
    customer's data: every key reads them. The event feed and webhooks carry every order's
    customer: only admin and integrator keys read them.

    The repositories state this rule in SQL (adapters/db/scoping.py) so that a list is
    filtered in its query, not after it.
    """

    #: None: every location.
    locations: frozenset[str] | None = None

    def covers(self, location_id: str | None) -> bool:
        return self.locations is None or location_id in self.locations

    def may_change_order(self, fulfilled_at: Iterable[str]) -> bool:
        """Whether the key may change an order fulfilled at these locations (an order fulfilled
        nowhere yet, e.g. on hold, only by keys not bound to locations)."""
        if self.locations is None:
            return True
        where = set(fulfilled_at)
        return bool(where) and where <= self.locations


EVERYTHING = Scope()


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: Role
    location_ids: frozenset[str]

    @property
    def scope(self) -> Scope:
        return Scope(self.location_ids) if self.role in LOCATION_BOUND else EVERYTHING

    def has_role(self, roles: Iterable[Role]) -> bool:
        return self.role in set(roles)

    def may_act_at(self, location_id: str) -> bool:
        return self.scope.covers(location_id)

    def require_at(self, location_id: str) -> None:
        """Refuse unless this key may act at the location."""
        if not self.may_act_at(location_id):
            raise Forbidden(f"this key is not allowed at location {location_id!r}")

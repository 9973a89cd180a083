from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field, model_validator

from oms.api.deps import Admins, AnyRole, ReadUow, Uow
from oms.api.routing import JsonBodyRoute
from oms.domain.errors import FieldError, NotFound
from oms.domain.events import utcnow
from oms.domain.orders import ServiceLevel
from oms.schemas import AsValue, Code, Country, Strict

router = APIRouter(prefix="/v1/routing", tags=["routing"], route_class=JsonBodyRoute)


#: Locations tried together: the best of them by the routing criteria is chosen.
Group = Annotated[list[Code], Field(min_length=1, max_length=100,
                                    json_schema_extra={"uniqueItems": True})]


class RuleIn(Strict):
    service_level: Annotated[ServiceLevel, AsValue]
    country: Country
    groups: list[Group] = Field(min_length=1, max_length=20,
                                description="Location groups, tried in this order")


class RulesIn(Strict):
    rules: list[RuleIn] = Field(max_length=1000)

    @model_validator(mode="after")
    def _one_per_key(self) -> RulesIn:
        keys = [(r.service_level, r.country) for r in self.rules]
        if len(keys) != len(set(keys)):
            raise ValueError("one rule per service level and country")
        return self


def _rules_out(uow: ReadUow) -> dict[str, Any]:
    return {"rules": [{"service_level": r["service_level"], "country": r["country"],
                       "groups": r["groups"]} for r in uow.routing.rules()]}


@router.put("/rules", summary="Replace the routing rules")
def put_rules(body: RulesIn, uow: Uow, _: Admins) -> dict[str, Any]:
    named = [(n, loc) for n, r in enumerate(body.rules) for g in r.groups for loc in g]
    known = uow.locations.existing(loc for _, loc in named)
    unknown = [FieldError(f"rules.{n}.groups", f"no location {loc!r}")
               for n, loc in named if loc not in known]
    if unknown:
        raise NotFound("; ".join(e.message for e in unknown), unknown)
    now = utcnow()
    uow.routing.put_rules([{"service_level": r.service_level.value, "country": r.country,
                            "groups": r.groups} for r in body.rules], now)
    uow.commit()
    return _rules_out(uow)


@router.get("/rules", summary="The routing rules")
def get_rules(uow: ReadUow, _: AnyRole) -> dict[str, Any]:
    return _rules_out(uow)

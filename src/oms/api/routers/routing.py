from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import Field, model_validator

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api import models
from oms.api.deps import Admins, AnyRole, ReadUow
from oms.api.openapi import answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx
from oms.domain.errors import FieldError, NotFound
from oms.domain.orders import ServiceLevel
from oms.schemas import AsValue, Code, Country, Strict
from oms.services import routing as routing_rules

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


def _rules_out(uow: UnitOfWork) -> dict[str, Any]:
    return {"rules": [{"service_level": r["service_level"], "country": r["country"],
                       "groups": r["groups"]} for r in uow.routing.rules()]}


@router.put("/rules", summary="Replace the routing rules", response_model=models.RoutingRules,
            responses=problems(403, (404, "A rule names no known location")))
def put_rules(body: RulesIn, tx: WriteTx, _: Admins) -> Response:
    uow = tx.uow
    named = [(n, loc) for n, r in enumerate(body.rules) for g in r.groups for loc in g]
    known = uow.locations.existing(loc for _, loc in named)
    unknown = [FieldError(f"rules.{n}.groups", f"no location {loc!r}")
               for n, loc in named if loc not in known]
    if unknown:
        raise NotFound("; ".join(e.message for e in unknown), unknown)
    routing_rules.replace_rules(uow, [{"service_level": r.service_level.value,
                                       "country": r.country, "groups": r.groups}
                                      for r in body.rules])
    return tx.done(_rules_out(uow))


@router.get("/rules", summary="The routing rules", response_model=models.RoutingRules)
def get_rules(uow: ReadUow, _: AnyRole) -> Response:
    return answer(_rules_out(uow))

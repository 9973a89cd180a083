"""What a routing run keeps: a compact account of what it decided, and the inputs that let any
location's part in it be told again later.

Per item: the location chosen and why, its score, the few best locations passed over with
theirs, and how many other locations lost for each reason. That is what people read first.

"Why not that one?" for any other location is answered from the run's inputs: the conditions
of the order, the locations that were inactive or lacked the capability it needed, and for
each eligible location that held any of its skus, its priority, distance and ATP at the time.
Replaying the plain routing (`routing.assign`, `routing.consider`) over those gives the same
consideration the run would have recorded for it; an eligible location not among them held
none of the skus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from oms.domain.routing import (
    Conditions,
    Consideration,
    Rank,
    ReasonCode,
    RoutingItem,
    RoutingRule,
    Score,
    StockKey,
    Verdict,
    assign,
    consider,
    ineligibility,
    passed_over_reason,
    rank_of,
    rule_groups,
    verdict_of,
)

#: How many of the best locations passed over are kept per item.
ALTERNATIVES = 3


@dataclass(frozen=True)
class Alternative:
    """A location passed over: what it lost on and its score. The words are built when the
    run is read (`decisions_view`), from the two scores."""

    location_id: str
    code: ReasonCode
    score: Score


@dataclass(frozen=True)
class ItemDecision:
    item_id: str
    #: None: the item waits on hold, for `reason`.
    location_id: str | None
    reason: str
    score: Score | None
    #: The best locations passed over, best first.
    alternatives: tuple[Alternative, ...]
    #: Every location not chosen, counted by why.
    not_chosen: Mapping[ReasonCode, int]


#: A column of numbers: a sequence, or a numpy array as the fast path keeps it.
Numbers = Sequence[int] | NDArray[np.int64]


@dataclass(frozen=True)
class Candidates:
    """The eligible locations that held any of the order's skus, as the run saw them."""

    location_ids: Sequence[str] = ()
    priority: Numbers = ()
    distance_km: Sequence[float] | NDArray[np.float64] = ()
    #: Per sku, ATP (clamped at 0) at each candidate, in `location_ids` order.
    atp: Mapping[str, Numbers] = field(default_factory=dict)
    future_atp: Mapping[str, Numbers] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInputs:
    items: tuple[RoutingItem, ...]
    conditions: Conditions
    #: Locations that were inactive, and active ones without the capability the order needs.
    inactive: frozenset[str]
    incapable: frozenset[str]
    candidates: Candidates


@dataclass(frozen=True)
class Decision:
    """A routing run: where each item goes or why it waits, the compact account, and the
    inputs that explain any location (None: nothing was weighed)."""

    assignments: dict[str, str]
    on_hold: dict[str, str]
    items: tuple[ItemDecision, ...]
    inputs: RunInputs | None


def explain(inputs: RunInputs, location_ids: Iterable[str]) -> list[Consideration]:
    """Each location's consideration for each item of the run, as the plain routing would
    have recorded it."""
    conditions, cand = inputs.conditions, inputs.candidates
    group_of = rule_groups(conditions.rule)
    ranks = {loc: Rank(group_of.get(loc), priority, distance, loc)
             for loc, priority, distance in zip(cand.location_ids, cand.priority,
                                                cand.distance_km, strict=True)}
    at_start: tuple[dict[StockKey, int], dict[StockKey, int]] = ({}, {})
    for pool, table in zip(at_start, (cand.atp, cand.future_atp), strict=True):
        for sku, values in table.items():
            pool.update(((loc, sku), v) for loc, v in zip(cand.location_ids, values,
                                                           strict=True))
    rounds = assign(inputs.items, cand.location_ids, ranks, at_start)
    found = []
    for location_id in location_ids:
        ineligible = ineligibility(location_id, conditions, group_of,
                                   active=location_id not in inputs.inactive,
                                   capable=location_id not in inputs.incapable)
        for item in inputs.items:
            if ineligible is None:
                found.append(consider(item, location_id, ranks, at_start, rounds))
            else:
                found.append(Consideration(item.item_id, location_id, Verdict.INELIGIBLE,
                                           ineligible[1], ineligible[0]))
    return found


def not_a_location_yet(item_ids: Iterable[str], location_id: str) -> list[Consideration]:
    return [Consideration(item_id, location_id, Verdict.INELIGIBLE,
                          "not a location yet when this run ran", ReasonCode.NOT_A_LOCATION_YET)
            for item_id in item_ids]


def not_weighed(on_hold: Mapping[str, str], location_id: str) -> list[Consideration]:
    """A run that weighed no location (the stock kept changing under it)."""
    return [Consideration(item_id, location_id, Verdict.PASSED_OVER,
                          f"no location was weighed: {reason}", ReasonCode.NOT_WEIGHED)
            for item_id, reason in on_hold.items()]


# -- as stored ----------------------------------------------------------------------------------


def score_json(score: Score | None) -> dict[str, Any] | None:
    if score is None:
        return None
    return {"takes": score.takes, "rule_group": score.rule_group, "priority": score.priority,
            "distance_km": score.distance_km, "atp_left": score.atp_left}


def consideration_json(c: Consideration) -> dict[str, Any]:
    return {"item_id": c.item_id, "location_id": c.location_id, "verdict": c.verdict.value,
            "code": c.code.value, "reason": c.reason, "score": score_json(c.score)}


def consideration_from_json(c: Mapping[str, Any]) -> Consideration:
    code = ReasonCode(c["code"])
    return Consideration(c["item_id"], c["location_id"], verdict_of(code), c["reason"], code,
                         None if c.get("score") is None else Score(**c["score"]))


def decisions_json(decisions: Sequence[ItemDecision]) -> list[dict[str, Any]]:
    """As the run keeps them, which is how GET /v1/orders/{id}/routing-decisions shows them."""
    return [{
        "item_id": d.item_id, "location_id": d.location_id, "reason": d.reason,
        "score": score_json(d.score),
        "alternatives": [{"location_id": a.location_id, "code": a.code.value,
                          "score": score_json(a.score)} for a in d.alternatives],
        "not_chosen": {code.value: n for code, n in sorted(d.not_chosen.items())},
    } for d in decisions]


def decisions_view(stored: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The stored account with every location passed over told in words, as
    GET /v1/orders/{id}/routing-decisions shows it. Runs kept before the words were left to
    the reader carry their own."""
    view = []
    for d in stored:
        chosen = None if d["score"] is None else rank_of(Score(**d["score"]), d["location_id"])
        view.append({**d, "alternatives": [
            a if "reason" in a or chosen is None else {**a, "reason": passed_over_reason(
                ReasonCode(a["code"]), rank_of(Score(**a["score"]), a["location_id"]), chosen)}
            for a in d["alternatives"]]})
    return view


def inputs_json(inputs: RunInputs) -> dict[str, Any]:
    c, cand = inputs.conditions, inputs.candidates
    rule = c.rule
    return {
        "items": [[i.item_id, i.sku, i.quantity, i.preorder] for i in inputs.items],
        "service_level": c.service_level,
        "pickup_location_id": c.pickup_location_id,
        "required_location_id": c.required_location_id,
        "excluded": sorted(c.excluded),
        "rule": None if rule is None else {
            "service_level": rule.service_level, "country": rule.country,
            "groups": [list(g) for g in rule.groups]},
        "inactive": sorted(inputs.inactive),
        "incapable": sorted(inputs.incapable),
        # The columns as they are: numpy arrays are written by the JSON columns' encoder
        # (`adapters.db.types.dumps`) far faster than lists of Python numbers are built.
        "candidates": {
            "location_ids": cand.location_ids, "priority": cand.priority,
            "distance_km": cand.distance_km, "atp": cand.atp, "future_atp": cand.future_atp,
        },
    }


def inputs_from_json(doc: Mapping[str, Any]) -> RunInputs:
    rule = doc["rule"]
    cand = doc["candidates"]
    return RunInputs(
        items=tuple(RoutingItem(item_id, sku, quantity, preorder)
                    for item_id, sku, quantity, preorder in doc["items"]),
        conditions=Conditions(
            doc["service_level"], doc["pickup_location_id"], doc["required_location_id"],
            frozenset(doc["excluded"]),
            None if rule is None else RoutingRule(rule["service_level"], rule["country"],
                                                  tuple(tuple(g) for g in rule["groups"]))),
        inactive=frozenset(doc["inactive"]),
        incapable=frozenset(doc["incapable"]),
        candidates=Candidates(
            tuple(cand["location_ids"]), tuple(cand["priority"]), tuple(cand["distance_km"]),
            {sku: tuple(v) for sku, v in cand["atp"].items()},
            {sku: tuple(v) for sku, v in cand["future_atp"].items()}),
    )


def explain_stored(inputs: Mapping[str, Any] | None, on_hold: Mapping[str, str],
                   location_id: str) -> list[Consideration]:
    """A location's part in a stored run. Runs kept before the compact record carry every
    consideration they made instead of their inputs."""
    if inputs is None:
        return not_weighed(on_hold, location_id)
    if "considerations" in inputs:
        return [consideration_from_json(c) for c in inputs["considerations"]
                if c["location_id"] == location_id]
    return explain(inputs_from_json(inputs), [location_id])

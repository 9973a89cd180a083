"""Changes of configuration are events like any other: webhook subscriptions, routing rules
and API keys; their payloads never carry a secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from oms.cli import app as cli
from tests.helpers import Api, location_body
from tests.ordering import events


def _kinds(found: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(e["type"], e["sequence"]) for e in found]


def test_webhook_subscription_changes_are_events(api: Api) -> None:
    created = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/oms",
                                             "event_types": ["order.*"]})
    assert created.status_code == 201, created.text
    sub = created.json()
    secrets = [sub["secret"]]
    changed = api.client.patch(f"/v1/webhooks/{sub['id']}", headers=api.headers,
                               json={"event_types": ["order.*", "shipment.*"]})
    assert changed.status_code == 200, changed.text
    rotated = api.post(f"/v1/webhooks/{sub['id']}/rotate-secret", json={})
    assert rotated.status_code == 200, rotated.text
    secrets.append(rotated.json()["secret"])
    assert api.client.delete(f"/v1/webhooks/{sub['id']}",
                             headers=api.headers).status_code == 204

    found = events(api, entity_id=sub["id"])
    assert _kinds(found) == [
        ("webhook_subscription.created", 1), ("webhook_subscription.updated", 2),
        ("webhook_subscription.secret_rotated", 3), ("webhook_subscription.deleted", 4)]
    created_event, updated, rotation, deleted = (e["payload"] for e in found)
    assert (created_event["url"], created_event["event_types"]) == (
        "http://127.0.0.1:9/oms", ["order.*"])
    assert (updated["event_types"], updated["changed"]) == (
        ["order.*", "shipment.*"], ["event_types"])
    assert rotation["previous_secret_expires_at"] == rotated.json()[
        "previous_secret_expires_at"]
    assert deleted == {"id": sub["id"], "url": "http://127.0.0.1:9/oms"}
    everything = json.dumps(found)
    assert "whsec_" not in everything
    assert not [s for s in secrets if s.removeprefix("whsec_") in everything]
    assert not [e for e in found if "secret" in e["payload"]]


def test_a_change_that_changes_nothing_is_no_event(api: Api) -> None:
    sub = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/oms",
                                         "event_types": ["order.*"]}).json()
    assert api.client.patch(f"/v1/webhooks/{sub['id']}", headers=api.headers,
                            json={}).status_code == 200
    assert _kinds(events(api, entity_id=sub["id"])) == [("webhook_subscription.created", 1)]


def test_replacing_the_routing_rules_is_an_event(api: Api) -> None:
    for location_id in ("dc-kassel", "store-berlin"):
        assert api.put(f"/v1/locations/{location_id}",
                       json=location_body()).status_code in (200, 201)
    first = [{"service_level": "standard", "country": "DE",
              "groups": [["dc-kassel"], ["store-berlin"]]}]
    second = [{"service_level": "express", "country": "DE", "groups": [["store-berlin"]]}]
    for rules in (first, second, []):
        r = api.put("/v1/routing/rules", json={"rules": rules})
        assert r.status_code == 200, r.text

    found = events(api, type="routing.*")
    assert _kinds(found) == [("routing.rules_replaced", n) for n in (1, 2, 3)]
    assert {e["entity_id"] for e in found} == {"routing-rules"}
    assert [e["payload"]["rules"] for e in found] == [first, second, []]


@pytest.mark.usefixtures("cli_env")
def test_api_keys_made_and_revoked_are_events(api: Api) -> None:
    made = CliRunner().invoke(cli, ["apikey", "create", "--role", "integrator",
                                    "--name", "erp"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    listed = CliRunner().invoke(cli, ["apikey", "list", "--json"])
    [record] = [json.loads(line) for line in listed.stdout.splitlines()
                if json.loads(line)["name"] == "erp"]
    revoked = CliRunner().invoke(cli, ["apikey", "revoke", record["id"]])
    assert revoked.exit_code == 0, revoked.output
    again = CliRunner().invoke(cli, ["apikey", "revoke", record["id"]])
    assert again.exit_code == 2
    assert "no active key" in again.stderr

    found = events(api, entity_id=record["id"])
    assert _kinds(found) == [("api_key.created", 1), ("api_key.revoked", 2)]
    made_event, revoked_event = (e["payload"] for e in found)
    assert made_event == {"id": record["id"], "name": "erp", "role": "integrator",
                          "location_ids": [], "created_at": record["created_at"],
                          "revoked_at": None}
    assert revoked_event["revoked_at"] is not None
    everything = json.dumps(found)
    assert key not in everything
    assert record["prefix"] not in everything

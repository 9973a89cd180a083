"""What a webhook subscriber gets, where it may point, and when a failed delivery is tried
again."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from oms.domain.events import EVENT_TYPES, Event
from oms.domain.retries import SCHEDULE, delay_after
from oms.domain.webhooks import (
    GIVE_UP_AFTER,
    MAX_RETRY_AFTER,
    check_event_types,
    check_url,
    judge,
    matches,
)

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def test_types_match_exactly_by_prefix_or_all() -> None:
    assert matches("order.created", ["order.created"])
    assert matches("order.item_routed", ["order.*"])
    assert not matches("orders_report.created", ["order.*"])
    assert not matches("order", ["order.*"])
    assert matches("anything.at_all", ["*"])
    assert not matches("shipment.created", ["order.*", "payment.captured"])


@pytest.mark.parametrize("bad", ["Order.created", "order.", "order*", ".order", "order.**", ""])
def test_malformed_type_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an event type"):
        check_event_types([bad])


def test_a_type_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        check_event_types(["order.*", "order.*"])


@pytest.mark.parametrize("url", ["ftp://x.example/a", "erp.example/hook", "http:///nohost",
                                 "https://user:pw@erp.example/hook"])
def test_only_plain_http_urls_are_targets(url: str) -> None:
    with pytest.raises(ValueError, match=r"http or https URL with a host|credentials"):
        check_url(url)


@pytest.mark.parametrize("url", ["https://a..b/hook", "https://" + "a" * 64 + ".example/hook",
                                 "https://-erp.example/hook", "http://erp example/hook"])
def test_a_target_names_a_host_dns_can_hold(url: str) -> None:
    with pytest.raises(ValueError, match="neither a DNS name nor an IP address"):
        check_url(url)


@pytest.mark.parametrize("url", ["https://erp.example/hook", "https://erp.example./hook",
                                 "http://wms_1.dc.example:8080/oms", "https://[2606:4700::1]/h",
                                 "https://93.184.215.14/hook", "https://\u00fcber.example/h"])
def test_names_and_addresses_are_hosts(url: str) -> None:
    assert check_url(url) == url


def test_the_schedule_is_the_standard_webhooks_one_with_jitter() -> None:
    rng = random.Random(7)
    for failures, base in enumerate(SCHEDULE):
        got = delay_after(failures, rng)
        assert base * 0.9 <= got <= base * 1.1
    assert delay_after(50, rng) <= dt.timedelta(hours=11)


def test_only_2xx_delivers() -> None:
    assert judge(204, None, 1, NOW, NOW).delivered
    for code in (None, 301, 400, 500):
        outcome = judge(code, None, 1, NOW, NOW)
        assert not outcome.delivered
        assert outcome.retry_at is not None
        assert dt.timedelta(seconds=4) < outcome.retry_at - NOW < dt.timedelta(seconds=6)


def test_retry_after_is_honoured_on_429_and_503_within_a_cap() -> None:
    assert judge(429, "120", 3, NOW, NOW).retry_at == NOW + dt.timedelta(seconds=120)
    assert judge(503, "Sun, 29 Nov 2026 12:10:00 GMT", 1, NOW, NOW).retry_at == (
        NOW + dt.timedelta(minutes=10))
    assert judge(503, "999999", 1, NOW, NOW).retry_at == NOW + MAX_RETRY_AFTER
    # On other answers Retry-After is not a promise the receiver made.
    assert judge(500, "120", 1, NOW, NOW).retry_at != NOW + dt.timedelta(seconds=120)


def test_gone_stops_and_three_days_of_failures_give_up() -> None:
    gone = judge(410, None, 1, NOW, NOW)
    assert (gone.delivered, gone.retry_at, gone.gone) == (False, None, True)
    late = NOW + GIVE_UP_AFTER - dt.timedelta(hours=1)
    assert judge(500, None, 12, NOW, late).retry_at is None
    assert judge(500, None, 3, NOW, NOW + dt.timedelta(hours=1)).retry_at is not None


@pytest.mark.parametrize("bad", ["no.such.type", "nosuch.*", "order.shipped", "order.created.*"])
def test_only_event_types_that_exist_can_be_subscribed_to(bad: str) -> None:
    with pytest.raises(ValueError, match="not an event type") as refused:
        check_event_types([bad])
    assert "'order.*'" in str(refused.value)
    assert check_event_types(["order.created", "shipment.*", "*"]) == [
        "order.created", "shipment.*", "*"]


def test_an_event_of_a_type_not_listed_cannot_be_recorded() -> None:
    with pytest.raises(ValueError, match="EVENT_TYPES"):
        Event("order.teleported", "o-1", 1, {}, NOW)
    assert Event("order.created", "o-1", 1, {}, NOW).type in EVENT_TYPES

"""Domain rules, no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.domain.access import EVERYTHING, Principal, Role
from oms.domain.catalog import Barcode, BarcodeType, ean13_with_check_digit, validate_barcode
from oms.domain.inventory import (
    ReservationRequest,
    StockLevel,
    lock_order,
)
from oms.domain.locations import haversine_km, validate_country, validate_timezone
from oms.domain.money import Money, format_minor
from oms.domain.shipping import ShippingRate, quote


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (BarcodeType.EAN13, "4006381333931"),
        (BarcodeType.UPCA, "036000291452"),
        (BarcodeType.EAN8, "96385074"),
        (BarcodeType.CODE128, "SHIRT-42/M"),
    ],
)
def test_valid_barcodes_pass(kind: BarcodeType, value: str) -> None:
    assert validate_barcode(kind, value) == value


@pytest.mark.parametrize(
    ("kind", "value", "why"),
    [
        (BarcodeType.EAN13, "4006381333932", "check digit"),
        (BarcodeType.EAN13, "400638133393", "13 digits"),
        (BarcodeType.UPCA, "036000291453", "check digit"),
        (BarcodeType.EAN8, "96385075", "check digit"),
        (BarcodeType.EAN13, "40063813339a1", "13 digits"),
        (BarcodeType.CODE128, "tab\there", "printable"),
        (BarcodeType.CODE128, "", "printable"),
    ],
)
def test_invalid_barcodes_say_why(kind: BarcodeType, value: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Barcode(kind, value)


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_completed_ean13_always_validates(prefix: str) -> None:
    code = ean13_with_check_digit(prefix)
    assert validate_barcode(BarcodeType.EAN13, code) == code


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["EUR", "JPY", "KWD"]))
def test_money_round_trips_through_minor_units(minor: int, currency: str) -> None:
    money = Money.from_minor(minor, currency)
    assert money.minor == minor
    assert Money.parse(money.formatted_amount(), currency) == money


@given(st.integers(min_value=-(10**15), max_value=10**15),
       st.sampled_from(["EUR", "JPY", "KWD"]))
def test_an_amount_written_from_minor_units_is_the_moneys_own(minor: int, currency: str) -> None:
    assert format_minor(minor, currency) == Money.from_minor(minor, currency).formatted_amount()


def test_amounts_written_from_minor_units_have_the_currencys_decimals() -> None:
    assert [format_minor(m, "EUR") for m in (2368, 5, -5, 0)] == ["23.68", "0.05", "-0.05",
                                                                  "0.00"]
    assert (format_minor(1234, "JPY"), format_minor(1234, "KWD")) == ("1234", "1.234")


def test_money_refuses_more_decimals_than_the_currency_has() -> None:
    with pytest.raises(ValueError, match="2 decimal places"):
        Money.parse("1.999", "EUR")
    with pytest.raises(ValueError, match="0 decimal places"):
        Money.parse("100.5", "JPY")
    assert Money.parse("19.9", "EUR").formatted_amount() == "19.90"
    assert Money.parse("1.500", "EUR").amount == Decimal("1.5")


def test_money_refuses_unknown_currency_and_non_numbers() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        Money.parse("1.00", "EURO")
    with pytest.raises(ValueError, match="decimal"):
        Money.parse("one", "EUR")


def test_atp_is_on_hand_minus_reserved_minus_safety_stock() -> None:
    level = StockLevel("berlin", "A", on_hand=10, reserved=3, safety_stock=2)
    assert level.atp == 5
    assert level.can_reserve(5)
    assert not level.can_reserve(6)
    assert not level.can_reserve(0)
    short = StockLevel("berlin", "A", on_hand=2, reserved=3, safety_stock=0)
    assert short.atp == -1
    assert short.discrepancy


def test_lock_order_sums_lines_of_one_sku_and_sorts_by_key() -> None:
    requests = [
        ReservationRequest("munich", "B", 1),
        ReservationRequest("berlin", "A", 2),
        ReservationRequest("munich", "B", 3),
        ReservationRequest("berlin", "C", 1),
    ]
    assert lock_order(requests) == [
        (("berlin", "A"), 2), (("berlin", "C"), 1), (("munich", "B"), 4),
    ]


def test_reservation_needs_a_positive_quantity() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReservationRequest("berlin", "A", 0)


def test_haversine_berlin_to_munich() -> None:
    assert haversine_km(52.5200, 13.4050, 48.1351, 11.5820) == pytest.approx(504, abs=2)


def test_country_and_timezone_validation() -> None:
    assert validate_country("de") == "DE"
    for bad in ("XX", "DEU", ""):
        with pytest.raises(ValueError, match="ISO 3166"):
            validate_country(bad)
    assert validate_timezone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(ValueError, match="IANA"):
        validate_timezone("Mars/Olympus")


def test_store_roles_act_only_at_their_locations() -> None:
    manager = Principal("k", "m", Role.MANAGER, frozenset({"berlin"}))
    admin = Principal("k", "a", Role.ADMIN, frozenset())
    assert manager.may_act_at("berlin")
    assert not manager.may_act_at("munich")
    assert admin.may_act_at("munich")


def test_a_store_key_changes_only_orders_wholly_at_its_stores() -> None:
    berlin = Principal("k", "m", Role.ASSOCIATE, frozenset({"berlin", "potsdam"})).scope
    everything = Principal("k", "i", Role.INTEGRATOR, frozenset()).scope
    assert berlin.may_change_order(["berlin", "potsdam"])
    assert not berlin.may_change_order(["berlin", "munich"])
    # An order on hold, fulfilled nowhere: no store's to change.
    assert not berlin.may_change_order([])
    assert everything == EVERYTHING
    assert everything.may_change_order([])


def test_a_quote_leaves_today_before_the_cutoff_and_counts_working_days() -> None:
    rate = ShippingRate("DE", "standard", "dhl", "EUR", 490, 10_000, 2, dt.time(16, 0))
    friday_morning = dt.datetime(2026, 11, 27, 9, 0)
    q = quote(rate, 5_000, friday_morning)
    # Leaves Friday, two working days: Tuesday.
    assert (q.ships_on, q.promised_on, q.price_minor) == (
        dt.date(2026, 11, 27), dt.date(2026, 12, 1), 490)
    late = quote(rate, 10_000, dt.datetime(2026, 11, 27, 16, 0))
    # At the cut-off it leaves on Monday; worth the threshold, it ships free.
    assert (late.ships_on, late.promised_on, late.price_minor) == (
        dt.date(2026, 11, 30), dt.date(2026, 12, 2), 0)
    saturday = quote(rate, 0, dt.datetime(2026, 11, 28, 9, 0))
    assert saturday.ships_on == dt.date(2026, 11, 30)

"""The patterns the OpenAPI schema shows are the rules the server applies, not a guess at them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.adapters.db.event_repositories import parse_event_id
from oms.domain.catalog import BarcodeType, ean13_with_check_digit, upce_to_upca, validate_barcode
from oms.domain.money import CURRENCIES, Money, minor_units
from oms.domain.webhooks import check_url
from oms.schemas import EVENT_ID_PATTERN, HTTP_URL_PATTERN, BarcodeIn, amount_pattern

hex_ids = st.text(alphabet="0123456789abcdefABCDEF", min_size=32, max_size=32)


def _parses(value: str) -> bool:
    try:
        parse_event_id(value)
    except ValueError:
        return False
    return True


@given(hex_ids | st.text(max_size=40))
def test_the_event_id_pattern_is_what_the_feed_reads(value: str) -> None:
    assert bool(re.match(EVENT_ID_PATTERN, value)) is _parses(value)


@pytest.mark.parametrize("currency", ["JPY", "EUR", "KWD"])
@given(amount=st.from_regex(r"\A-?[0-9]{1,15}(\.[0-9]{1,6})?\Z"))
def test_the_amount_pattern_of_a_currency_is_what_money_takes(currency: str,
                                                              amount: str) -> None:
    try:
        Money.parse(amount, currency)
        taken = True
    except ValueError:
        taken = False
    pattern = amount_pattern(minor_units(currency), integer_digits=15, signed=True)
    assert bool(re.match(pattern, amount)) is taken


def test_every_currency_has_zero_two_or_three_decimals() -> None:
    # The schema describes amounts for these; a currency with other places needs a pattern.
    assert {minor_units(c) for c in CURRENCIES} == {0, 2, 3}


@given(st.from_regex(HTTP_URL_PATTERN, fullmatch=True))
def test_a_url_the_schema_describes_passes_the_url_checks(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize("kind", list(BarcodeType))
@given(data=st.data())
def test_a_barcode_of_the_form_the_schema_describes_fails_at_most_its_check_digit(
    kind: BarcodeType, data: st.DataObject
) -> None:
    [form] = [rule["then"]["properties"]["value"] for rule in BarcodeIn.model_json_schema()[
        "allOf"] if rule["if"]["properties"]["type"]["const"] == kind.value]
    value = data.draw(st.from_regex(form["pattern"], fullmatch=True)
                      .filter(lambda v: len(v) <= form.get("maxLength", len(v))))
    if kind is BarcodeType.UPCE:
        # A UPC-E's check digit is that of the UPC-A it stands for.
        expanded = upce_to_upca(value[:-1] + "0")[:-1]
        value = value[:-1] + ean13_with_check_digit(expanded.zfill(12))[-1]
    elif kind is not BarcodeType.CODE128:
        # The last digit is the one the schema cannot describe: made right, the value passes.
        value = ean13_with_check_digit(value[:-1].zfill(12))[-len(value):]
    assert validate_barcode(kind, value.strip()) == value.strip()

"""Reading JSON as clients send it: RFC 8259, no more, and errors that say where."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.json_text import JsonSyntaxError, JsonValueError, loads


@pytest.mark.parametrize(("text", "path"), [
    ('{"quantity": 1, "quantity": 5}', ("quantity",)),
    ('{"items": [{"sku": "A"}, {"sku": "B", "qty": 1, "sku": "C"}]}', ("items", 1, "sku")),
    ('{"a": {"b": {"c": 1, "c": 1}}}', ("a", "b", "c")),
])
def test_a_key_given_twice_is_named_by_its_path(text: str, path: tuple[str | int, ...]) -> None:
    with pytest.raises(JsonValueError) as refused:
        loads(text)
    assert refused.value.path == path
    assert refused.value.message == "is given more than once"


@pytest.mark.parametrize(("text", "path"), [
    ("[1, NaN]", (1,)), ('{"x": Infinity}', ("x",)), ('{"x": [-Infinity]}', ("x", 0)),
    ('{"x": 1e400}', ("x",)), ('{"x": -' + "9" * 4301 + "}", ("x",)),
])
def test_a_number_no_reader_takes_as_meant_is_named(text: str,
                                                    path: tuple[str | int, ...]) -> None:
    with pytest.raises(JsonValueError) as refused:
        loads(text)
    assert refused.value.path == path


@pytest.mark.parametrize(("text", "line", "column"), [
    ('{"name": "shirt",', 1, 18),
    ('{\n  "a": 1\n  "b": 2\n}', 3, 3),
    (b'{"name": "gr\xfcn"}', 1, 13),
    ("[" * 100_000, 1, 501),
    ("", 1, 1),
])
def test_a_syntax_error_gives_line_and_column(text: str | bytes, line: int,
                                              column: int) -> None:
    with pytest.raises(JsonSyntaxError) as refused:
        loads(text)
    assert (refused.value.line, refused.value.column) == (line, column)
    assert f"line {line}, column {column}" in str(refused.value)


def test_a_whole_number_is_an_integer_whatever_its_spelling() -> None:
    assert loads("[2.0, 1e3, -0.0, 9007199254740993.0]") == [2, 1000, 0, 9007199254740993]
    assert all(type(n) is int for n in loads("[2.0, 1e3]"))
    # Not a whole number, though its nearest float is.
    assert loads("9007199254740993.5") == 9007199254740993.5
    assert type(loads("2.5")) is float


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    # Beyond 2**53 a float is no exact integer; loads reads those digits exactly.
    | st.floats(min_value=-(2.0**53), max_value=2.0**53),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=20,
)


@given(json_documents)
def test_any_json_document_reads_as_the_standard_reader_reads_it(document: object) -> None:
    text = json.dumps(document)
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)

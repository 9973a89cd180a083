"""JSON text as clients send it, read strictly: RFC 8259 and nothing more.

Python's `json` takes the last of two equal keys (so `{"quantity": 1, "quantity": 5}` would
silently order five) and reads `NaN` and `Infinity`, which JSON does not have. Here both are
refused, naming where they are, and a syntax error gives its line and column. A number with
no fraction (`2.0`, `1e3`) is an integer, as JSON Schema counts it.
"""

from __future__ import annotations

import json
import math
import sys
from decimal import Decimal
from typing import Any

#: Deeper than any document the API takes; the position reported when the parser gives up.
REPORTED_DEPTH = 500

Path = tuple[str | int, ...]


class JsonSyntaxError(ValueError):
    """The text is not JSON; `line` and `column` count from 1."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"{reason} (line {line}, column {column})")
        self.reason = reason
        self.line = line
        self.column = column


class JsonValueError(ValueError):
    """A member that JSON allows to be written but that no reader can take as meant: a key
    given twice in one object, NaN or Infinity, a number beyond any quantity. `path`
    leads to it (object keys and array indexes)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{'.'.join(map(str, path)) or 'body'}: {message}")
        self.path = path
        self.message = message


class _Object(dict[str, Any]):
    """An object as parsed, remembering the keys it was given more than once."""

    duplicates: tuple[str, ...] = ()


class _Refused:
    """Stands where the parser met a number no reader takes, until its path is known."""

    def __init__(self, message: str) -> None:
        self.message = message


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicates = []
        for key, _ in pairs:
            if key in seen:
                duplicates.append(key)
            seen.add(key)
        obj.duplicates = tuple(duplicates)
    return obj


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a JSON number")


def _integer(digits: str) -> int | _Refused:
    if len(digits.lstrip("-")) > sys.get_int_max_str_digits():
        return _Refused(f"an integer of {len(digits)} digits is beyond any quantity")
    return int(digits)


def _float(text: str) -> int | float | _Refused:
    value = float(text)
    if value in (math.inf, -math.inf):
        return _Refused(f"{text} is beyond any number")
    if value.is_integer():
        # 2.0 and 2e3 are integers to JSON Schema as to arithmetic. Decided on the text, not
        # on the float, whose 53 bits round 9007199254740993.5 to a whole number.
        exact = Decimal(text)
        if exact == exact.to_integral_value():
            return int(exact)
    return value


def loads(text: bytes | str) -> Any:
    """The JSON value of UTF-8 `text`. Raises JsonSyntaxError (also for text that is not UTF-8
    or nests deeper than Python reads) or JsonValueError."""
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line, column = _position(raw[: exc.start].decode("utf-8"))
            raise JsonSyntaxError("not UTF-8 text", line, column) from exc
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_constant,
                           parse_int=_integer, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(exc.msg, exc.lineno, exc.colno) from exc
    except RecursionError as exc:
        raise JsonSyntaxError(f"nested more than {REPORTED_DEPTH} deep",
                              *_position(text[: _deep_point(text)])) from exc
    _check_members(value)
    return value


def _position(text: str) -> tuple[int, int]:
    """Line and column of the character just after `text`."""
    return text.count("\n") + 1, len(text) - (text.rfind("\n") + 1) + 1


def _deep_point(text: str) -> int:
    """The offset of the bracket that opens level REPORTED_DEPTH + 1 (outside strings)."""
    depth, in_string, escaped = 0, False, False
    for offset, char in enumerate(text):
        if escaped:
            escaped = False
        elif in_string:
            escaped = char == "\\"
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > REPORTED_DEPTH:
                return offset
        elif char in "]}":
            depth -= 1
    return len(text)


def _check_members(value: Any) -> None:
    # Iterative: the parser's own recursion limit is the only bound on depth here.
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, _Object):
            if node.duplicates:
                raise JsonValueError((*path, node.duplicates[0]), "is given more than once")
            stack.extend(((*path, k), v) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*path, n), v) for n, v in reversed(list(enumerate(node))))
        elif isinstance(node, _Refused):
            raise JsonValueError(path, node.message)

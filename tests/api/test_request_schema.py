"""The OpenAPI description of requests shows every bound and rule the server applies to their
form, so that a client built from it sends nothing refused for its form."""

from __future__ import annotations

from typing import Any

from tests.helpers import Api

Schema = dict[str, Any]


def _request_schemas(spec: Schema) -> list[tuple[str, Schema]]:
    """Every schema of a parameter or a JSON body, with the schemas they refer to, each named by
    where it is."""
    components = spec["components"]["schemas"]
    found: list[tuple[str, Schema]] = []

    def walk(where: str, schema: Schema, seen: frozenset[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(name, components[name], seen | {name})
        found.append((where, schema))
        for key, part in schema.get("properties", {}).items():
            walk(f"{where}.{key}", part, seen)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                walk(f"{where}[]", schema[key], seen)
        # The types a value may have; the oneOf/allOf of a model only narrow what it describes.
        for part in schema.get("anyOf", []):
            walk(where, part, seen)

    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                walk(f"{method} {path} {parameter['name']}", parameter["schema"], frozenset())
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                walk(f"{method} {path} body", body["schema"], frozenset())
    return found


def test_every_string_list_and_number_a_request_carries_is_bounded(api: Api) -> None:
    unbounded = []
    for where, schema in _request_schemas(api.get("/openapi.json").json()):
        kind = schema.get("type")
        bounds = {"string": {"maxLength", "enum", "const", "format"},
                  "array": {"maxItems"},
                  "integer": {"maximum"}, "number": {"maximum"}}.get(kind, set())
        if bounds and not bounds & schema.keys():
            unbounded.append(f"{where}: {kind}")
    assert unbounded == []


def test_every_string_a_request_carries_shows_that_nul_is_refused(api: Api) -> None:
    # PostgreSQL cannot store NUL: a pattern (or a list of values) that excludes it.
    allowing_nul = [where for where, schema in _request_schemas(api.get("/openapi.json").json())
                    if schema.get("type") == "string"
                    and not {"pattern", "enum", "const", "format"} & schema.keys()]
    assert allowing_nul == []


def test_no_pattern_leaves_white_space_to_a_dialect(api: Api) -> None:
    # `\s` is another set of characters in JavaScript, Python and the server's regex engine:
    # a pattern with it would refuse in one what it lets through in another (an email with
    # U+0085 in it passed the document's pattern and was refused by the server).
    dialectal = [where for where, schema in _request_schemas(api.get("/openapi.json").json())
                 if "\\s" in schema.get("pattern", "")]
    assert dialectal == []

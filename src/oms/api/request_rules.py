"""Rules the API applies to every request, written into its OpenAPI description.

They are checked in one place each (`deps.no_nul_in_query`, `deps.check_path`, and the
`schemas.Strict` base of every body), so they are described in one place too, on every string
the description shows, rather than repeated on each field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from oms.api.deps import MAX_PATH_PARAMETER
from oms.api.routing import is_json
from oms.schemas import WHITE_SPACE

#: PostgreSQL cannot store NUL: no string the API takes may hold one.
NO_NUL = r"^[^\x00]*$"
#: Body text is stripped of surrounding white space before its length is checked, so text that
#: must not be empty must hold a character that is not white space.
NOT_BLANK = rf"^[^\x00]*[^{WHITE_SPACE}\x00][^\x00]*$"

Schema = dict[str, Any]


def install(app: FastAPI) -> None:
    generate: Callable[[], Schema] = app.openapi

    def openapi() -> Schema:
        if app.openapi_schema is None:
            describe_common_rules(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def describe_common_rules(spec: Schema) -> None:
    components: dict[str, Schema] = spec.get("components", {}).get("schemas", {})
    bodies: set[str] = set()
    for operation in _operations(spec):
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            if parameter.get("in") == "path":
                _bound_path_parameter(schema)
            _visit(schema, components, set(), in_body=False)
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            # JSON bodies only: an import's body is a file, read by rules of its own.
            if is_json(media_type) and "schema" in content:
                _visit(content["schema"], components, bodies, in_body=True)


def _operations(spec: Schema) -> list[Schema]:
    methods = {"get", "put", "post", "patch", "delete"}
    return [op for item in spec.get("paths", {}).values()
            for method, op in item.items() if method in methods]


def _bound_path_parameter(schema: Schema) -> None:
    if schema.get("type") == "string" and not {"enum", "maxLength"} & schema.keys():
        schema["maxLength"] = MAX_PATH_PARAMETER


def _visit(schema: Any, components: dict[str, Schema], seen: set[str], *, in_body: bool
           ) -> None:
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen and name in components:
            seen.add(name)
            _visit(components[name], components, seen, in_body=in_body)
        return
    if schema.get("type") == "string" and not {"pattern", "enum", "const", "format"
                                               } & schema.keys():
        schema["pattern"] = NOT_BLANK if in_body and schema.get("minLength", 0) >= 1 else NO_NUL
    for key in ("items", "additionalProperties", "not"):
        _visit(schema.get(key), components, seen, in_body=in_body)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for part in schema.get(key, []):
            _visit(part, components, seen, in_body=in_body)
    for part in schema.get("properties", {}).values():
        _visit(part, components, seen, in_body=in_body)

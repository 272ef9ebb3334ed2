"""What drf-spectacular cannot see by itself: our authentication, and the problem details that
every operation may answer with (OpenAPI 3.1: JSON Schema types, ``null`` among them)."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension

PROBLEM_SCHEMA = {
    "type": "object",
    "description": _("RFC 9457 problem details."),
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "description": _("Validation errors only: which field, and what is wrong with it."),
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
                "required": ["field", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}
ERROR_RESPONSES = {
    "400": _("The request is not valid (see errors)."),
    "401": _("No token or session, or the token is not valid."),
    "403": _("The caller's role does not allow this."),
    "404": _("No such object."),
    "405": _("Method not allowed."),
    "406": _("The response format asked for is not available."),
    "409": _("The object cannot do this now."),
    "415": _("The request body must be JSON."),
    "429": _("Too many requests with this token: wait for Retry-After seconds."),
    "502": _("The email-marketing service did not answer as expected."),
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": _("A personal API token (ar_...), made on the API tokens page."),
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.CsrfSessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


#: Text the API takes can hold anything but NUL, which PostgreSQL cannot store.
NO_NUL = "^[^\\x00]*$"


def _forbid_nul(schema: dict) -> None:
    """Say so in every plain string of a request schema (in place)."""
    kinds = schema.get("type")
    is_text = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    if is_text and not {"pattern", "format", "enum"} & set(schema):
        schema["pattern"] = NO_NUL
    for child in schema.get("properties", {}).values():
        _forbid_nul(child)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _forbid_nul(schema[key])


def forbid_nul_in_requests(result, generator, request, public):
    """Postprocessing hook: request bodies and query parameters refuse NUL characters."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _forbid_nul(schema)
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _forbid_nul(parameter.get("schema", {}))
    return result


def _rendered(schema):
    """The schema with its lazy texts made into text now (the document is JSON)."""
    if isinstance(schema, dict):
        return {key: _rendered(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_rendered(value) for value in schema]
    return str(schema) if isinstance(schema, Promise) else schema


def _null_as_type(schema: dict) -> dict:
    """``schema`` with OpenAPI 3.0's ``nullable: true`` said as a JSON Schema type (3.1)."""
    if not isinstance(schema.get("nullable"), bool):  # a property may be called "nullable"
        return schema
    if not schema.pop("nullable"):
        return schema
    kinds = schema.get("type")
    if kinds is not None:
        listed = kinds if isinstance(kinds, list) else [kinds]
        schema["type"] = [*listed, "null"] if "null" not in listed else listed
    elif "oneOf" in schema or "anyOf" in schema:
        choices = schema["oneOf" if "oneOf" in schema else "anyOf"]
        if {"type": "null"} not in choices:
            choices.append({"type": "null"})
    else:
        # A reference or a composition: null, or whatever it says.
        described = {key: schema.pop(key) for key in list(schema) if key in _OUTER_KEYWORDS}
        schema = {"oneOf": [schema, {"type": "null"}], **described}
    return schema


#: What stays beside a ``oneOf`` that adds ``null`` to a schema.
_OUTER_KEYWORDS = {"description", "title", "readOnly", "writeOnly", "deprecated", "default"}


def _without_nullable(node):
    if isinstance(node, dict):
        return _null_as_type({key: _without_nullable(value) for key, value in node.items()})
    if isinstance(node, list):
        return [_without_nullable(value) for value in node]
    return node


def null_as_json_schema_type(result, generator, request, public):
    """Postprocessing hook: no ``nullable`` (an OpenAPI 3.0 keyword that 3.1 ignores) is left.

    drf-spectacular says null as a type under 3.1, but what DRF hands it as is (the pagination's
    ``next`` and ``previous``) still says ``nullable: true``; a strict client then refuses the
    ``null`` it receives."""
    return _without_nullable(result)


def link_created_objects(result, generator, request, public):
    """Postprocessing hook: a ``201`` from ``POST /things/`` links to every ``/things/{id}/``
    operation with the new id (OpenAPI links), so that a client or a fuzzer can follow on."""
    paths = result.get("paths", {})
    for path, methods in paths.items():
        created = methods.get("post", {}).get("responses", {}).get("201")
        if created is None or not path.endswith("/"):
            continue
        links = {
            operation["operationId"]: {
                "operationId": operation["operationId"],
                "parameters": {"id": "$response.body#/id"},
            }
            for other, other_methods in paths.items()
            if other.startswith(f"{path}{{id}}")
            for operation in other_methods.values()
        }
        if links:
            created["links"] = links
    return result


def add_problem_responses(result, generator, request, public):
    """Postprocessing hook: every operation documents the problem details it may answer."""
    # Copied: the lazy descriptions are rendered in each request's language.
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = _rendered(
        PROBLEM_SCHEMA
    )
    problem = {"$ref": "#/components/schemas/Problem"}
    paths = result.get("paths", {})
    # The router accepts both; a file name reads better without the trailing slash.
    for path in [path for path in paths if path.endswith(".csv/")]:
        paths[path[:-1]] = paths.pop(path)
    for methods in paths.values():
        for operation in methods.values():
            body = operation.get("requestBody", {})
            if any("oneOf" in media["schema"] for media in body.get("content", {}).values()):
                body["required"] = True  # a choice between bodies is never no body
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_RESPONSES.items():
                responses.setdefault(
                    code,
                    {
                        "description": str(description),
                        "content": {"application/problem+json": {"schema": problem}},
                    },
                )
    return result

"""Answers checked against the served OpenAPI document, as a strict generated client would.

For the operation a request reached (its path template and method), the status code must be
documented, the content type one the document gives for it, and a JSON body valid against that
content's schema (JSON Schema 2020-12, the dialect of OpenAPI 3.1, with formats checked)."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:audience-relay:openapi"


def _pointer(*parts: str) -> str:
    return "".join("/" + quote(part.replace("~", "~0").replace("/", "~1")) for part in parts)


class Document:
    def __init__(self, document: dict):
        self.document = document
        self.registry = Registry().with_resource(
            BASE, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.paths = [
            (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "/?$"), path)
            for path in document["paths"]
        ]

    def operation(self, method: str, path: str) -> tuple[str, dict] | None:
        for pattern, template in self.paths:
            if pattern.match(path):
                operation = self.document["paths"][template].get(method.lower())
                return (template, operation) if operation else None
        return None

    def problems(self, method: str, path: str, response) -> list[str]:
        """What in ``response`` the document does not allow (nothing for an undocumented
        operation: the document does not say what it answers)."""
        found = self.operation(method, path)
        if found is None:
            return []
        template, operation = found
        where = f"{method} {path} answered {response.status_code}"
        responses = operation["responses"]
        code = str(response.status_code)
        for documented in (code, f"{code[0]}XX", "default"):
            if documented in responses:
                break
        else:
            return [f"{where}: the status code is not documented ({', '.join(responses)})"]
        content = responses[documented].get("content", {})
        if not content:
            return []
        media_type = response.get("Content-Type", "").split(";")[0].strip()
        if media_type not in content:
            given = media_type or "no content type"
            return [f"{where}: {given} is not documented ({', '.join(content)})"]
        if "json" not in media_type or response.streaming:
            return []
        schema = content[media_type].get("schema")
        if schema is None:
            return []
        pointer = _pointer("paths", template, method.lower(), "responses", documented, "content")
        pointer += _pointer(media_type, "schema")
        validator = Draft202012Validator(
            {"$ref": f"{BASE}#{pointer}"}, registry=self.registry, format_checker=FormatChecker()
        )
        body = json.loads(response.content)
        return [
            f"{where}: at {error.json_path}: {error.message}"[:500]
            for error in validator.iter_errors(body)
        ]

"""The OpenAPI document as served, compared with the one committed beside this test.

Moving code (the resource modules now live in their apps) must not change the API: every path,
operation id, tag, component and description stays as it was. A deliberate change to the API
updates the snapshot in the same commit:

    DATABASE_URL=... .venv/bin/python -m tests.api.test_openapi_snapshot
"""

from __future__ import annotations

import json
from pathlib import Path

from django.test import Client

SNAPSHOT = Path(__file__).with_name("openapi_snapshot.json")


def served_document(client: Client) -> dict:
    response = client.get("/api/v1/openapi.json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response.json()


def differences(served, committed, where: str = "") -> list[str]:
    """Where the two documents differ, as JSON pointers (a readable failure, not a 250 kB diff)."""
    if isinstance(served, dict) and isinstance(committed, dict):
        found = []
        for key in sorted(served.keys() | committed.keys()):
            if key not in committed:
                found.append(f"{where}/{key}: not in the snapshot")
            elif key not in served:
                found.append(f"{where}/{key}: no longer served")
            else:
                found.extend(differences(served[key], committed[key], f"{where}/{key}"))
        return found
    if served != committed:
        return [f"{where}: {served!r} != {committed!r}"[:300]]
    return []


def test_the_document_is_the_committed_one(client, db):
    served = served_document(client)
    committed = json.loads(SNAPSHOT.read_text())

    assert differences(served, committed) == []


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()
    document = served_document(Client())
    SNAPSHOT.write_text(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"Wrote {SNAPSHOT}")

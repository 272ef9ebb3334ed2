"""The API refuses with the words of the page's permission (``accounts.roles.ActionPermission``)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from exports.permissions import ADD_EXPORT

pytestmark = pytest.mark.django_db


def test_the_api_refuses_with_the_same_words(charlie):
    client = APIClient()
    client.force_authenticate(charlie)
    response = client.post("/api/v1/exports/", {}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == str(ADD_EXPORT.refusal)

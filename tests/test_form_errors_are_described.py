"""A field with an error points (aria-describedby) at an element that exists, so a screen
reader reads the error with the field (issue 23, item 15)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def dangling_descriptions(html: str) -> list[str]:
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    described = {
        name for value in re.findall(r'aria-describedby="([^"]+)"', html) for name in value.split()
    }
    return sorted(described - ids)


@pytest.mark.parametrize(
    ("url", "data"),
    [
        (reverse("users:add"), {"username": "", "email": "not-an-address", "role": ""}),
        (reverse("connections:setup", args=["autopilot"]), {"display_name": ""}),
        (reverse("exports:create"), {"display_name": ""}),
        (reverse("webhooks:create"), {"url": "not a url"}),
        (reverse("sources:add", args=["postgresql"]), {"name": "", "port": "x"}),
        (reverse("system:schedule"), {"enabled": "on", "times": "", "time_zone": "Nowhere/Else"}),
    ],
)
def test_every_error_a_field_points_at_is_on_the_page(client, alice, url, data):
    client.force_login(alice)
    html = client.post(url, data).content.decode()
    assert 'aria-invalid="true"' in html  # the form did say something was wrong
    assert dangling_descriptions(html) == []

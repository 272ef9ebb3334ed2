"""Actions with consequences ask first, saying what will happen (issue 23, item 4)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from exports.models import ExportRun

pytestmark = pytest.mark.django_db


def confirm_block(page: str, label: str) -> str:
    """The <details class="confirm"> whose button reads ``label``."""
    start = page.index(f'<summary class="button">{label}…</summary>')
    return page[page.rindex("<details", 0, start) : page.index("</details>", start)]


def test_detach_and_resend_say_what_they_do_before_they_do_it(client, alice, make_export, everyone):
    export = make_export(everyone)
    client.force_login(alice)
    page = client.get(reverse("exports:detail", args=[export.pk])).content.decode()

    detach = confirm_block(page, "Detach connection")
    assert "cannot run until you choose a connection again" in detach
    assert f'action="{reverse("exports:detach", args=[export.pk])}"' in detach
    resend = confirm_block(page, "Resend everything")
    assert "sends every member again, changed or not" in resend


def test_run_all_names_the_exports_it_runs(client, alice, make_export, everyone):
    make_export(everyone, display_name="Newsletter")
    make_export(everyone, display_name="Offers")
    make_export(everyone, display_name="Paused", schedule_enabled=False)
    client.force_login(alice)
    page = client.get(reverse("exports:run_all")).content.decode()

    assert "each of the 2 exports" in page
    listed = page.split('<ul id="run-all-exports">')[1].split("</ul>")[0]
    assert "Newsletter</a>" in listed and "Offers</a>" in listed and "Paused" not in listed
    assert not ExportRun.objects.exists()  # asking runs nothing
    client.post(reverse("exports:run_all"))
    assert ExportRun.objects.count() == 2


def test_deactivating_a_user_says_what_it_means(client, alice, bob):
    client.force_login(alice)
    page = client.get(reverse("users:edit", args=[bob.pk])).content.decode()
    deactivate = confirm_block(page, "Deactivate")
    assert "can no longer log in, their API tokens stop working" in deactivate

"""**Add export** / **Edit** with a field mapping, against the Campaign Monitor fake: Load
fields, a new field created on save, rows added and removed, every refusal in words; the
chosen service's help only (issue 23, item 9)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from connections.models import Connection
from exports.mapping import rows_of
from exports.models import Export
from tests.exports.test_views import mapping_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def fields_at_cm(cm_connection, cm_list_id):
    from connections.services import backend_for
    from connections.types.base import FieldType

    backend = backend_for(cm_connection)
    return {
        "plan": backend.create_field(cm_list_id, "Plan", FieldType.TEXT),
        "ltv": backend.create_field(cm_list_id, "Lifetime value", FieldType.NUMBER),
    }


def data(connection, cm_list_id, segment, *rows, **overrides) -> dict:
    return {
        "connection": str(connection.pk),
        "display_name": "Customers",
        "list_id": cm_list_id,
        **mapping_data(*rows),
        "segments": [str(segment.pk)],
        "sync_mode": "add_update",
        **overrides,
    }


def page(response) -> str:
    return response.content.decode()


def test_load_fields_offers_the_lists_fields_with_their_types_in_every_row(
    as_alice, cm_connection, cm_list_id, customers, fields_at_cm
):
    response = as_alice.post(
        reverse("exports:destination_fields"),
        data(cm_connection, cm_list_id, customers, ("email", "email"), ("plan", "")),
    )

    html = page(response)
    assert response.status_code == 200
    assert html.count('<option value="[Plan]">Plan (Text)</option>') == 2
    assert "Lifetime value (Number)" in html
    assert "are offered in each row" in html


def test_load_fields_without_a_list_says_what_to_do_first(as_alice, cm_connection, customers):
    response = as_alice.post(
        reverse("exports:destination_fields"),
        data(cm_connection, "", customers, ("email", "email")),
    )
    assert "Give the List ID first, then load its fields." in page(response)


def test_saving_maps_the_rows_with_the_services_names_and_types(
    as_alice, cm_connection, cm_list_id, customers, fields_at_cm
):
    response = as_alice.post(
        reverse("exports:create"),
        data(
            cm_connection,
            cm_list_id,
            customers,
            ("email", "email"),
            ("ltv", "[Lifetimevalue]", "", "", "clear"),
        ),
    )

    assert response.status_code == 302, page(response)
    export = Export.objects.get()
    assert [
        (row.profile_field, row.destination_key, row.destination_name, row.destination_type)
        for row in rows_of(export)
    ] == [
        ("email", "email", "Email", "text"),
        ("ltv", "[Lifetimevalue]", "Lifetime value", "number"),
    ]
    assert export.field_rows()[1].clears


def test_a_new_field_is_created_at_the_service_when_the_export_is_saved(
    as_alice, cm, cm_connection, cm_list_id, customers
):
    response = as_alice.post(
        reverse("exports:create"),
        data(
            cm_connection,
            cm_list_id,
            customers,
            ("email", "email"),
            ("renewal", "__new__", "Renewal date", "date"),
        ),
    )

    assert response.status_code == 302, page(response)
    created = rows_of(Export.objects.get())[1]
    assert (created.destination_key, created.destination_name, created.destination_type) == (
        "[Renewaldate]",
        "Renewal date",
        "date",
    )
    listed = cm.state(list=cm_list_id)["lists"][cm_list_id]
    assert "Renewal date" in str(listed)


def test_two_profile_fields_mapped_onto_one_destination_field_are_refused(
    as_alice, cm_connection, cm_list_id, customers, fields_at_cm
):
    response = as_alice.post(
        reverse("exports:create"),
        data(
            cm_connection,
            cm_list_id,
            customers,
            ("email", "email"),
            ("plan", "[Plan]"),
            ("tier", "[Plan]"),
        ),
    )

    assert response.status_code == 200
    assert (
        "“plan” and “tier” are both mapped to the destination field “Plan”. A destination field "
        "takes one profile field: remove one of the rows." in page(response)
    )
    assert not Export.objects.exists()


def test_a_field_the_list_does_not_have_and_a_missing_email_are_refused_in_words(
    as_alice, cm_connection, cm_list_id, customers
):
    response = as_alice.post(
        reverse("exports:create"),
        data(cm_connection, cm_list_id, customers, ("plan", "[Gone]")),
    )

    html = page(response)
    assert "Row 1: the list has no field “[Gone]” (was it deleted in Campaign Monitor?)" in html
    assert "Map a profile field to Email" in html


def test_tags_are_refused_for_a_service_without_tags(
    as_alice, cm_connection, cm_list_id, customers
):
    response = as_alice.post(
        reverse("exports:create"),
        data(cm_connection, cm_list_id, customers, ("email", "email"), fixed_tags="vip, 2026"),
    )
    assert "Campaign Monitor has no tags, so the export cannot tag people there." in page(response)


def test_add_a_field_and_remove_draw_the_rows_again_without_saving(
    as_alice, cm_connection, cm_list_id, customers
):
    rows = (("email", "email"), ("first_name", "first_name"))
    added = as_alice.post(
        reverse("exports:create"),
        {**data(cm_connection, cm_list_id, customers, *rows), "add_row": "1"},
    )
    removed = as_alice.post(
        reverse("exports:create"),
        {**data(cm_connection, cm_list_id, customers, *rows), "remove_row": "1"},
    )

    assert page(added).count('name="mapping-profile_field"') == 3
    assert page(removed).count('name="mapping-profile_field"') == 1
    assert 'role="alert"' not in page(added)
    assert not Export.objects.exists()


def test_the_form_shows_the_chosen_services_help_only(as_alice, cm_connection, alice):
    Connection.objects.create(
        kind="mailchimp",
        display_name="MC",
        who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
        consent_given_by=alice,
        consent_given_at=timezone.now(),
        created_by=alice,
    )
    export = Export.objects.create(
        display_name="Customers", connection=cm_connection, list_id="x", created_by=alice
    )

    html = page(as_alice.get(reverse("exports:edit", args=[export.pk])))

    assert '<p class="hint" data-kinds="campaign_monitor">Campaign Monitor: lists' in html
    assert '<p class="hint" data-kinds="mailchimp" hidden>' in html
    assert '<p class="hint" data-kinds="campaign_monitor">Campaign Monitor has no tags' in html
    assert '<fieldset class="choices" data-kinds="mailchimp" hidden disabled>' in html


def test_a_consent_field_that_is_not_yes_no_is_refused_in_words(
    as_alice, cm_connection, cm_list_id, customers
):
    response = as_alice.post(
        reverse("exports:create"),
        data(cm_connection, cm_list_id, customers, ("email", "email"), consent_field="tier"),
    )

    assert response.status_code == 200
    assert (
        "Consent is read from a yes/no profile field, and “tier” is a field of type “Text”. "
        "Pick a yes/no field, or leave it empty and choose the consent for new people."
    ) in page(response)
    assert not Export.objects.exists()


def test_a_yes_no_consent_field_is_kept(as_alice, cm_connection, cm_list_id, customers):
    response = as_alice.post(
        reverse("exports:create"),
        data(cm_connection, cm_list_id, customers, ("email", "email"), consent_field="has_app"),
    )

    assert response.status_code == 302, page(response)
    assert Export.objects.get().consent_field == "has_app"


def loaded_fields_token(html: str) -> str:
    found = re.search(r'<input type="hidden" name="loaded_fields" value="([^"]+)">', html)
    assert found, "no loaded fields in the page"
    return found.group(1)


def test_add_a_field_and_remove_keep_the_loaded_fields_offered(
    as_alice, cm_connection, cm_list_id, customers, fields_at_cm
):
    rows = (("email", "email"), ("plan", "[Plan]"))
    loaded = as_alice.post(
        reverse("exports:destination_fields"), data(cm_connection, cm_list_id, customers, *rows)
    )
    token = loaded_fields_token(page(loaded))

    added = as_alice.post(
        reverse("exports:create"),
        {
            **data(cm_connection, cm_list_id, customers, *rows),
            "add_row": "1",
            "loaded_fields": token,
        },
    )
    assert page(added).count("Lifetime value (Number)</option>") == 3
    removed = as_alice.post(
        reverse("exports:create"),
        {
            **data(cm_connection, cm_list_id, customers, *rows),
            "remove_row": "1",
            "loaded_fields": loaded_fields_token(page(added)),
        },
    )
    assert page(removed).count("Lifetime value (Number)</option>") == 1
    assert not Export.objects.exists()


def test_loaded_fields_of_another_list_or_tampered_with_are_not_offered(
    as_alice, cm_connection, cm_list_id, customers, fields_at_cm
):
    rows = (("email", "email"),)
    token = loaded_fields_token(
        page(
            as_alice.post(
                reverse("exports:destination_fields"),
                data(cm_connection, cm_list_id, customers, *rows),
            )
        )
    )
    for list_id, given in (("another-list", token), (cm_list_id, token[:-2] + "xx")):
        added = as_alice.post(
            reverse("exports:create"),
            {
                **data(cm_connection, list_id, customers, *rows),
                "add_row": "1",
                "loaded_fields": given,
            },
        )
        assert "Lifetime value (Number)" not in page(added)

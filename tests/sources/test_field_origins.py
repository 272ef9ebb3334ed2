"""Which writer last set each field of each profile (``Profile.field_origins``): a source, the
CSV import or the API, recorded in the same set-based upsert, and shown on the profile page."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from segments.importing import import_csv, import_json_records
from segments.models import Profile
from tests.sources.places import people
from tests.sources.test_runs import make_source, run

pytestmark = pytest.mark.django_db


def rescored(rows, by: float):
    return [(*row[:5], row[5] + by, *row[6:]) for row in rows]


@pytest.fixture
def crm_then_shop(postgresql_place, parquet_place):
    """CRM maps every field of four people; Shop, run after it, maps only the score of three."""
    postgresql_place.write(people(4))
    parquet_place.write(rescored(people(3), 100))
    crm = make_source(postgresql_place, name="CRM")
    shop = make_source(
        parquet_place,
        name="Shop",
        mapping={"customer_id": "customer", "attributes": {"score": "score"}},
    )
    run(crm)
    run(shop)
    return crm, shop


def test_each_profile_records_the_source_that_set_each_field_last(crm_then_shop):
    crm, shop = crm_then_shop
    assert Profile.objects.get(customer_id="C00001").field_origins == {
        "email": crm.pk,
        "first_name": crm.pk,
        "last_name": crm.pk,
        "score": shop.pk,
        "active": crm.pk,
        "born": crm.pk,
        "changed": crm.pk,
    }
    # Shop has no fourth person: CRM's score stands there, and says so
    fourth = Profile.objects.get(customer_id="C00004")
    assert (fourth.attributes["score"], fourth.field_origins["score"]) == (6, crm.pk)


def test_the_last_write_that_changes_a_profile_wins_field_by_field(crm_then_shop, postgresql_place):
    crm, shop = crm_then_shop
    run(crm)  # CRM's scores differ from Shop's: CRM writes them back, and says so
    first = Profile.objects.get(customer_id="C00001")
    assert (first.attributes["score"], first.field_origins["score"]) == (1.5, crm.pk)
    run(shop)
    first.refresh_from_db()
    assert (first.attributes["score"], first.field_origins["score"]) == (101.5, shop.pk)
    run(shop)  # the same values again: nothing written, nothing re-stamped
    first.refresh_from_db()
    assert first.field_origins["email"] == crm.pk and first.field_origins["score"] == shop.pk


def test_the_csv_import_and_the_api_record_themselves(crm_then_shop):
    crm, _shop = crm_then_shop
    import_csv(io.BytesIO(b"customer_id,tier\nC00001,gold\n"))
    import_json_records([{"customer_id": "C00002", "first_name": "Bea"}])
    first = Profile.objects.get(customer_id="C00001")
    second = Profile.objects.get(customer_id="C00002")
    assert (first.field_origins["tier"], first.field_origins["email"]) == ("import", crm.pk)
    assert (second.field_origins["first_name"], second.field_origins["email"]) == ("api", crm.pk)


def test_the_profile_page_says_where_each_value_came_from(as_charlie, crm_then_shop):
    _crm, shop = crm_then_shop
    import_csv(io.BytesIO(b"customer_id,tier\nC00001,gold\n"))
    import_json_records([{"customer_id": "C00001", "attributes": {"nickname": "Al"}}])
    profile = Profile.objects.get(customer_id="C00001")
    listing = as_charlie.get(reverse("profiles:list")).content.decode()
    assert reverse("profiles:detail", args=[profile.pk]) in listing
    page = as_charlie.get(reverse("profiles:detail", args=[profile.pk])).content.decode()

    def origin_of(field: str) -> str:
        row = page.split(f"<code>{field}</code>", 1)[1].split("</tr>", 1)[0]
        return row.rsplit('class="origin">', 1)[1].split("</td>", 1)[0]

    assert origin_of("score") == "from source Shop"
    assert origin_of("born") == "from source CRM"
    assert origin_of("tier") == "from import"
    assert origin_of("nickname") == "from the API"
    shop.delete()
    page = as_charlie.get(reverse("profiles:detail", args=[profile.pk])).content.decode()
    assert origin_of("score") == "from a source since removed"

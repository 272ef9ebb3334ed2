"""The bulk upsert keeps to the field catalogue's limit (issue 22, item 10): one call with
1,700 new attribute names used to be stored, and every CSV import afterwards failed."""

from __future__ import annotations

import io

import pytest

from segments.importing import import_csv
from segments.models import Profile, ProfileField

pytestmark = pytest.mark.django_db
BULK = "/api/v1/profiles/bulk/"


def test_a_call_with_more_new_fields_than_allowed_is_refused_and_imports_still_work(api_alice):
    attributes = {f"key_{number}": number for number in range(1_700)}
    records = [{"customer_id": "c1", "email": "ann@example.com", "attributes": attributes}]

    response = api_alice.post(BULK, {"records": records}, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == "records"
    assert error["message"].startswith(
        "Profiles can have at most 500 custom fields. 0 exist, and this would add 1700 new ones "
        "(“key_0”, “key_1”, “key_10”, “key_100”, “key_1000”, …). Nothing was imported."
    )
    assert not Profile.objects.exists()
    assert not ProfileField.objects.filter(is_builtin=False).exists()

    report = import_csv(io.BytesIO(b"customer_id,tier\nc2,gold\n"))

    assert report.created == 1
    assert ProfileField.objects.get(name="tier").profile_count == 1


def test_a_call_that_fits_under_the_limit_is_stored_with_its_fields(api_alice, settings):
    settings.PROFILE_FIELDS_MAX = 3
    records = [{"customer_id": "c1", "attributes": {"a": 1, "b": 2, "c": 3}}]

    response = api_alice.post(BULK, {"records": records}, format="json")

    assert response.status_code == 200
    assert response.json()["created"] == 1
    assert set(ProfileField.objects.filter(is_builtin=False).values_list("name", flat=True)) == {
        "a",
        "b",
        "c",
    }

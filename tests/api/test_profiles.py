"""Profiles through the API: bulk upsert on the CSV import's code path, get, erase."""

from __future__ import annotations

import csv
import io

import pytest

from segments.importing import import_csv
from segments.models import Profile, SegmentMember
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory
from tests.sources.places import people
from tests.sources.test_runs import make_source, run

pytestmark = pytest.mark.django_db
BULK = "/api/v1/profiles/bulk/"


def mixed_records(count: int) -> list[dict]:
    """``count`` records, one in 50 bad: no customer id, or an e-mail over 254 characters."""
    records = []
    for number in range(count):
        record = {
            "customer_id": f"c{number}",
            "email": f"p{number}@example.com",
            "first_name": "Ann",
            "attributes": {"tier": "gold" if number % 2 else "silver", "age": number % 90},
        }
        if number % 50 == 7:
            record["customer_id"] = ""
        if number % 50 == 13:
            record["email"] = "x" * 255
        records.append(record)
    return records


def as_csv(records: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["customer_id", "email", "first_name", "tier", "age"])
    for record in records:
        attributes = record["attributes"]
        writer.writerow(
            [
                record["customer_id"],
                record["email"],
                record["first_name"],
                attributes["tier"],
                attributes["age"],
            ]
        )
    return out.getvalue().encode()


def test_ten_thousand_records_give_what_the_csv_import_of_the_same_rows_gives(api_alice):
    records = mixed_records(10_000)
    response = api_alice.post(BULK, {"records": records}, format="json")
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    stored_by_api = list(
        Profile.objects.order_by("customer_id").values_list(
            "customer_id", "email", "first_name", "attributes"
        )
    )
    Profile.objects.all().delete()

    report = import_csv(io.BytesIO(as_csv(records)))

    assert (body["created"], body["updated"], body["unchanged"], body["rejected"]) == (
        report.created,
        report.updated,
        report.unchanged,
        report.rejected,
    )
    assert body["rejected"] == 400
    api_rejections = [(r["index"] + 2, r["reason"]) for r in body["results"] if r["reason"]]
    assert api_rejections == [(row.line, row.reason) for row in report.rejected_rows]
    assert stored_by_api == list(
        Profile.objects.order_by("customer_id").values_list(
            "customer_id", "email", "first_name", "attributes"
        )
    )


def test_each_record_says_created_updated_unchanged_or_rejected(api_alice):
    ProfileFactory(customer_id="old", email="old@example.com", first_name="Ann", last_name="Lee")
    ProfileFactory(customer_id="same", email="same@example.com", first_name="Ann", last_name="Lee")
    records = [
        {"customer_id": "new", "email": "new@example.com", "first_name": "N", "last_name": ""},
        {"customer_id": "old", "email": "changed@example.com", "first_name": "Ann"},
        {"customer_id": "same", "email": "same@example.com", "first_name": "Ann"},
        {"customer_id": "bad", "attributes": {"nested": {"no": 1}}},
        "not a record",
    ]
    for record in records[1:3]:
        record["last_name"] = "Lee"
    body = api_alice.post(BULK, {"records": records}, format="json").json()

    assert [(r["customer_id"], r["result"]) for r in body["results"]] == [
        ("new", "created"),
        ("old", "updated"),
        ("same", "unchanged"),
        ("bad", "rejected"),
        (None, "rejected"),
    ]
    assert "nested" in body["results"][3]["reason"]
    assert Profile.objects.get(customer_id="old").email == "changed@example.com"


def test_each_record_carries_the_warnings_and_reasons_the_import_report_shows(api_alice):
    records = [
        {"customer_id": "long", "email": "l" * 300 + "@example.com"},  # 313 characters
        {"customer_id": "name", "email": "n@example.com", "first_name": "N" * 300},
        {"customer_id": "odd", "email": "not an address"},
        {"customer_id": "fine", "email": "f@example.com"},
    ]
    body = api_alice.post(BULK, {"records": records}, format="json").json()
    report = import_csv(
        io.BytesIO(
            b"customer_id,email,first_name\n"
            + b"\n".join(
                f"{r['customer_id']},{r['email']},{r.get('first_name', '')}".encode()
                for r in records
            )
        )
    )

    results = body["results"]
    assert [(r["result"], r["reason"]) for r in results] == [
        ("rejected", "The email is longer than 254 characters."),
        ("created", None),
        ("created", None),
        ("created", None),
    ]
    assert [r["warnings"] for r in results] == [
        [],
        [{"field": "first_name", "message": "Shortened from 300 to 200 characters."}],
        [
            {
                "field": "email",
                "message": (
                    "This does not look like an e-mail address: the profile is kept, exports "
                    "skip it."
                ),
            }
        ],
        [],
    ]
    assert [(w.line, w.field) for w in report.warnings] == [(3, "first_name"), (4, "email")]
    assert [(row.line, row.reason) for row in report.rejected_rows] == [(2, results[0]["reason"])]
    assert not Profile.objects.filter(customer_id="long").exists()


def test_more_than_ten_thousand_records_are_refused_with_a_field_error(api_alice):
    response = api_alice.post(
        BULK, {"records": [{"customer_id": str(n)} for n in range(10_001)]}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "records"
    assert not Profile.objects.exists()


def test_contributors_cannot_push_profiles(api_bob):
    response = api_bob.post(BULK, {"records": [{"customer_id": "x"}]}, format="json")
    assert response.status_code == 403
    assert not Profile.objects.exists()


def test_a_profile_is_read_by_its_customer_id(api_charlie):
    ProfileFactory(customer_id="ab/c 1", email="x@example.com")
    ProfileFactory(customer_id="abc-1", email="x@example.com")
    response = api_charlie.get("/api/v1/profiles/abc-1/")
    assert response.json()["customer_id"] == "abc-1"
    assert api_charlie.get("/api/v1/profiles/nobody/").status_code == 404


def test_erasing_by_customer_id_removes_the_profile_and_its_memberships(api_alice):
    person = ProfileFactory(customer_id="p1", email="Erase.Me@example.com")
    other = ProfileFactory(customer_id="p2")
    segment = SegmentFactory()
    segment_refresh(segment_id=segment.pk)
    response = api_alice.post("/api/v1/profiles/erase/", {"customer_id": "p1"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["profiles_erased"], body["memberships_erased"]) == (1, 1)
    assert body["requested_by"] == "alice"
    assert not Profile.objects.filter(pk=person.pk).exists()
    assert list(SegmentMember.objects.values_list("profile_id", flat=True)) == [other.pk]
    assert "erase.me" not in response.content.decode().lower()


def test_erasing_by_email_keeps_no_address_in_clear(api_alice):
    ProfileFactory(customer_id="p1", email="secret.person@example.com")
    ProfileFactory(customer_id="p2", email="SECRET.person@example.com")
    response = api_alice.post(
        "/api/v1/profiles/erase/", {"email": "secret.person@example.com"}, format="json"
    )
    assert response.json()["profiles_erased"] == 2
    from exports.models import Erasure

    stored = Erasure.objects.values().get()
    assert "secret" not in str(stored).lower()


def test_erase_needs_exactly_one_of_customer_id_and_email(api_alice):
    response = api_alice.post("/api/v1/profiles/erase/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("Give either")


def test_the_field_catalogue_is_recounted_once_after_a_burst_of_calls(
    api_alice, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from segments.models import ProfileField

    cache.delete("api:recount-fields")
    with django_capture_on_commit_callbacks(execute=True) as first:
        api_alice.post(BULK, {"records": mixed_records(10)}, format="json")
    with django_capture_on_commit_callbacks(execute=True) as second:
        api_alice.post(BULK, {"records": mixed_records(20)}, format="json")
    assert (len(first), len(second)) == (1, 0)
    assert ProfileField.objects.get(name="tier").data_type == "text"
    # Counted after the first call: its 9 valid records (the 8th has no customer id).
    assert ProfileField.objects.get(name="age").profile_count == 9


def test_records_with_a_nul_character_are_rejected_each_with_the_reason(api_alice):
    records = [
        {"customer_id": "nul-1", "first_name": "A\x00b"},
        {"customer_id": "nul-2", "attributes": {"ci\x00ty": "Oslo"}},
        {"customer_id": "fine", "first_name": "Ann"},
    ]

    body = api_alice.post(BULK, {"records": records}, format="json").json()

    assert [result["result"] for result in body["results"]] == ["rejected", "rejected", "created"]
    assert all("NUL character" in result["reason"] for result in body["results"][:2])


def test_a_profile_says_which_writer_last_set_each_field(api_alice, api_charlie, parquet_place):
    parquet_place.write(people(2))
    source = make_source(
        parquet_place,
        name="Shop",
        mapping={"customer_id": "customer", "email": "email", "attributes": {"score": "score"}},
    )
    run(source)
    pushed = api_alice.post(
        BULK,
        {"records": [{"customer_id": "C00001", "attributes": {"tier": "gold"}}]},
        format="json",
    )
    assert pushed.status_code == 200, pushed.content[:300]
    import_csv(io.BytesIO(b"customer_id,first_name\nC00002,Bea\n"))

    first = api_charlie.get("/api/v1/profiles/C00001/").json()
    listed = api_charlie.get("/api/v1/profiles/").json()["results"]

    assert first["field_origins"] == {"email": source.pk, "score": source.pk, "tier": "api"}
    assert {item["customer_id"]: item["field_origins"] for item in listed} == {
        "C00001": {"email": source.pk, "score": source.pk, "tier": "api"},
        "C00002": {"email": source.pk, "score": source.pk, "first_name": "import"},
    }


def test_a_profile_written_before_origins_were_recorded_has_none(api_charlie):
    ProfileFactory(customer_id="old-1", field_origins=None)
    assert api_charlie.get("/api/v1/profiles/old-1/").json()["field_origins"] == {}


def test_field_origins_cannot_be_written_through_the_api(api_alice):
    record = {"customer_id": "c1", "email": "a@example.com", "field_origins": {"email": 99}}
    response = api_alice.post(BULK, {"records": [record]}, format="json")
    assert response.status_code == 200, response.content[:300]
    assert Profile.objects.get(customer_id="c1").field_origins == {"email": "api"}


#: Every kind of JSON value a field takes, mixed in columns and left out by some records.
RECORDS_OF_EVERY_KIND = [
    {
        "customer_id": "k1",
        "email": "k1@example.com",
        "attributes": {"orders": 3, "score": 1.5, "vip": True, "note": None, "mixed": 1},
    },
    {
        "customer_id": "k2",
        "first_name": None,
        "attributes": {"orders": 0, "score": -0.25, "vip": False, "note": "hi", "mixed": True},
    },
    {"customer_id": "k3", "last_name": " Dahl ", "attributes": {"score": 1e16, "mixed": "x"}},
    {"customer_id": "k4", "attributes": None},
]
#: The same rows as CSV text: numbers as Python writes them, true/false, null as empty.
CSV_OF_EVERY_KIND = (
    b"customer_id,email,first_name,last_name,orders,score,vip,note,mixed\n"
    b"k1,k1@example.com,,,3,1.5,true,,1\n"
    b"k2,,,,0,-0.25,false,hi,true\n"
    b"k3,,,Dahl,,1e+16,,,x\n"
    b"k4,,,,,,,,\n"
)


def stored_profiles() -> list[tuple]:
    return list(
        Profile.objects.order_by("customer_id").values_list(
            "customer_id", "email", "first_name", "last_name", "attributes"
        )
    )


@pytest.mark.parametrize("with_a_bad_record", [False, True])
def test_values_of_every_kind_are_stored_as_the_csv_import_stores_their_text(
    api_alice, with_a_bad_record
):
    # With a bad record the call is read record by record, without one column by column:
    # both give what the CSV import gives.
    records = [*RECORDS_OF_EVERY_KIND, *(["not a record"] if with_a_bad_record else [])]

    body = api_alice.post(BULK, {"records": records}, format="json").json()
    stored_by_api = stored_profiles()
    Profile.objects.all().delete()
    import_csv(io.BytesIO(CSV_OF_EVERY_KIND))

    assert [r["result"] for r in body["results"]] == ["created"] * 4 + (
        ["rejected"] if with_a_bad_record else []
    )
    assert [r["customer_id"] for r in body["results"][:4]] == ["k1", "k2", "k3", "k4"]
    assert stored_by_api == stored_profiles()
    assert stored_by_api[0][4] == {"orders": 3, "score": 1.5, "vip": "true", "mixed": 1}

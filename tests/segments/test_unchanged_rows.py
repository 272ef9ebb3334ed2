"""A re-import writes only what changed (issue 28): an unchanged row is compared with its
profile in the staging table and never written or locked, so its ``updated_at`` (which tells
segment refreshes and export deltas that something changed) stays as it was.

Rows written by the upsert get a new row version (a new ``ctid``); a row only locked would keep
its ``ctid`` but get an ``xmax``: an untouched row keeps both."""

from __future__ import annotations

import io

import pytest
from django.db import connection

from segments import importing, staging
from segments.importing import import_csv, import_json_records
from segments.models import Profile

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row versions are PostgreSQL's (ctid, xmax)"
    ),
]

HEADER = "customer_id,email,first_name,last_name,city,orders,score\n"
ROWS = [
    "c1,ann@example.com,Ann,Lee,Oslo,3,1.5\n",
    "c2,bo@example.com,Bo,,Bergen,0,2.25\n",
    "c3,,Cy,Dahl,,12,-0.5\n",
]


def csv_file(*rows: str, header: str = HEADER) -> io.BytesIO:
    return io.BytesIO((header + "".join(rows)).encode())


def row_versions() -> dict[str, tuple[str, str]]:
    """Each profile's row version (``ctid``) and locker (``xmax``), by customer id."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_id, ctid::text, xmax::text FROM segments_profile")
        return {customer_id: (ctid, xmax) for customer_id, ctid, xmax in cursor.fetchall()}


def test_an_unchanged_file_writes_and_locks_nothing():
    import_csv(csv_file(*ROWS))
    before = row_versions()

    report = import_csv(csv_file(*ROWS))

    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert row_versions() == before
    assert all(xmax == "0" for _ctid, xmax in before.values())


def test_only_the_changed_rows_are_rewritten():
    import_csv(csv_file(*ROWS))
    before = row_versions()

    report = import_csv(csv_file(ROWS[0].replace("Oslo", "Tromsø"), *ROWS[1:]))

    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
    after = row_versions()
    assert after["c1"] != before["c1"]
    assert {key: after[key] for key in ("c2", "c3")} == {key: before[key] for key in ("c2", "c3")}
    assert Profile.objects.get(customer_id="c1").attributes["city"] == "Tromsø"


@pytest.mark.parametrize(
    ("field", "old", "new"),
    [("email", "ann@example.com", "ann@example.org"), ("first_name", "Ann", "Anne")],
)
def test_a_changed_built_in_field_is_a_change(field, old, new):
    import_csv(csv_file(*ROWS))

    report = import_csv(csv_file(ROWS[0].replace(old, new), *ROWS[1:]))

    assert (report.updated, report.unchanged) == (1, 2)
    assert getattr(Profile.objects.get(customer_id="c1"), field) == new


def test_a_change_in_one_attribute_only_is_a_change():
    import_csv(csv_file(*ROWS))

    report = import_csv(csv_file(*ROWS[:2], ROWS[2].replace(",12,", ",13,")))

    assert (report.updated, report.unchanged) == (1, 2)
    assert Profile.objects.get(customer_id="c3").attributes["orders"] == 13


def test_a_number_written_another_way_is_the_same_value():
    import_csv(csv_file(*ROWS))

    report = import_csv(csv_file(ROWS[0].replace(",1.5\n", ",1.50\n"), *ROWS[1:]))

    assert (report.updated, report.unchanged) == (0, 3)
    assert Profile.objects.get(customer_id="c1").attributes["score"] == 1.5


def test_a_number_becoming_text_is_a_change():
    import_csv(csv_file(*ROWS))

    report = import_csv(csv_file(ROWS[0].replace(",3,", ",03,"), *ROWS[1:]))

    assert report.updated == 1
    assert Profile.objects.get(customer_id="c1").attributes["orders"] == "03"


def test_an_emptied_value_removes_the_attribute_once():
    import_csv(csv_file(*ROWS))

    emptied = import_csv(csv_file(ROWS[0].replace("Oslo", ""), *ROWS[1:]))
    again = import_csv(csv_file(ROWS[0].replace("Oslo", ""), *ROWS[1:]))

    assert (emptied.updated, again.updated, again.unchanged) == (1, 0, 3)
    assert "city" not in Profile.objects.get(customer_id="c1").attributes


def test_a_stored_null_or_empty_text_is_not_taken_for_a_missing_value():
    import_csv(csv_file(*ROWS))
    Profile.objects.filter(customer_id="c3").update(attributes={"city": None, "orders": 12})
    Profile.objects.filter(customer_id="c2").update(attributes={"city": "Bergen", "orders": ""})

    report = import_csv(csv_file(*ROWS))

    # c3's file row has no city: the stored null goes; c2's orders is 0 in the file, not "".
    assert (report.updated, report.unchanged) == (2, 1)
    assert Profile.objects.get(customer_id="c3").attributes == {"orders": 12, "score": -0.5}
    assert Profile.objects.get(customer_id="c2").attributes["orders"] == 0


def test_an_empty_email_in_the_file_and_in_the_profile_is_no_change():
    import_csv(csv_file(*ROWS))
    before = row_versions()

    report = import_csv(csv_file(*ROWS))

    assert report.unchanged == 3
    assert row_versions()["c3"] == before["c3"]
    assert Profile.objects.get(customer_id="c3").email == ""


def test_attributes_the_file_does_not_have_are_kept_and_are_no_change():
    import_csv(csv_file(*ROWS))
    import_csv(csv_file("c1,7\n", header="customer_id,visits\n"))
    before = row_versions()

    report = import_csv(csv_file(*ROWS))

    assert (report.updated, report.unchanged) == (0, 3)
    assert row_versions() == before
    assert Profile.objects.get(customer_id="c1").attributes["visits"] == 7


def test_a_file_with_fewer_columns_compares_only_those():
    import_csv(csv_file(*ROWS))
    before = row_versions()

    report = import_csv(csv_file("c1,Oslo\n", "c2,Bergen\n", header="customer_id,city\n"))

    assert (report.updated, report.unchanged) == (0, 2)
    assert row_versions() == before


def test_values_that_need_escaping_are_stored_as_written_and_then_unchanged():
    awkward = 'c9,"tab\there",Back\\slash,"Quo""te","line\nbreak","{""json"": 1}",x\n'
    import_csv(csv_file(awkward))

    report = import_csv(csv_file(awkward))

    profile = Profile.objects.get(customer_id="c9")
    assert (profile.email, profile.first_name, profile.last_name) == (
        "tab\there",
        "Back\\slash",
        'Quo"te',
    )
    assert profile.attributes == {"city": "line\nbreak", "orders": '{"json": 1}', "score": "x"}
    assert (report.created, report.unchanged) == (0, 1)


def test_a_clean_batch_and_a_batch_looked_at_row_by_row_store_the_same(monkeypatch):
    monkeypatch.setattr(importing, "BATCH_ROWS", 3)
    # The second batch has a row of the wrong width: it is checked row by row.
    import_csv(csv_file(*ROWS, "c4,d@example.com,Di,Ek,Oslo,1,1.5\n", "c5,too,few\n", ROWS[0]))
    clean = {p.customer_id: (p.email, p.attributes) for p in Profile.objects.all()}
    Profile.objects.all().delete()

    monkeypatch.setattr(importing, "BATCH_ROWS", 5_000)
    import_csv(csv_file(*ROWS, "c4,d@example.com,Di,Ek,Oslo,1,1.5\n"))

    assert {p.customer_id: (p.email, p.attributes) for p in Profile.objects.all()} == clean


def test_rows_after_a_value_spanning_lines_are_numbered_by_their_first_line():
    report = import_csv(csv_file('c1,a@example.com,"Ann\nMarie",Lee,Oslo,1,1\n', "c2,bad,,,,,\n"))

    assert [(w.line, type(w).__name__) for w in report.warnings] == [(4, "UnusableAddress")]


def test_the_api_leaves_unchanged_records_untouched():
    records = [{"customer_id": "a1", "email": "a@example.com", "attributes": {"tier": "gold"}}]
    import_json_records(records)
    before = row_versions()

    result = import_json_records(records)

    assert result["unchanged"] == 1
    assert result["results"][0]["result"] == "unchanged"
    assert row_versions() == before


@pytest.mark.django_db(transaction=True)
def test_an_unchanged_row_keeps_its_updated_at_and_row_version_across_transactions():
    import_csv(csv_file(*ROWS))
    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_id, xmin::text, updated_at FROM segments_profile")
        before = {row[0]: row[1:] for row in cursor.fetchall()}

    import_csv(csv_file(ROWS[0].replace("Lee", "Li"), *ROWS[1:]))

    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_id, xmin::text, updated_at FROM segments_profile")
        after = {row[0]: row[1:] for row in cursor.fetchall()}
    assert after["c2"] == before["c2"] and after["c3"] == before["c3"]
    assert after["c1"][0] != before["c1"][0] and after["c1"][1] > before["c1"][1]


@pytest.mark.parametrize("rows_per_page", [0, 10**9], ids=["table hashed", "index lookups"])
def test_profiles_found_by_the_index_or_by_hashing_the_table_are_written_alike(
    monkeypatch, rows_per_page
):
    monkeypatch.setattr(staging, "_INDEX_ROWS_PER_PAGE", rows_per_page)
    import_csv(csv_file(*ROWS))
    before = row_versions()

    report = import_csv(csv_file(ROWS[0].replace("Oslo", "Tromsø"), *ROWS[1:], "c4,,Di,,,,\n"))
    result = import_json_records([{"customer_id": "c2", "attributes": {"city": "Bergen"}}])

    assert (report.created, report.updated, report.unchanged) == (1, 1, 2)
    assert row_versions()["c2"] == before["c2"] and row_versions()["c3"] == before["c3"]
    assert Profile.objects.get(customer_id="c1").attributes["city"] == "Tromsø"
    assert result["results"][0]["result"] == "unchanged"


def another_writer_makes(customer_id: str):
    """An execute wrapper: the profile ``customer_id`` appears after the upsert's snapshot, as
    when another writer commits it meanwhile (an insert in the statement itself, which its
    own join cannot see), then is there for the statement that follows."""
    made = []

    def wrapper(execute, sql, params, many, context):
        if "inserted AS (" in sql and not made:
            made.append(customer_id)
            sneaked = (
                "WITH another_writer AS (INSERT INTO segments_profile (customer_id, email,"
                " first_name, last_name, attributes) VALUES (%(sneaked)s, '', 'Other', '', '{}')),"
            )
            return execute(
                sql.replace("WITH", sneaked, 1), {**params, "sneaked": customer_id}, many, context
            )
        if made == [customer_id] and "upserted AS (" in sql:
            made.append("done")
            Profile.objects.create(customer_id=customer_id, first_name="Other", attributes={})
        return execute(sql, params, many, context)

    return wrapper


@pytest.mark.parametrize("via", ["file", "api"])
def test_a_profile_made_meanwhile_by_another_writer_is_updated_not_inserted(via):
    import_csv(csv_file(ROWS[0]))

    with connection.execute_wrapper(another_writer_makes("c2")):
        if via == "file":
            report = import_csv(csv_file(*ROWS))
            counts = (report.created, report.updated, report.unchanged)
        else:
            records = [
                {"customer_id": "c1", "email": "ann@example.com", "first_name": "Ann"},
                {"customer_id": "c2", "email": "bo@example.com", "first_name": "Bo"},
                {"customer_id": "c3", "first_name": "Cy"},
            ]
            result = import_json_records(records)
            counts = (result["created"], result["updated"], result["unchanged"])
            outcomes = [row["result"] for row in result["results"]]
            assert outcomes == ["unchanged", "updated", "created"]

    assert counts == (1, 1, 1)
    assert Profile.objects.get(customer_id="c2").first_name == "Bo"
    assert Profile.objects.filter(customer_id="c2").count() == 1
    assert set(Profile.objects.values_list("customer_id", flat=True)) == {"c1", "c2", "c3"}

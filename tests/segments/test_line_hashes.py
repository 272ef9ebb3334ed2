"""A CSV re-import leaves out the lines that made their profiles as they are (issue 28,
``segments.line_hashes``): the report says what a full check would say, and a line is checked
again as soon as its profile changed by any other way."""

from __future__ import annotations

import csv
import io
from dataclasses import astuple

import pytest
from django.db import connection

from segments import importing, line_hashes
from segments.importing import ColumnMap, import_columns, import_csv, import_json_records
from segments.models import Profile, ProfileField
from segments.staging import StagedRows

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="only PostgreSQL's import leaves lines out"
    ),
]

HEADER = "customer_id,email,first_name,last_name,city,orders\n"
ROWS = [
    "c1,ann@example.com,Ann,Lee,Oslo,3\n",
    "c2,bo@example.com,Bo,,Bergen,0\n",
    "c3,cy@example.com,Cy,Dahl,,12\n",
]


def csv_file(*rows: str, header: str = HEADER) -> io.BytesIO:
    return io.BytesIO((header + "".join(rows)).encode())


@pytest.fixture
def checked_lines(monkeypatch) -> list[int]:
    """The lines of the rows that the import checked, of every import."""
    lines: list[int] = []
    full_check = importing._staged

    def staged(rows, row_lines, *args, **kwargs):
        lines.extend(row_lines)
        return full_check(rows, row_lines, *args, **kwargs)

    monkeypatch.setattr(importing, "_staged", staged)
    return lines


def profile(customer_id: str) -> tuple:
    found = Profile.objects.get(customer_id=customer_id)
    return found.email, found.first_name, found.last_name, found.attributes


def test_an_unchanged_file_is_counted_without_checking_its_rows(checked_lines):
    first = import_csv(csv_file(*ROWS))
    checked_lines.clear()

    again = import_csv(csv_file(*ROWS))

    assert checked_lines == []
    assert (again.rows_read, again.created, again.updated, again.unchanged) == (3, 0, 0, 3)
    assert first.created == 3


def test_only_the_changed_lines_are_checked_and_written(checked_lines):
    import_csv(csv_file(*ROWS))
    checked_lines.clear()

    report = import_csv(csv_file(ROWS[0], ROWS[1].replace("Bergen", "Bodø"), ROWS[2]))

    assert checked_lines == [3]
    assert (report.updated, report.unchanged) == (1, 2)
    assert profile("c2")[3] == {"city": "Bodø", "orders": 0}


AWKWARD_ROWS = [
    *ROWS,
    "c4,,Di,Ek,Oslo,1\n",  # no e-mail: a warning
    "c5,not an address,Ed,,Oslo,2\n",  # a warning
    "c6,f@example.com," + "F" * 250 + ",,Oslo,4\n",  # a shortened name: a warning
    "c7,too,few\n",  # rejected
    ",g@example.com,G,,Oslo,5\n",  # no customer id: rejected
    'c8,h@example.com,"Hal\nMarie",Ek,Oslo,6\n',  # a row over two lines
    "c2,bo@example.com,Bo,,Bergen,0\n",  # the same customer id as line 3: a warning
    "c9,i@example.com,Ib,,Oslo,7\n",
]


def test_a_re_import_reports_what_checking_every_row_reports(checked_lines, monkeypatch):
    monkeypatch.setattr(importing, "BATCH_ROWS", 3)  # a batch with a quote is read whole
    first = import_csv(csv_file(*AWKWARD_ROWS))
    checked_lines.clear()

    again = import_csv(csv_file(*AWKWARD_ROWS))
    skipped = {*range(2, 11), 12, 13} - set(checked_lines)  # the lines rows start on
    monkeypatch.setattr(line_hashes, "may_leave_out", lambda names: False)
    checked_lines.clear()
    full = import_csv(csv_file(*AWKWARD_ROWS))

    assert astuple(again) == astuple(full)
    assert (again.rows_read, again.created, again.updated, again.unchanged) == (11, 0, 0, 8)
    assert again.rejected_rows == first.rejected_rows
    assert [astuple(warning) for warning in again.warnings] == [
        astuple(warning) for warning in first.warnings
    ]
    # The warned and rejected rows are checked again, and the batch with a quote; the plain
    # rows are not, the repeated one (line 12) either: the warning is said again all the same.
    assert skipped == {2, 3, 4, 12, 13}
    assert [(w.line, w.first_line) for w in again.warnings[-1:]] == [(12, 3)]


def test_a_new_file_is_not_looked_up_after_its_first_batch(checked_lines, monkeypatch):
    monkeypatch.setattr(importing, "BATCH_ROWS", 2)
    import_csv(csv_file(ROWS[0]))
    looked_up = []
    monkeypatch.setattr(
        line_hashes,
        "unchanged_lines",
        lambda ids, hashes, on, first_line, real=line_hashes.unchanged_lines: (
            looked_up.append(ids) or real(ids, hashes, on, first_line)
        ),
    )
    checked_lines.clear()

    report = import_csv(csv_file(ROWS[1], ROWS[2], ROWS[0]))

    assert looked_up == [["c2", "c3"]]
    assert checked_lines == [2, 3, 4]
    assert (report.created, report.unchanged) == (2, 1)


def test_a_line_repeated_later_in_the_file_is_still_warned_about():
    import_csv(csv_file(*ROWS))

    report = import_csv(csv_file(*ROWS, ROWS[0]))

    assert [(w.line, w.first_line) for w in report.warnings] == [(5, 2)]
    assert (report.rows_read, report.unchanged) == (4, 3)


def test_a_changed_row_after_its_unchanged_twin_is_the_one_kept():
    import_csv(csv_file(*ROWS))

    report = import_csv(csv_file(*ROWS, ROWS[0].replace("Oslo", "Tromsø")))

    assert (report.updated, report.unchanged) == (1, 2)
    assert profile("c1")[3]["city"] == "Tromsø"


def test_an_api_upsert_makes_the_line_count_again():
    import_csv(csv_file(*ROWS))
    import_json_records([{"customer_id": "c1", "first_name": "Annie"}])

    report = import_csv(csv_file(*ROWS))

    assert (report.updated, report.unchanged) == (1, 2)
    assert profile("c1")[1] == "Ann"


def test_a_source_write_makes_the_line_count_again():
    import_csv(csv_file(*ROWS))
    staged = StagedRows([1], ["c1"], [""], [""], [""], [['"city": "Paris"']])
    import_columns(staged, {"city": ProfileField.DataType.TEXT}, fields=["customer_id"])
    assert profile("c1")[3]["city"] == "Paris"

    report = import_csv(csv_file(*ROWS))

    assert (report.updated, report.unchanged) == (1, 2)
    assert profile("c1")[3]["city"] == "Oslo"


def test_an_edit_through_the_orm_makes_the_line_count_again():
    import_csv(csv_file(*ROWS))
    edited = Profile.objects.get(customer_id="c1")
    edited.last_name = "Li"
    edited.save()
    Profile.objects.filter(customer_id="c2").update(email="other@example.com")

    report = import_csv(csv_file(*ROWS))

    assert (report.updated, report.unchanged) == (2, 1)
    assert profile("c1")[2] == "Lee"
    assert profile("c2")[0] == "bo@example.com"


def test_an_erased_profile_is_created_again():
    import_csv(csv_file(*ROWS))
    Profile.objects.filter(customer_id="c3").delete()

    report = import_csv(csv_file(*ROWS))

    assert (report.created, report.unchanged) == (1, 2)
    assert profile("c3")[1] == "Cy"


def test_the_same_lines_under_another_column_map_are_checked(checked_lines):
    header = "customer_id,email,backup\n"
    rows = ["c1,a@example.com,b@example.com\n"]
    import_csv(csv_file(*rows, header=header))
    checked_lines.clear()

    report = import_csv(csv_file(*rows, header=header), ColumnMap(email="backup"))

    assert checked_lines == [2]
    assert report.updated == 1
    assert profile("c1")[0] == "b@example.com"


def test_a_profile_without_a_hash_gets_one_and_is_left_out_next_time(checked_lines):
    import_csv(csv_file(*ROWS))
    with connection.cursor() as cursor:  # as a profile imported before hashes were kept
        cursor.execute("UPDATE segments_profile SET import_line_hash = NULL")
    updated_at = dict(Profile.objects.values_list("customer_id", "updated_at"))
    checked_lines.clear()

    first = import_csv(csv_file(*ROWS))
    checked_first = list(checked_lines)
    second = import_csv(csv_file(*ROWS))

    assert checked_first == [2, 3, 4]
    assert checked_lines == [2, 3, 4]  # nothing more the second time
    assert (first.unchanged, second.unchanged) == (3, 3)
    assert dict(Profile.objects.values_list("customer_id", "updated_at")) == updated_at


def test_values_on_left_out_lines_keep_their_fields_types():
    import_csv(csv_file(*ROWS))
    assert ProfileField.objects.get(name="orders").data_type == ProfileField.DataType.NUMBER

    import_csv(csv_file(*ROWS))
    import_csv(csv_file(ROWS[0], ROWS[1].replace(",0\n", ",many\n"), ROWS[2]))

    types = dict(ProfileField.objects.values_list("name", "data_type"))
    assert types["orders"] == ProfileField.DataType.TEXT
    assert types["city"] == ProfileField.DataType.TEXT


def test_a_column_empty_on_every_line_is_typed_as_a_full_check_types_it(checked_lines, monkeypatch):
    header = "customer_id,email,orders,note\n"
    rows = ["c1,a@example.com,3,\n", "c2,b@example.com,4,\n"]
    import_csv(csv_file(*rows, header=header))
    checked_lines.clear()
    import_csv(csv_file(*rows, header=header))
    assert checked_lines == []
    left_out = dict(ProfileField.objects.values_list("name", "data_type"))

    monkeypatch.setattr(line_hashes, "may_leave_out", lambda names: False)
    import_csv(csv_file(*rows, header=header))

    assert dict(ProfileField.objects.values_list("name", "data_type")) == left_out
    assert left_out["orders"] == ProfileField.DataType.NUMBER


def test_lines_are_checked_when_a_field_of_the_file_is_not_in_the_catalogue(checked_lines):
    import_csv(csv_file(*ROWS))
    ProfileField.objects.filter(name="city").delete()
    checked_lines.clear()

    report = import_csv(csv_file(*ROWS))

    assert checked_lines == [2, 3, 4]
    assert report.unchanged == 3


@pytest.fixture
def short_field_limit():
    """Fields longer than 20 characters cannot be read as CSV."""
    limit = csv.field_size_limit(20)
    yield
    csv.field_size_limit(limit)


def test_a_line_that_cannot_be_read_is_rejected_between_left_out_lines(short_field_limit):
    long_line = "c4,d@example.com,Di,Ek,Oslo,1" + "0" * 30 + "\n"
    first = import_csv(csv_file(*ROWS, long_line, "c5,e@example.com,Ed,,Oslo,2\n"))

    again = import_csv(csv_file(*ROWS, long_line, "c5,e@example.com,Ed,,Oslo,2\n"))

    assert [row.line for row in first.rejected_rows] == [5]
    assert again.rejected_rows == first.rejected_rows
    assert (again.rows_read, again.rejected, again.unchanged) == (5, 1, 4)


def test_a_line_that_cannot_be_read_among_quoted_rows_is_rejected_on_its_line(
    short_field_limit,
):
    too_long = "c5,e@example.com,Ed,,Oslo," + "2" * 30 + "\n"
    rows = [*ROWS, 'c4,d@example.com,"Di",Ek,Oslo,1\n', too_long]

    first = import_csv(csv_file(*rows, 'c6,f@example.com,"Fi",,Oslo,3\n'))
    again = import_csv(csv_file(*rows, 'c6,f@example.com,"Fi",,Oslo,3\n'))

    assert [row.line for row in first.rejected_rows] == [6]
    assert first.rows_read == 6
    assert astuple(again) == (*astuple(first)[:1], 0, 0, 5, *astuple(first)[4:])

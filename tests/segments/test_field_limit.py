"""At most PROFILE_FIELDS_MAX custom profile fields, refused on every way in before anything is
stored, and a recount that works at any number of fields (issue 22, item 10)."""

from __future__ import annotations

import io
import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from segments import importing
from segments.catalogue import TooManyFields, check_field_limit, recount_fields
from segments.importing import (
    ImportFileError,
    ProfileRecord,
    check_csv_header,
    import_csv,
    import_records,
)
from segments.models import Profile, ProfileField, ProfileImport
from segments.services import profile_import_run

pytestmark = pytest.mark.django_db


def csv_with_columns(count: int, rows: int = 1) -> bytes:
    names = [f"column_{number}" for number in range(count)]
    lines = [",".join(["customer_id", *names])]
    lines += [",".join([f"c{row}", *("x" for _ in names)]) for row in range(rows)]
    return ("\n".join(lines) + "\n").encode()


class CountingStream(io.BytesIO):
    """A file that remembers how many bytes were read from it."""

    bytes_read = 0

    def read(self, size=-1):
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def read1(self, size=-1):
        data = super().read1(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer):
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


def custom_fields() -> set[str]:
    return set(ProfileField.objects.filter(is_builtin=False).values_list("name", flat=True))


def test_a_csv_import_with_too_many_new_columns_is_refused_before_it_stores_anything(settings):
    settings.PROFILE_FIELDS_MAX = 10
    import_csv(io.BytesIO(b"customer_id,city,tier\n1,Oslo,gold\n"))

    with pytest.raises(ImportFileError) as refused:
        import_csv(io.BytesIO(csv_with_columns(9)))

    assert str(refused.value) == (
        "Profiles can have at most 10 custom fields. 2 exist, and this would add 9 new ones "
        "(“column_0”, “column_1”, “column_2”, “column_3”, “column_4”, …). Nothing was "
        "imported. Leave out the fields you do not need, or ask an administrator to raise the "
        "limit (PROFILE_FIELDS_MAX)."
    )
    assert list(Profile.objects.values_list("customer_id", flat=True)) == ["1"]
    assert custom_fields() == {"city", "tier"}


def test_fields_already_in_the_catalogue_cost_nothing_even_over_a_lowered_limit(settings):
    import_csv(io.BytesIO(csv_with_columns(5)))
    settings.PROFILE_FIELDS_MAX = 3

    report = import_csv(io.BytesIO(csv_with_columns(5, rows=2)))
    with pytest.raises(TooManyFields, match="5 exist, and this would add 1 new one"):
        check_field_limit(["column_0", "another"])

    assert (report.created, report.unchanged) == (1, 1)


def test_a_queued_import_over_the_limit_fails_with_the_reason_in_its_report(settings, tmp_path):
    settings.PROFILE_FIELDS_MAX = 10
    path = tmp_path / "wide.csv"
    path.write_bytes(csv_with_columns(11))
    profile_import = ProfileImport.objects.create(file_name="wide.csv", stored_path=str(path))

    profile_import = profile_import_run(import_id=profile_import.pk)

    assert profile_import.status == ProfileImport.Status.FAILED
    assert profile_import.error.startswith(
        "Profiles can have at most 10 custom fields. 0 exist, and this would add 11 new ones"
    )
    assert profile_import.rows_read == 0
    assert not Profile.objects.exists()


def test_a_hundred_thousand_columns_are_refused_from_the_header_alone():
    header_length = len(csv_with_columns(100_000, rows=0))
    stream = CountingStream(csv_with_columns(100_000, rows=50))

    with pytest.raises(ImportFileError, match="would add 100000 new ones"):
        import_csv(stream)

    # The rows (5 MB) were not read: only the header, and what one read-ahead buffer holds.
    assert stream.bytes_read < header_length + 64 * 1024
    assert not Profile.objects.exists()
    assert not custom_fields()


def test_a_wide_header_without_a_customer_id_column_is_named_by_its_first_columns():
    header = ",".join(f"column_{number}" for number in range(100_000))

    with pytest.raises(ImportFileError) as refused:
        import_csv(io.BytesIO(header.encode() + b"\n"))

    assert str(refused.value) == (
        "No “customer_id” column was found. The header row has: "
        + ", ".join(f"column_{number}" for number in range(20))
        + ", …. Name the column that holds the customer id."
    )


def test_the_upload_page_refuses_a_hundred_thousand_columns_at_once(as_alice):
    # 3 MB: past FILE_UPLOAD_MAX_MEMORY_SIZE, so the page reads the header from a file on disk.
    upload = SimpleUploadedFile("wide.csv", csv_with_columns(100_000, rows=10), "text/csv")

    response = as_alice.post(
        reverse("profiles:import"),
        {
            "file": upload,
            "customer_id_column": "customer_id",
            "email_column": "email",
            "first_name_column": "first_name",
            "last_name_column": "last_name",
        },
    )

    assert response.status_code == 200
    assert "Profiles can have at most 500 custom fields." in response.content.decode()
    assert "would add 100000 new ones" in response.content.decode()
    assert not ProfileImport.objects.exists()


def test_the_header_check_reads_the_header_only_and_leaves_other_problems_to_the_import(
    settings,
):
    settings.PROFILE_FIELDS_MAX = 2
    stream = CountingStream(b"id,email,a\n" + b"1,x@example.com,1\n" * 100_000)

    check_csv_header(stream)  # no customer id column ("id" is a field): the import will say so

    assert stream.bytes_read < 64 * 1024
    with pytest.raises(ImportFileError, match="would add 3 new ones"):
        check_csv_header(io.BytesIO(b"customer_id,EMAIL,a,b,c\n"))
    check_csv_header(io.BytesIO(b"customer_id,EMAIL,a,b\n"))


def test_the_demo_seeder_path_keeps_to_the_limit_too(settings):
    settings.PROFILE_FIELDS_MAX = 1
    records = [ProfileRecord(2, "c1", "", "", "", {"a": "1", "b": "2"})]

    with pytest.raises(TooManyFields):
        import_records(records, {"a": "text", "b": "text"})

    assert not Profile.objects.exists()


def test_the_recount_works_past_postgresqls_column_limit(settings):
    # 2,000 fields: one column per field went over PostgreSQL's 1,664 and failed every import.
    settings.PROFILE_FIELDS_MAX = 2_000
    names = [f"column_{number}" for number in range(2_000)]
    lines = [",".join(["customer_id", "email", *names])]
    lines.append(",".join(["c1", "a@example.com", *("x" for _ in names)]))
    lines.append(",".join(["c2", "", *(("y" if n % 2 else "") for n in range(2_000))]))

    report = import_csv(io.BytesIO(("\n".join(lines) + "\n").encode()))
    recount_fields()

    assert report.created == 2
    counts = dict(ProfileField.objects.values_list("name", "profile_count"))
    assert len(counts) == 2_004
    assert (counts["column_0"], counts["column_1"], counts["column_1999"]) == (1, 2, 2)
    assert (counts["customer_id"], counts["email"], counts["first_name"]) == (2, 1, 0)


def test_the_recount_counts_each_field_as_before(settings):
    import_csv(io.BytesIO(b"customer_id,first_name,city,age\n1,Ann,Oslo,\n2,,,31\n3,,Oslo,40\n"))
    Profile.objects.filter(customer_id="3").delete()
    ProfileField.objects.update(profile_count=99)

    recount_fields()

    assert dict(ProfileField.objects.values_list("name", "profile_count")) == {
        "customer_id": 2,
        "email": 0,
        "first_name": 1,
        "last_name": 0,
        "city": 1,
        "age": 1,
    }


@pytest.mark.django_db(transaction=True)
def test_two_imports_at_once_cannot_both_take_the_last_places(settings, monkeypatch):
    # The first import, while it stores its rows, lets a second one start: the second must
    # wait for the first's fields to be in the catalogue, and is then refused.
    settings.PROFILE_FIELDS_MAX = 10
    store = importing._store
    second: dict = {}

    def import_second() -> None:
        try:
            second["report"] = import_csv(io.BytesIO(csv_with_columns(6).replace(b"column", b"b")))
        except ImportFileError as error:
            second["refused"] = str(error)
        finally:
            connection.close()

    def store_then_let_another_start(*args, **kwargs):
        store(*args, **kwargs)
        thread = threading.Thread(target=import_second)
        thread.start()
        for _attempt in range(600):  # until the second waits for the lock, or has finished
            if _waiting_for_a_lock() or not thread.is_alive():
                break
            time.sleep(0.05)
        second["thread"] = thread

    monkeypatch.setattr(importing, "_store", store_then_let_another_start)
    import_csv(io.BytesIO(csv_with_columns(6)))
    second["thread"].join(timeout=60)

    assert "report" not in second
    assert "10 custom fields. 6 exist, and this would add 6 new ones" in second["refused"]
    assert len(custom_fields()) == 6


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        # pg_locks lists the whole server's: only this database's (other xdist workers import)
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0] > 0


def test_a_queued_import_reports_first_and_recounts_the_fields_once_committed(
    tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        profile_import = _queued_import(tmp_path, b"customer_id,city\n1,Oslo\n2,\n3,Paris\n")

    assert profile_import.created_count == 3
    assert ProfileField.objects.get(name="city").profile_count == 0  # not counted yet
    for callback in callbacks:
        callback()  # the recount task, eager in the tests
    assert ProfileField.objects.get(name="city").profile_count == 2


def test_a_queued_import_that_changed_nothing_queues_no_recount(
    tmp_path, django_capture_on_commit_callbacks
):
    import_csv(io.BytesIO(b"customer_id,city\n1,Oslo\n"))

    with django_capture_on_commit_callbacks() as callbacks:
        profile_import = _queued_import(tmp_path, b"customer_id,city\n1,Oslo\n")

    assert profile_import.unchanged_count == 1
    assert callbacks == []


def _queued_import(folder, content: bytes) -> ProfileImport:
    path = folder / "people.csv"
    path.write_bytes(content)
    profile_import = ProfileImport.objects.create(file_name="people.csv", stored_path=str(path))
    return profile_import_run(import_id=profile_import.pk)

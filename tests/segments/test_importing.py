from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from segments.importing import (
    ColumnMap,
    ImportFileError,
    MissingAddress,
    ProfileRecord,
    RepeatedCustomerId,
    ShortenedValue,
    UnusableAddress,
    import_csv,
    import_records,
    warning_message,
)
from segments.models import Profile, ProfileField

pytestmark = pytest.mark.django_db


def csv_bytes(text: str, bom: bool = False) -> io.BytesIO:
    return io.BytesIO((b"\xef\xbb\xbf" if bom else b"") + text.encode())


def test_it_imports_ten_thousand_rows():
    lines = ["customer_id,email,first_name,last_name,score"]
    lines += [f"id{n},p{n}@example.com,First{n},Last{n},{n}" for n in range(10_000)]
    report = import_csv(csv_bytes("\n".join(lines)))
    assert (report.rows_read, report.created, report.rejected) == (10_000, 10_000, 0)
    assert Profile.objects.count() == 10_000
    profile = Profile.objects.get(customer_id="id9999")
    assert (profile.email, profile.first_name, profile.attributes) == (
        "p9999@example.com",
        "First9999",
        {"score": 9999},
    )
    assert ProfileField.objects.get(name="score").data_type == ProfileField.DataType.NUMBER
    assert ProfileField.objects.get(name="score").profile_count == 10_000


def test_it_reports_malformed_rows_with_their_line_and_keeps_the_rest():
    data = (
        b"customer_id,email,city\n"
        b"1,a@example.com,Oslo\n"
        b"2,b@example.com\n"  # too few values
        b"3,c@example.com,Bergen,extra\n"  # too many
        b"4,d@example.com,Tr\xf8ndelag\n"  # Latin-1, not UTF-8
        b",e@example.com,Paris\n"  # no customer id
        b"6,f@example.com,Lyon\n"
    )
    report = import_csv(io.BytesIO(data))
    assert report.created == 2
    assert [(row.line, row.reason) for row in report.rejected_rows] == [
        (3, "The row has 2 values but the header has 3 columns."),
        (4, "The row has 4 values but the header has 3 columns."),
        (5, "The row is not valid UTF-8 text. Save the file as UTF-8 (CSV) and import it again."),
        (6, "The row has no customer id."),
    ]
    assert set(Profile.objects.values_list("customer_id", flat=True)) == {"1", "6"}


def test_a_row_with_a_nul_character_is_rejected_and_the_rest_kept():
    data = b"customer_id,first_name\n1,Ann\n2,A\x00b\n3,Bo\n"

    report = import_csv(io.BytesIO(data))

    assert report.created == 2
    ((line, reason),) = [(row.line, row.reason) for row in report.rejected_rows]
    assert line == 3 and "NUL character" in reason


def test_a_header_with_a_nul_character_is_refused_with_the_reason():
    with pytest.raises(ImportFileError, match="NUL character"):
        import_csv(io.BytesIO(b"customer_id,ci\x00ty\n1,Oslo\n"))


def test_it_reads_a_byte_order_mark_and_unicode():
    report = import_csv(
        csv_bytes(
            "customer_id,email,first_name,last_name,city\n9,wang@example.com,伟,王,北京\n", bom=True
        )
    )
    assert report.created == 1
    profile = Profile.objects.get(customer_id="9")
    assert (profile.first_name, profile.last_name, profile.attributes) == (
        "伟",
        "王",
        {"city": "北京"},
    )


def test_a_300_character_first_name_keeps_the_profile_with_a_warning_naming_the_line():
    report = import_csv(
        csv_bytes(
            f"customer_id,email,first_name\n1,a@example.com,Ann\n2,b@example.com,{'N' * 300}\n"
        )
    )
    assert (report.created, report.rejected) == (2, 0)
    assert report.warned == 1
    assert report.warnings == [ShortenedValue(3, "first_name", 300, 200)]
    assert Profile.objects.get(customer_id="2").first_name == "N" * 200


@pytest.mark.parametrize(("field", "limit"), [("first_name", 200), ("last_name", 200)])
def test_every_over_long_name_field_is_shortened_and_the_row_kept(field, limit):
    too_long = "王" * (limit + 50)
    report = import_csv(csv_bytes(f"customer_id,{field},city\n7,{too_long},Oslo\n"))
    assert (report.created, report.rejected, report.warned) == (1, 0, 1)
    assert report.warnings == [ShortenedValue(2, field, limit + 50, limit)]
    profile = Profile.objects.get(customer_id="7")
    assert getattr(profile, field) == "王" * limit
    assert profile.attributes == {"city": "Oslo"}


def test_a_name_is_shortened_before_a_combining_accent_never_through_it():
    name = "e" * 199 + "e\u0301" + "f" * 10
    report = import_csv(csv_bytes(f"customer_id,last_name\n1,{name}\n"))
    assert Profile.objects.get().last_name == "e" * 199
    assert report.warnings == [ShortenedValue(2, "last_name", 211, 199)]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("customer_id", "c" * 256, "The customer id is longer than 255 characters."),
        ("email", "e" * 243 + "@example.com", "The email is longer than 254 characters."),
        (
            "email",
            "e" * 65 + "@example.com",
            "The part of the email before the @ is longer than 64 characters.",
        ),
    ],
)
def test_an_over_long_customer_id_or_email_still_rejects_the_row(column, value, reason):
    other = "email" if column == "customer_id" else "customer_id"
    kept = "kept,k@example.com" if column == "customer_id" else "k@example.com,kept"
    report = import_csv(csv_bytes(f"{column},{other}\n{value},x\n{kept}\n"))
    assert report.created == 1 and Profile.objects.get().customer_id == "kept"
    assert [(row.line, row.reason) for row in report.rejected_rows] == [(2, reason)]
    assert report.warned == 0


def test_records_from_code_are_checked_like_csv_rows():
    records = [
        ProfileRecord(1, "a", "a@example.com", "A" * 250, "Lee", {}),
        ProfileRecord(2, "b" * 300, "b@example.com", "", "", {}),
    ]
    report = import_records(records, {})
    assert report.warnings == [ShortenedValue(1, "first_name", 250, 200)]
    assert [row.line for row in report.rejected_rows] == [2]
    assert Profile.objects.get().first_name == "A" * 200


def test_it_counts_a_quoted_multiline_value_as_one_row():
    report = import_csv(csv_bytes('customer_id,note\n1,"two\nlines"\n2,x\n3\n'))
    assert report.created == 2
    assert report.rejected_rows[0].line == 5


def test_it_upserts_changed_rows_and_leaves_unchanged_ones():
    import_csv(
        csv_bytes(
            "customer_id,email,city,tier\n1,a@example.com,Oslo,gold\n2,b@example.com,Paris,\n"
        )
    )
    report = import_csv(
        csv_bytes(
            "customer_id,email,city,tier\n1,a@example.com,Bergen,\n2,b@example.com,Paris,\n3,c@example.com,Lyon,gold\n"
        )
    )
    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    # An empty cell clears the attribute; an attribute not in the file is kept.
    assert Profile.objects.get(customer_id="1").attributes == {"city": "Bergen"}
    import_csv(csv_bytes("customer_id,vip\n2,yes\n"))
    two = Profile.objects.get(customer_id="2")
    assert (two.email, two.attributes) == ("b@example.com", {"city": "Paris", "vip": "yes"})


def test_the_last_row_wins_when_a_customer_id_repeats():
    report = import_csv(csv_bytes("customer_id,email\n1,old@example.com\n1,new@example.com\n"))
    assert report.created == 1
    assert Profile.objects.get().email == "new@example.com"


def test_it_maps_other_column_names_to_the_fixed_fields():
    import_csv(
        csv_bytes("Kundenummer,E-post,Fornavn\nk1,ola@example.no,Ola\n"),
        ColumnMap(customer_id="Kundenummer", email="E-post", first_name="Fornavn"),
    )
    profile = Profile.objects.get(customer_id="k1")
    assert (profile.email, profile.first_name, profile.attributes) == ("ola@example.no", "Ola", {})


def test_it_refuses_a_file_without_a_customer_id_column():
    with pytest.raises(ImportFileError, match="No “customer_id” column was found"):
        import_csv(csv_bytes("id,email\n1,a@example.com\n"))


def test_the_command_prints_a_summary_and_fails_only_when_nothing_was_imported(tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_text("customer_id,email\n1,a@example.com\n2\n", encoding="utf-8")
    call_command("import_profiles", str(good))
    captured = capsys.readouterr()
    assert (
        "2 rows read" in captured.out
        and "1 created" in captured.out
        and "1 rejected" in captured.out
    )
    assert "line 3: The row has 1 value but the header has 2 columns." in captured.err

    long_name = tmp_path / "long_name.csv"
    long_name.write_text(f"customer_id,first_name\n3,{'x' * 300}\n", encoding="utf-8")
    call_command("import_profiles", str(long_name))
    captured = capsys.readouterr()
    assert "1 created" in captured.out and "1 warnings" in captured.out
    assert "line 2: first_name: Shortened from 300 to 200 characters." in captured.err

    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,email\n,a@example.com\n", encoding="utf-8")
    with pytest.raises(CommandError, match="No row could be imported"):
        call_command("import_profiles", str(bad))


def test_an_address_a_service_can_take_is_kept_whole():
    longest = "l" * 64 + "@" + "d" * 185 + ".com"  # 254 characters, 64 before the @
    report = import_csv(csv_bytes(f"customer_id,email\n1,{longest}\n"))
    assert (report.created, report.rejected, report.warned) == (1, 0, 0)
    assert Profile.objects.get().email == longest


def test_an_email_that_is_not_an_address_keeps_the_profile_with_a_warning():
    report = import_csv(csv_bytes("customer_id,email\n1,not an address\n2,\n3,c@example.com\n"))
    assert (report.created, report.rejected, report.warned) == (3, 0, 2)
    assert report.warnings == [UnusableAddress(2), MissingAddress(3)]
    assert Profile.objects.get(customer_id="1").email == "not an address"


def test_a_customer_id_repeated_in_one_file_is_reported_on_the_later_row():
    report = import_csv(
        csv_bytes(
            "customer_id,email\n"
            "1,first@example.com\n"
            "2,b@example.com\n"
            "1,second@example.com\n"
            "1,third@example.com\n"
        )
    )
    assert (report.created, report.rejected) == (2, 0)
    assert report.warnings == [RepeatedCustomerId(4, 2), RepeatedCustomerId(5, 2)]
    assert Profile.objects.get(customer_id="1").email == "third@example.com"  # the last row
    assert "also on line 2 of the file" in warning_message(report.warnings[0])


def test_a_file_without_an_email_column_warns_of_no_missing_address():
    report = import_csv(csv_bytes("customer_id,city\n1,Oslo\n"))
    assert report.warnings == []


def test_a_field_seen_again_with_another_type_is_widened_or_retyped():
    import_csv(csv_bytes("customer_id,score,joined,tier\nc1,3,2024-01-02,gold\n"))
    ProfileField.objects.create(name="unused", data_type=ProfileField.DataType.NUMBER)
    ProfileField.objects.filter(name="tier").update(profile_count=0)  # no profile has it now

    import_csv(
        csv_bytes("customer_id,score,joined,tier,unused,fresh\nc2,high,2024-01-02 10:00,7,x,1\n")
    )

    types = dict(ProfileField.objects.values_list("name", "data_type"))
    assert types["score"] == ProfileField.DataType.TEXT  # numbers and text: text
    assert types["joined"] == ProfileField.DataType.DATETIME  # dates and date-times
    assert types["tier"] == ProfileField.DataType.NUMBER  # no profile had it: its new type
    assert types["unused"] == ProfileField.DataType.TEXT
    assert types["fresh"] == ProfileField.DataType.NUMBER
    assert (
        ProfileField.objects.filter(name__in=["customer_id", "email"], is_builtin=True).count() == 2
    )

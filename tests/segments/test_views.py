from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from segments.models import Profile, ProfileImport, Segment
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db

OSLO = {"match": "all", "conditions": [{"field": "city", "operator": "equals", "value": "Oslo"}]}


def test_a_contributor_saves_a_segment_and_refreshes_it(as_bob, django_capture_on_commit_callbacks):
    ProfileFactory(attributes={"city": "Oslo"})
    ProfileFactory(attributes={"city": "Paris"})
    with django_capture_on_commit_callbacks(execute=True):
        response = as_bob.post(
            reverse("segments:create"),
            {"name": "Oslo", "description": "", "rules": json.dumps(OSLO), "save_and_refresh": "1"},
        )
    segment = Segment.objects.get(name="Oslo")
    assert response.url == reverse("segments:detail", args=[segment.pk])
    assert (segment.rules, segment.member_count, segment.status) == (OSLO, 1, Segment.Status.ACTIVE)
    page = as_bob.get(response.url).content.decode()
    assert 'id="member-count">1<' in page


def test_the_builder_refuses_rules_on_an_unknown_field_and_says_why(as_bob):
    response = as_bob.post(
        reverse("segments:create"),
        {
            "name": "Bad",
            "rules": json.dumps(
                {"match": "all", "conditions": [{"field": "shoe", "operator": "is_empty"}]}
            ),
        },
    )
    assert response.status_code == 200
    assert "There is no profile field called “shoe”" in response.content.decode()
    assert not Segment.objects.exists()


def test_a_duplicate_segment_name_is_refused_with_a_clear_message(as_bob):
    SegmentFactory(name="Taken")
    response = as_bob.post(reverse("segments:create"), {"name": "Taken", "rules": json.dumps(OSLO)})
    assert "A segment with this name already exists" in response.content.decode()


def test_the_estimate_counts_matching_profiles_live(as_bob):
    ProfileFactory(attributes={"city": "Oslo"})
    ProfileFactory(attributes={"city": "oslo"})
    ProfileFactory(attributes={"city": "Bergen"})
    response = as_bob.post(reverse("segments:estimate"), {"rules": json.dumps(OSLO)})
    assert "Estimated size: 2 of 3 profiles (66.7%)" in response.content.decode()
    response = as_bob.post(reverse("segments:estimate"), {"rules": "{"})
    assert "The rules could not be read" in response.content.decode()


def test_the_members_csv_is_streamed_with_every_member(as_charlie):
    for number in range(12):
        ProfileFactory(customer_id=f"p{number:02d}", email=f"=cmd{number}@example.com")
    segment = SegmentFactory()
    from segments.services import segment_refresh

    segment_refresh(segment_id=segment.pk)
    response = as_charlie.get(reverse("segments:members_csv", args=[segment.pk]))
    assert response.streaming
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "\ufeffcustomer_id,email,first_name,last_name"  # no attribute yet
    assert len(lines) == 13
    assert lines[1].startswith("p00,'=cmd0@example.com")


def test_an_administrator_uploads_a_csv_and_sees_the_outcome(
    as_alice, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile(
        "people.csv", b"customer_id,email\n1,a@example.com\n2\n", "text/csv"
    )
    with django_capture_on_commit_callbacks(execute=True):
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
    profile_import = ProfileImport.objects.get()
    assert response.url == reverse("profiles:import_detail", args=[profile_import.pk])
    assert profile_import.status == ProfileImport.Status.COMPLETED_WITH_ERRORS
    assert Profile.objects.get().email == "a@example.com"
    page = as_alice.get(response.url).content.decode()
    assert "The row has 1 value but the header has 2 columns." in page


def test_the_import_report_lists_shortened_names_as_warnings_beside_rejections(
    as_alice, django_capture_on_commit_callbacks
):
    rows = f"customer_id,email,first_name\n1,a@example.com,{'M' * 300}\n2\n".encode()
    upload = SimpleUploadedFile("people.csv", rows, "text/csv")
    with django_capture_on_commit_callbacks(execute=True):
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
    profile_import = ProfileImport.objects.get()
    assert (profile_import.rejected_count, profile_import.warning_count) == (1, 1)
    assert profile_import.warnings == [
        {
            "line": 2,
            "field": "first_name",
            "original_length": 300,
            "kept_length": 200,
            "customer_id": "1",
        }
    ]
    assert Profile.objects.get().first_name == "M" * 200
    page = as_alice.get(response.url).content.decode()
    assert 'id="warning-count">1<' in page
    assert '<h2 id="warnings">Warnings</h2>' in page
    assert (
        '<tr><td class="num">2</td><td>First name</td><td class="num">300</td>'
        '<td class="num">200</td></tr>'
    ) in page
    assert "The row has 1 value but the header has 3 columns." in page
    listing = as_alice.get(reverse("profiles:import")).content.decode()
    assert '<th scope="col" class="num">Warnings</th>' in listing


def test_an_upload_that_is_not_csv_is_refused(as_alice):
    upload = SimpleUploadedFile("people.xlsx", b"PK\x03\x04", "application/octet-stream")
    response = as_alice.post(reverse("profiles:import"), {"file": upload})
    assert "The file must be a CSV file" in response.content.decode()


def test_profiles_can_be_searched_by_email_or_name(as_charlie):
    ProfileFactory(email="ingrid@example.no", first_name="Ingrid")
    ProfileFactory(email="theo@example.fr", first_name="Théo")
    page = as_charlie.get(reverse("profiles:list"), {"q": "théo"}).content.decode()
    assert "theo@example.fr" in page and "ingrid@example.no" not in page


def test_the_import_report_lists_an_email_that_is_not_an_address_as_a_warning(
    as_alice, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("people.csv", b"customer_id,email\n1,not an address\n", "text/csv")
    with django_capture_on_commit_callbacks(execute=True):
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
    profile_import = ProfileImport.objects.get()
    assert profile_import.warnings == [{"line": 2, "field": "email", "customer_id": "1"}]
    page = as_alice.get(response.url).content.decode()
    assert (
        '<tr><td class="num">2</td><td>Email</td><td colspan="2">This does not look like an '
        "e-mail address: the profile is kept, exports skip it.</td></tr>"
    ) in page


def _imported(client, rows: bytes, capture) -> ProfileImport:
    upload = SimpleUploadedFile("people.csv", rows, "text/csv")
    with capture(execute=True):
        client.post(
            reverse("profiles:import"),
            {
                "file": upload,
                "customer_id_column": "customer_id",
                "email_column": "email",
                "first_name_column": "first_name",
                "last_name_column": "last_name",
            },
        )
    return ProfileImport.objects.get()


def _csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_the_problem_rows_download_lists_every_kind_of_problem_in_line_order(
    as_alice, django_capture_on_commit_callbacks
):
    rows = (
        "customer_id,email,first_name\n"
        "c1,not an address,Ann\n"  # 2: invalid e-mail
        "c2,,Bo\n"  # 3: no e-mail
        f"c3,c@example.com,{'M' * 300}\n"  # 4: name shortened
        "c4\n"  # 5: rejected
        "c1,a@example.com,Ann\n"  # 6: repeated customer id
    ).encode()
    profile_import = _imported(as_alice, rows, django_capture_on_commit_callbacks)
    report = as_alice.get(reverse("profiles:import_detail", args=[profile_import.pk]))
    download = reverse("profiles:import_problems_csv", args=[profile_import.pk])
    assert f'href="{download}"' in report.content.decode()

    response = as_alice.get(download)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "problem-rows.csv" in response["Content-Disposition"]
    header, *problems = _csv_rows(response)
    assert header == ["Line", "Customer id", "Field", "Problem", "What happens"]
    assert problems == [
        [
            "2",
            "c1",
            "Email",
            "This does not look like an e-mail address.",
            "Kept; exports skip the profile until it has a valid e-mail address.",
        ],
        [
            "3",
            "c2",
            "Email",
            "There is no e-mail address.",
            "Kept; exports skip the profile until it has a valid e-mail address.",
        ],
        [
            "4",
            "c3",
            "First name",
            "Longer than the field holds: 300 characters.",
            "Kept, with its first 200 characters.",
        ],
        [
            "5",
            "c4",
            "",
            "The row has 1 value but the header has 3 columns.",
            "Not imported: correct the row and import it again.",
        ],
        [
            "6",
            "c1",
            "Customer id",
            "The same customer id is also on line 2.",
            "The last row with this customer id is the one kept.",
        ],
    ]


def test_the_problem_rows_download_is_in_the_readers_language(
    as_alice, django_capture_on_commit_callbacks
):
    profile_import = _imported(
        as_alice, b"customer_id,email\n1,\n", django_capture_on_commit_callbacks
    )
    with translation.override("en"):  # put back after the request's French
        response = as_alice.get(
            reverse("profiles:import_problems_csv", args=[profile_import.pk]),
            HTTP_ACCEPT_LANGUAGE="fr",
        )
        header, problem = _csv_rows(response)
    assert header[0] == "Ligne"
    assert problem[:3] == ["2", "1", "E-mail"]


def test_a_contributor_cannot_download_the_problem_rows(as_bob):
    profile_import = ProfileImport.objects.create(
        file_name="people.csv", warnings=[{"line": 2, "field": "email", "customer_id": "1"}]
    )
    response = as_bob.get(reverse("profiles:import_problems_csv", args=[profile_import.pk]))
    assert response.status_code == 403


def test_an_import_without_problems_offers_no_download(
    as_alice, django_capture_on_commit_callbacks
):
    profile_import = _imported(
        as_alice, b"customer_id,email\n1,a@example.com\n", django_capture_on_commit_callbacks
    )
    page = as_alice.get(reverse("profiles:import_detail", args=[profile_import.pk]))
    assert 'id="problem-rows"' not in page.content.decode()

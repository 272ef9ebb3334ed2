"""Uploads that are not UTF-8 text are refused before import, with the problem named."""

from __future__ import annotations

import codecs

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from segments.encoding import SAMPLE_BYTES, encoding_problem
from segments.models import ProfileImport

CSV_TEXT = "customer_id,email,first_name\n1,zoë@example.com,Zoë\n2,bo@example.com,Bø\n"


@pytest.mark.parametrize(
    "content",
    [
        CSV_TEXT.encode(),
        codecs.BOM_UTF8 + CSV_TEXT.encode(),
        b"",
        # A sample that ends in the middle of a two-byte character is still UTF-8.
        (b"a" * (SAMPLE_BYTES - 1) + "ø".encode())[:SAMPLE_BYTES],
    ],
)
def test_utf8_text_has_no_problem(content):
    assert encoding_problem(content) is None


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (CSV_TEXT.encode("utf-16"), "UTF-16"),
        (CSV_TEXT.encode("utf-16-le"), "UTF-16"),
        (CSV_TEXT.encode("utf-16-be"), "UTF-16"),
        (CSV_TEXT.encode("utf-32"), "UTF-32"),
        (CSV_TEXT.encode("latin-1"), "Latin-1"),
        (CSV_TEXT.encode("cp1252"), "Windows-1252"),
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "workbook"),
        (bytes(range(256)) * 4, "binary"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ],
)
def test_other_encodings_and_binary_files_are_named(content, named):
    problem = encoding_problem(content)
    assert problem is not None
    assert named in problem


def test_latin1_names_the_first_byte_that_is_not_utf8():
    assert "byte 23 (0xEB)" in encoding_problem("customer_id,email\n1,zoë".encode("latin-1"))


def post_import(client, content: bytes, name: str = "people.csv"):
    return client.post(
        reverse("profiles:import"),
        {
            "file": SimpleUploadedFile(name, content, "text/csv"),
            "customer_id_column": "customer_id",
            "email_column": "email",
            "first_name_column": "first_name",
            "last_name_column": "last_name",
        },
    )


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (CSV_TEXT.encode("utf-16"), "UTF-16"),
        (CSV_TEXT.encode("utf-16-le"), "UTF-16"),
        (CSV_TEXT.encode("latin-1"), "Latin-1"),
        (bytes(range(256)), "binary"),
    ],
)
def test_the_import_page_refuses_a_file_that_is_not_utf8(as_alice, content, named):
    response = post_import(as_alice, content)
    assert response.status_code == 200
    assert named in response.content.decode()
    assert not ProfileImport.objects.exists()


def test_the_import_page_refuses_a_file_over_the_configured_limit(as_alice, settings):
    settings.IMPORT_MAX_BYTES = 40
    response = post_import(as_alice, CSV_TEXT.encode())
    assert response.status_code == 200
    html = response.content.decode()
    assert "an import takes at most 40\xa0bytes" in html
    assert "Split it into smaller files" in html
    assert not ProfileImport.objects.exists()


def test_the_import_page_takes_a_utf8_file_under_the_limit(
    as_alice, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_MAX_BYTES = len(CSV_TEXT.encode())
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(as_alice, CSV_TEXT.encode())
    assert response.status_code == 302
    assert ProfileImport.objects.get().created_count == 2

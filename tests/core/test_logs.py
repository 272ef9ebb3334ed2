"""LOG_FORMAT=json: one JSON object per line, with the run, export, connection and user."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from core import logs


@pytest.fixture
def json_lines():
    """A handler configured as LOGGING configures it for LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger("tests.ops.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield logger, read
    logger.removeHandler(handler)


def test_a_line_is_one_json_object_with_the_context(json_lines):
    logger, read = json_lines
    with logs.log_context(run_id=7, export_id=3, connection_id=2):
        with logs.log_context(user="alice"):
            logger.info("Export run %s finished: %s", 7, "succeeded")
        logger.warning("after the request")
    logger.info("outside")
    first, second, third = read()
    assert first["message"] == "Export run 7 finished: succeeded"
    assert first["level"] == "INFO" and first["logger"] == "tests.ops.json"
    assert {k: first[k] for k in logs.CONTEXT_FIELDS} == {
        "run_id": 7,
        "export_id": 3,
        "connection_id": 2,
        "user": "alice",
    }
    assert "user" not in second and second["run_id"] == 7
    assert not set(logs.CONTEXT_FIELDS) & set(third)
    assert first["time"].endswith("+00:00")


def test_a_message_with_newlines_and_an_exception_stays_on_one_line(json_lines):
    logger, read = json_lines
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("Line one\nline two")
    (line,) = read()
    assert line["message"] == "Line one\nline two"
    assert "ValueError: bad" in line["exception"]


def test_threads_a_run_starts_adopt_its_context(json_lines):
    logger, read = json_lines
    with logs.log_context(run_id=11):
        fields = logs.current()
    thread = threading.Thread(target=lambda: (logs.adopt(fields), logger.info("batch")))
    thread.start()
    thread.join()
    assert read()[0]["run_id"] == 11


def test_the_settings_choose_json_only_when_asked():
    import subprocess
    import sys

    from django.conf import settings

    script = "import django, logging; django.setup(); logging.getLogger('probe').warning('hello')"
    for log_format, expect_json in (("json", True), ("plain", False)):
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=settings.BASE_DIR,
            env={
                "PATH": "/usr/bin:/bin",
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "LOG_FORMAT": log_format,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        last = result.stderr.strip().splitlines()[-1]
        if expect_json:
            assert json.loads(last)["message"] == "hello"
        else:
            assert last.endswith("WARNING probe: hello")


@pytest.mark.django_db
def test_lines_logged_while_a_request_is_handled_name_its_user(json_lines, alice, rf):
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse

    logger, read = json_lines

    def view(request):
        logger.info("inside the view")
        return HttpResponse()

    middleware = logs.RequestUserMiddleware(view)
    request = rf.get("/")
    request.user = alice
    middleware(request)
    request.user = AnonymousUser()
    middleware(request)
    logged_in, anonymous = read()
    assert logged_in["user"] == "alice"
    assert "user" not in anonymous


def test_a_refused_page_is_one_warning_line_without_a_traceback(client, bob, settings, capsys):
    """Django logs a 403 with the PermissionDenied's traceback; the console shows one line."""
    import logging.config

    logging.config.dictConfig(settings.LOGGING)
    client.force_login(bob)  # a contributor: the audit log is the administrators'
    response = client.get("/audit/")
    assert response.status_code == 403
    printed = capsys.readouterr().err
    assert "WARNING django.request: Forbidden" in printed
    assert "Traceback" not in printed and "PermissionDenied" not in printed

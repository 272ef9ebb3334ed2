"""The project's shape: the compose file, the translation catalogues."""

from __future__ import annotations

import shlex
import shutil
from importlib.util import find_spec
from pathlib import Path

import polib
import pytest
import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
LOCALES = ["zh_Hans", "fr", "ja", "nb"]


def test_every_compose_service_runs_a_command_that_exists_in_the_project():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        command = service.get("command")
        if not command:
            assert "image" in service, f"{name} has neither a command nor an image"
            continue
        words = shlex.split(command)
        if words[:2] == ["sh", "-c"]:
            words = shlex.split(words[2].split("&&")[-1])
        program = words[0]
        assert shutil.which(program) or (ROOT / ".venv/bin" / program).exists(), program
        if program == "gunicorn":
            assert (
                find_spec(words[1].replace(":", ".").split(".")[0])
                and (ROOT / "config/wsgi.py").exists()
            )
        if program == "celery":
            assert words[1:3] == ["-A", "config"] and (ROOT / "config/celery_app.py").exists()
    assert (ROOT / "Dockerfile").exists()


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated_in_every_language(locale):
    catalogue = polib.pofile(str(ROOT / "locale" / locale / "LC_MESSAGES" / "django.po"))
    problems = [
        entry.msgid
        for entry in catalogue
        if not entry.obsolete
        and (
            "fuzzy" in entry.flags
            or (entry.msgid_plural and not all(entry.msgstr_plural.values()))
            or (not entry.msgid_plural and not entry.msgstr.strip())
        )
    ]
    assert not problems, f"{locale}: {len(problems)} messages missing or fuzzy: {problems[:10]}"


def test_the_catalogues_hold_every_message_in_the_source(tmp_path, settings, monkeypatch):
    """Running `make messages` would add nothing: no user-facing text escapes translation."""
    from django.core.management import call_command

    copy = tmp_path / "src"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "locale",
            "tests",
            "fakes",
            "bench",
            "media",
            "*.sqlite3*",
            "node_modules",
        ),
    )
    (copy / "locale").mkdir()
    settings.LOCALE_PATHS = [copy / "locale"]
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["fr"], verbosity=0, ignore_patterns=[".venv"])
    fresh = {entry.msgid for entry in polib.pofile(str(copy / "locale/fr/LC_MESSAGES/django.po"))}
    shipped = {entry.msgid for entry in polib.pofile(str(ROOT / "locale/fr/LC_MESSAGES/django.po"))}
    missing = fresh - shipped
    assert not missing, f"run `make messages` and translate: {sorted(missing)[:10]}"

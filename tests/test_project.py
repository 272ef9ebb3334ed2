"""The project's shape: the compose file, the translation catalogues, the import graph."""

from __future__ import annotations

import ast
import re
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


def _imported_modules(tree: ast.AST):
    """(line, module) of every import in a module, at any depth (a lazy import inside a function
    ties modules together as much as one at the top), and of ``import_module("...")`` calls."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def test_nothing_in_connections_imports_exports():
    """Exports are built on connections, never the other way round: what exports must know
    about a connection (its removal, its need to re-authenticate) is announced through
    ``connections.signals``, and its exports are reached through the reverse relation."""
    modules = sorted((ROOT / "connections").rglob("*.py"))
    assert ROOT / "connections" / "types" / "base.py" in modules  # types/ is walked too
    arrows = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in modules
        for line, module in _imported_modules(ast.parse(path.read_text(), str(path)))
        if module == "exports" or module.startswith("exports.")
    ]
    exports_tags = {path.stem for path in (ROOT / "exports" / "templatetags").glob("*.py")}
    for template in sorted((ROOT / "templates" / "connections").rglob("*.html")):
        for libraries in re.findall(r"{%\s*load\s+([^%]*?)\s*%}", template.read_text()):
            arrows += [
                f"{template.relative_to(ROOT)} loads {library}"
                for library in libraries.split()
                if library in exports_tags
            ]
    assert not arrows, arrows


def test_the_demo_starts_a_fake_of_every_destination_and_points_the_app_at_it():
    from fakes import DEFAULT_PORTS, FAKES

    procfile = (ROOT / "Procfile.demo").read_text()
    makefile = (ROOT / "Makefile").read_text()
    demo_env = makefile.split("DEMO_ENV :=", 1)[1].split("\nTEST_", 1)[0]
    for kind in FAKES:
        assert f"-m fakes {kind} --port {DEFAULT_PORTS[kind]}" in procfile, kind
        assert f"127.0.0.1:{DEFAULT_PORTS[kind]}" in demo_env, kind

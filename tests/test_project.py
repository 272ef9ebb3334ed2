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


#: The layers, from the ground up (README, Developing): code may import its own layer and the
#: ones below it, never one above. ``config`` is settings, the Celery app and the translation
#: helpers, used by every app; its ``urls`` and ``api_urls`` route to every app, so they stand at
#: the top. ``api`` is the API's plumbing (authentication, problems, pagination, schema), on
#: which each app's ``apis.py`` serves its resources.
LAYERS: dict[str, int] = {
    "core": 1,
    "config": 1,
    "accounts": 2,
    "audit": 2,
    "api": 3,
    "segments": 4,
    "connections": 4,
    "exports": 5,
    "sources": 5,
    "webhooks": 6,
    "ops": 6,
    "config.urls": 7,
    "config.api_urls": 7,
}
#: Not production code: tests, the fake services, benchmarks and one-off scripts may import any
#: layer. Migrations are checked like the rest of their app (none needs an exception).
NOT_PRODUCTION = {"tests", "fakes", "bench", "scripts", ".venv", "node_modules"}


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str | None:
    """The app (or URL root) a module belongs to, None outside the project."""
    names = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return max(names, key=len) if names else None


def _layer(module: str) -> int | None:
    part = _part(module)
    return None if part is None else LAYERS[part]


def _production_modules() -> list[Path]:
    return [
        path
        for path in sorted(ROOT.rglob("*.py"))
        if path.relative_to(ROOT).parts[0] in LAYERS
        and not NOT_PRODUCTION & set(path.relative_to(ROOT).parts)
    ]


def _production_imports() -> list[tuple[str, int, str]]:
    """(importing file, line, imported module) of every import between modules of the layers."""
    return [
        (str(path.relative_to(ROOT)), line, module)
        for path in _production_modules()
        for line, module in _imported_modules(ast.parse(path.read_text(), str(path)))
        if _layer(module) is not None
    ]


def test_the_layer_rule_places_every_app_and_its_api_surface():
    assert {path.relative_to(ROOT).parts[0] for path in _production_modules()} >= {
        name for name in LAYERS if "." not in name and (ROOT / name).is_dir()
    }
    assert ROOT / "connections" / "types" / "base.py" in _production_modules()  # subpackages too
    assert _layer("api.problems") < _layer("segments.profile_apis") < _layer("exports.apis")
    assert _layer("exports.services") < _layer("webhooks.services") < _layer("config.api_urls")
    assert _layer("config.translation") < _layer("accounts.roles") < _layer("api.authentication")
    assert _part("exports.apis") == "exports" and _part("config.api_urls") == "config.api_urls"
    assert _part("config.urls") == "config.urls" and _part("config.translation") == "config"
    assert _layer("django.db") is None and _layer("coreapi") is None


def test_no_production_import_runs_up_a_layer():
    """Shared helpers < accounts, audit < the API's plumbing < segments, connections < exports <
    webhooks, ops < the URL roots: a lower layer announces with a signal and never imports a
    higher one.
    Lazy imports inside functions and ``import_module("...")`` count as much as the others."""
    arrows = [
        f"{path}:{line} imports {module}"
        for path, line, module in _production_imports()
        if _layer(module) > _layer(_module_of(ROOT / path))
    ]
    libraries = {
        path.stem: _layer(_module_of(path))
        for path in _production_modules()
        if path.parent.name == "templatetags"
    }
    for folder in sorted((ROOT / "templates").iterdir()):
        layer = LAYERS.get({"system": "exports"}.get(folder.name, folder.name))
        for template in sorted(folder.rglob("*.html")) if layer else []:
            for names in re.findall(r"{%\s*load\s+([^%]*?)\s*%}", template.read_text()):
                arrows += [
                    f"{template.relative_to(ROOT)} loads {name}"
                    for name in names.split()
                    if libraries.get(name, 0) > layer
                ]
    assert not arrows, "\n".join(arrows)


def test_no_two_apps_import_each_other_even_through_others():
    """The apps' import graph has no cycle, whatever the layers allow inside one of them."""
    graph: dict[str, set[str]] = {}
    for path, _line, module in _production_imports():
        source, target = _part(_module_of(ROOT / path)), _part(module)
        if source != target:
            graph.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for step in graph.get(start, ()):
            if step == goal or (step not in seen and reaches(step, goal, seen | {step})):
                return True
        return False

    cycles = sorted(app for app in graph if reaches(app, app, {app}))
    assert not cycles, {app: sorted(graph[app]) for app in cycles}


def test_the_demo_starts_a_fake_of_every_destination_and_points_the_app_at_it():
    from fakes import DEFAULT_PORTS, FAKES

    procfile = (ROOT / "Procfile.demo").read_text()
    makefile = (ROOT / "Makefile").read_text()
    demo_env = makefile.split("DEMO_ENV :=", 1)[1].split("\nTEST_", 1)[0]
    for kind in FAKES:
        assert f"-m fakes {kind} --port {DEFAULT_PORTS[kind]}" in procfile, kind
        assert f"127.0.0.1:{DEFAULT_PORTS[kind]}" in demo_env, kind


def test_the_demo_writes_its_mail_to_a_folder_a_demo_user_can_open():
    """Invitations and password links must reach the demo user, who has no mail server."""
    makefile = (ROOT / "Makefile").read_text()
    demo_env = makefile.split("DEMO_ENV :=", 1)[1].split("\nTEST_", 1)[0]
    assert "EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend" in demo_env
    assert "EMAIL_FILE_PATH=$(CURDIR)/demo-mail" in demo_env
    assert "demo-mail/" in (ROOT / "scripts" / "demo_banner.py").read_text()
    assert "/demo-mail/" in (ROOT / ".gitignore").read_text()

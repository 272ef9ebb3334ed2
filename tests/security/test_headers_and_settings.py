"""Production settings pass Django's deployment checks, and every page carries the security
headers and a Content-Security-Policy that allows no inline script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
TEMPLATES = ROOT / "templates"

PRODUCTION_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    # A long, random-looking key, as production needs; not used for anything here.
    "SECRET_KEY": "p7Qx-2vN9kLm4Rt8Zy6Wb3Hs5Jd1Fg0Ua_e8Ci7Ko2Pl9Mn4Bv6Cx3Zq1Wr5Ty8Ui0Op",
    "FIELD_ENCRYPTION_KEY": "dGVzdC1rZXktZm9yLXRoZS10ZXN0LXN1aXRlLW9ubHk=",
    "ALLOWED_HOSTS": "relay.example.com",
    "EMAIL_HOST": "smtp.example.com",
}


def _check(*arguments, without=(), **environment_overrides):
    environment = {**os.environ, **PRODUCTION_ENVIRONMENT, **environment_overrides}
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by tests/conftest.py for Playwright
    for name in ("EMAIL_BACKEND", *without):
        if name not in environment_overrides:
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_with_the_production_settings_prints_no_warning():
    result = _check("--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNING" not in output, output


def test_production_refuses_to_start_without_a_mail_server():
    """``migrate`` runs these checks too, so the web container stops before serving."""
    result = _check(without=["EMAIL_HOST"])
    assert result.returncode != 0
    assert "accounts.E002" in result.stderr
    assert "EMAIL_HOST is not set" in result.stderr


def test_production_refuses_to_print_mail_on_the_console():
    result = _check(EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend")
    assert result.returncode != 0
    assert "accounts.E001" in result.stderr


def test_every_page_sends_the_security_headers(client, alice):
    client.force_login(alice)
    response = client.get("/segments/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    policy = response["Content-Security-Policy"]
    directives = dict(
        part.strip().partition(" ")[::2] for part in policy.split(";") if part.strip()
    )
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy


def test_the_login_page_has_the_policy_too(client):
    response = client.get("/accounts/login/")
    assert "script-src 'self'" in response["Content-Security-Policy"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"\sstyle\s*=", re.IGNORECASE)
HTMX_INLINE_SCRIPT = re.compile(r"\bhx-on[:-]|\bjs:|\bjavascript:", re.IGNORECASE)


def test_no_template_holds_inline_script_handlers_or_styles():
    """The policy would block them in the browser; this says which template, before it does."""
    offenders = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, INLINE_STYLE, HTMX_INLINE_SCRIPT):
            for match in pattern.finditer(text):
                offenders.append(f"{template.relative_to(ROOT)}: {match.group(0).strip()}")
    assert offenders == []

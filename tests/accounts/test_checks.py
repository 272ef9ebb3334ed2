"""Where mail must be delivered (production), a backend that prints or drops it is an error."""

from __future__ import annotations

import pytest

from accounts.checks import email_is_delivered


@pytest.fixture
def production(settings):
    settings.EMAIL_DELIVERY_REQUIRED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "smtp.example.com"
    return settings


def test_an_smtp_server_passes(production):
    assert email_is_delivered() == []


@pytest.mark.parametrize("kind", ["console", "filebased", "locmem", "dummy"])
def test_a_backend_that_prints_or_drops_mail_is_an_error(production, kind):
    production.EMAIL_BACKEND = f"django.core.mail.backends.{kind}.EmailBackend"
    assert [error.id for error in email_is_delivered()] == ["accounts.E001"]


def test_smtp_without_a_host_is_an_error(production):
    production.EMAIL_HOST = ""
    assert [error.id for error in email_is_delivered()] == ["accounts.E002"]


def test_another_delivering_backend_passes(production):
    production.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    production.EMAIL_HOST = ""
    assert email_is_delivered() == []


def test_the_demo_and_the_tests_may_print_mail(settings):
    settings.EMAIL_DELIVERY_REQUIRED = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert email_is_delivered() == []

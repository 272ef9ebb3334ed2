"""System checks for what accounts need from the deployment.

Invitations and password resets are e-mailed links that let whoever holds them set a password.
Under the production settings (``EMAIL_DELIVERY_REQUIRED``) mail must really be delivered:
a backend that prints mail (console, file) would put those links in the log, and one that drops
it (dummy, memory) would leave new users without a way in. The check runs with every command
that checks the project, ``migrate`` among them, so a web container so configured does not start.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
UNDELIVERED_BACKENDS = {
    f"django.core.mail.backends.{name}.EmailBackend"
    for name in ("console", "filebased", "locmem", "dummy")
}


@register(Tags.security)
def email_is_delivered(app_configs=None, **kwargs) -> list[CheckMessage]:
    if not getattr(settings, "EMAIL_DELIVERY_REQUIRED", False):
        return []
    if settings.EMAIL_BACKEND in UNDELIVERED_BACKENDS:
        return [
            Error(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}, which does not deliver mail: "
                "invitation and password-reset links would be printed or lost.",
                hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, "
                "EMAIL_USE_TLS) for an SMTP server, or EMAIL_BACKEND to another delivering "
                "backend.",
                id="accounts.E001",
            )
        ]
    if settings.EMAIL_BACKEND == SMTP_BACKEND and not settings.EMAIL_HOST:
        return [
            Error(
                "EMAIL_HOST is not set: invitations, password resets and alerts cannot be sent.",
                hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, "
                "EMAIL_USE_TLS) to the SMTP server that sends this installation's mail.",
                id="accounts.E002",
            )
        ]
    return []

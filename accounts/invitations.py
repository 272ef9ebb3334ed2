"""One-time set-password links, for invitations and password resets.

A link is valid for ``PASSWORD_RESET_TIMEOUT`` (72 hours) and only once: its token is a hash of
the user's password hash and last login, so it stops matching as soon as the password is set.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _


class SetPasswordTokenGenerator(PasswordResetTokenGenerator):
    """Like Django's password-reset tokens, with a salt of its own so neither works as the other."""

    key_salt = "accounts.invitations.SetPasswordTokenGenerator"


set_password_token = SetPasswordTokenGenerator()


def set_password_url(user: User) -> str:
    """The absolute one-time link at which ``user`` chooses a password."""
    path = reverse(
        "users:set_password",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": set_password_token.make_token(user),
        },
    )
    return settings.SITE_URL.rstrip("/") + path


def send_set_password_link(*, user: User, invitation: bool) -> None:
    """E-mail ``user`` a set-password link: an invitation for a new user, else a reset."""
    context = {
        "user": user,
        "url": set_password_url(user),
        "hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
        "invitation": invitation,
    }
    subject = (
        _("You are invited to Audience Relay")
        if invitation
        else _("Set a new password for Audience Relay")
    )
    body = render_to_string("accounts/email/set_password.txt", context)
    send_mail(subject, body, None, [user.email])

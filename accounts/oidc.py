"""Optional single sign-on with OpenID Connect (mozilla-django-oidc), set up by environment only.

It is on when ``OIDC_RP_CLIENT_ID`` is set (config/settings/base.py). The identity provider's
groups (claim ``OIDC_GROUPS_CLAIM``) give the role: the highest of our three roles whose
``OIDC_<ROLE>_GROUPS`` list names one of the user's groups. Someone in none of those groups is
not let in. The role is taken from the provider at every login, so the provider stays the
source of truth.

Who the user is: the provider's account (issuer and subject) once linked to a user
(``SingleSignOnLink``). The first time, a local user with the same e-mail address is that user
only when the provider says the address is verified (``email_verified: true``): an address
anyone can type into a provider profile must not open an administrator's account. Without a
local user of that address a new user is made. Either way the link is made, and from then on
the address no longer decides.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from mozilla_django_oidc.auth import OIDCAuthenticationBackend, default_username_algo
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from accounts.models import SingleSignOnLink
from accounts.roles import ROLES_BY_RANK, Role, role_of
from accounts.services import LastAdministrator, user_create_or_update, user_set_role

logger = logging.getLogger(__name__)


def role_for_claims(claims: dict) -> Role | None:
    """The highest role that the user's provider groups map to, or None."""
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    for role in ROLES_BY_RANK:
        if set(groups) & set(settings.OIDC_ROLE_GROUPS.get(role.value, [])):
            return role
    return None


def username_from_claims(email: str, claims: dict) -> str:
    """``preferred_username`` (else the e-mail address) when it is free, else a hash of it."""
    for candidate in (claims.get("preferred_username"), email):
        if candidate and not User.objects.filter(username__iexact=candidate).exists():
            return candidate[:150]
    return default_username_algo(email, claims)


def email_verified(claims: dict) -> bool:
    """``email_verified`` is true (a boolean; some providers send the string "true")."""
    verified = claims.get("email_verified")
    return verified is True or verified == "true"


class RoleMappingBackend(OIDCAuthenticationBackend):
    def authenticate(self, request, **kwargs):
        """As the library's, but a token that fails a check is a refused login, not a 400."""
        try:
            return super().authenticate(request, **kwargs)
        except SuspiciousOperation as error:
            logger.warning("Single sign-on refused: %s", error)
            return None

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token was issued for another client.")
        return payload

    def verify_claims(self, claims: dict) -> bool:
        if not claims.get("email"):
            logger.warning("Single sign-on refused: the provider sent no e-mail address")
            return False
        if role_for_claims(claims) is None:
            logger.warning(
                "Single sign-on refused for %s: in none of the groups mapped to a role",
                claims.get("email"),
            )
            return False
        return True

    def get_or_create_user(self, access_token, id_token, payload):
        """The linked user, else the local user of a verified address, else a new user."""
        claims = self.get_userinfo(access_token, id_token, payload)
        if not self.verify_claims(claims):
            raise SuspiciousOperation("Claims verification failed")
        issuer, subject = str(payload.get("iss") or ""), payload.get("sub")
        if not subject or claims.get("sub") != subject:
            raise SuspiciousOperation("The user info is about another subject than the ID token.")
        link = SingleSignOnLink.objects.filter(issuer=issuer, subject=subject).first()
        if link is not None:
            return self.update_user(link.user, claims)
        with transaction.atomic():
            users = list(self.filter_users_by_claims(claims))
            if len(users) > 1:
                raise SuspiciousOperation("Several users have this e-mail address.")
            if users:
                user = users[0]
                if not email_verified(claims):
                    raise SuspiciousOperation(
                        f"The provider has not verified {claims['email']}, the address of an "
                        "existing user; it is not linked to them."
                    )
                if user.sso_links.filter(issuer=issuer).exists():
                    raise SuspiciousOperation(
                        f"{user} is linked to another account at the provider already."
                    )
            else:
                user = self.create_user(claims)
            SingleSignOnLink.objects.create(user=user, issuer=issuer, subject=subject)
        return self.update_user(user, claims)

    def create_user(self, claims: dict) -> User:
        user, _created = user_create_or_update(
            username=self.get_username(claims),
            role=role_for_claims(claims),
            email=claims["email"],
        )
        return self.update_user(user, claims)

    def update_user(self, user: User, claims: dict) -> User:
        role = role_for_claims(claims)
        if role != role_of(user):
            try:
                user_set_role(user=user, role=role)
            except LastAdministrator:
                logger.warning("Single sign-on kept %s an administrator: the last one", user)
        names = {
            "first_name": claims.get("given_name", ""),
            "last_name": claims.get("family_name", ""),
        }
        changed = [
            field for field, value in names.items() if value and getattr(user, field) != value
        ]
        for field in changed:
            setattr(user, field, names[field])
        if changed:
            user.save(update_fields=changed)
        return user


@login_not_required
def sso_start(request: HttpRequest) -> HttpResponse:
    """Send the browser to the identity provider (the login page's single sign-on button)."""
    if not settings.OIDC_ENABLED:
        return redirect("accounts:login")
    return OIDCAuthenticationRequestView.as_view()(request)


@login_not_required
def sso_callback(request: HttpRequest) -> HttpResponse:
    """Where the provider sends the browser back; logs the user in or says why not."""
    if not settings.OIDC_ENABLED:
        return redirect("accounts:login")
    return OIDCAuthenticationCallbackView.as_view()(request)

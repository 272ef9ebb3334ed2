"""What accounts own beyond Django's users and groups: personal API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Access(models.Model):
    """Carries the permissions that belong to no single model (product.md, Roles).

    No table: the model exists so that the permissions have a content type to hang on.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("manage_users", "Can add users, change their roles and deactivate them")]

    def __str__(self) -> str:
        return "access"


class ApiTokenQuerySet(models.QuerySet):
    def live(self) -> ApiTokenQuerySet:
        """Tokens that still authenticate: not revoked, and their user is active."""
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A personal API token. It acts with its user's role; only its SHA-256 digest is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    #: The first characters of the token, shown so that its owner can tell tokens apart.
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class SingleSignOnLink(models.Model):
    """The identity provider's account a user logs in as (accounts.oidc).

    Made at the first single sign-on; from then on the provider's subject finds the user, and
    the e-mail address no longer does.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_links"
    )
    #: The provider (the ID token's ``iss``) and its identifier for the account (``sub``).
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_link_unique_subject")
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.subject} at {self.issuer}"

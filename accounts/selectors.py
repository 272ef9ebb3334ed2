"""Reads on users for Admin > Users."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet


def user_list() -> QuerySet[User]:
    """Every user, active ones first, by username; groups prefetched for ``role_of``."""
    return User.objects.prefetch_related("groups").order_by("-is_active", "username")

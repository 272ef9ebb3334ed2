from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Cursor pagination in id order: stable while rows are added, and cheap on big tables."""

    ordering = "id"
    page_size = settings.API_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = 1000


class NewestFirstPagination(IdCursorPagination):
    """Logs: the latest first."""

    ordering = "-id"

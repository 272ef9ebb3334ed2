from __future__ import annotations

import pytest

from audit.models import AuditEntry
from tests.exports.conftest import connection, everyone, make_export  # noqa: F401


@pytest.fixture
def entries():
    """The audit entries recorded so far, oldest first, as (action, object_type, actor_label)."""

    def read(**filters):
        return list(
            AuditEntry.objects.filter(**filters)
            .order_by("id")
            .values_list("action", "object_type", "actor_label")
        )

    return read

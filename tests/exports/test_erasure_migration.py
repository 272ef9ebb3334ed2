"""Erasures moved from the API app to exports with state-only migrations: records made before
the move are all there after it, with their status."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("api", "0001_initial"), ("exports", "0010_nothing_changed")]
AFTER = [("api", "0002_erasure_moved_to_exports"), ("exports", "0012_erasureexport_status")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def back_to_the_latest_migrations():
    """The tests after this one expect the database at its latest migrations again."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_erasures_made_before_the_move_are_kept_with_their_status():
    old = migrate(BEFORE)
    Erasure, ErasureExport = old.get_model("api", "Erasure"), old.get_model("api", "ErasureExport")
    erasure = Erasure.objects.create(
        erased_by="email", address_hash="a" * 64, profiles_erased=2, memberships_erased=3
    )
    ErasureExport.objects.create(
        erasure=erasure, export_name="Newsletter", confirmed_at=timezone.now()
    )
    ErasureExport.objects.create(
        erasure=erasure, export_name="Offers", encrypted_address="sealed", last_error="refused"
    )

    new = migrate(AFTER)

    Erasure, ErasureExport = (
        new.get_model("exports", "Erasure"),
        new.get_model("exports", "ErasureExport"),
    )
    kept = Erasure.objects.get()
    assert (kept.pk, kept.address_hash, kept.profiles_erased) == (erasure.pk, "a" * 64, 2)
    assert list(
        ErasureExport.objects.filter(erasure=kept).values_list(
            "export_name", "status", "encrypted_address", "last_error"
        )
    ) == [("Newsletter", "confirmed", "", ""), ("Offers", "pending", "sealed", "refused")]
    with pytest.raises(LookupError):
        new.get_model("api", "Erasure")

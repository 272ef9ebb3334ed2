"""Celery tasks: they take a connection id (never credentials) and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def check_connection(connection_id: int) -> None:
    """Run the connection test in the background and record the connection's status."""
    from connections.services import connection_test

    connection_test(connection_id=connection_id)

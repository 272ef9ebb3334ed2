from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """What an operator points tools at: health and readiness checks, metrics, JSON logs."""

    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from config.celery_app import app
        from ops import signals  # noqa: F401 -- connects the Celery signal handlers
        from ops.worker import MarkAlive

        app.steps["worker"].add(MarkAlive)

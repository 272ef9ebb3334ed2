"""The production compose file brings every long-running service back by itself."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings


def test_every_service_of_the_compose_file_restarts_unless_stopped():
    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    policies = {name: service.get("restart") for name, service in compose["services"].items()}
    assert policies == dict.fromkeys(policies, "unless-stopped")
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(policies)

"""All outbound HTTP of webhooks goes through ``post``: one pooled ``requests.Session``, a
timeout on every request, redirects never followed and no retries below ours (a delivery's
retries are its schedule, ``webhooks.services``)."""

from __future__ import annotations

import threading

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

USER_AGENT = "AudienceRelay-Webhooks/0.1"

_local = threading.local()


def session() -> requests.Session:
    """One session per thread (a Celery worker with a thread pool shares nothing mutable)."""
    current = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=4)
        current.mount("https://", adapter)
        current.mount("http://", adapter)
        current.headers["User-Agent"] = USER_AGENT
        _local.session = current
    return current


def post(url: str, *, body: bytes, headers: dict[str, str]) -> requests.Response:
    """POST ``body`` as JSON; raises ``requests.RequestException`` when no answer came."""
    return session().post(
        url,
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=(settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS, settings.WEBHOOK_TIMEOUT_SECONDS),
        allow_redirects=False,
        stream=True,
    )

"""All outbound HTTP of webhooks goes through ``post``: one pooled ``requests.Session``, a
timeout on every request, redirects never followed and no retries below ours (a delivery's
retries are its schedule, ``webhooks.services``).

Before each request ``post`` resolves the URL's host and checks its addresses
(``webhooks.addresses``); a new connection then goes to one of exactly those addresses, never
to a second lookup of the name, so a host that answers a public address to the check and a
private one to the connection (DNS rebinding) gets nothing. TLS still verifies the certificate
against the host name. Through a proxy (``HTTPS_PROXY``) the proxy looks the name up again:
there only the check before the request applies.
"""

from __future__ import annotations

import contextvars
import socket
import threading

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3 import connection, connectionpool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from webhooks import addresses

USER_AGENT = "AudienceRelay-Webhooks/0.1"

_local = threading.local()
#: The checked addresses that connections opened by the current ``post`` go to.
_pinned: contextvars.ContextVar[list[addresses.IPAddress] | None] = contextvars.ContextVar(
    "webhook_pinned_addresses", default=None
)


class _PinnedConnectionMixin:
    """Connects to the addresses ``post`` checked instead of looking the host up again."""

    def _new_conn(self) -> socket.socket:
        pinned = _pinned.get()
        if not pinned:
            raise RuntimeError("Webhook connections are opened only by webhooks.http.post.")
        failure: OSError | None = None
        for address in pinned:
            try:
                return create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as timeout:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from timeout
            except OSError as error:
                failure = error
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {failure}"
        ) from failure


class _PinnedHTTPConnection(_PinnedConnectionMixin, connection.HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, connection.HTTPSConnection):
    pass


class _PinnedHTTPConnectionPool(connectionpool.HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSConnectionPool(connectionpool.HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """Direct connections use the pinned pools; a proxy's (``proxy_manager_for``) do not."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PinnedHTTPConnectionPool,
            "https": _PinnedHTTPSConnectionPool,
        }


def session() -> requests.Session:
    """One session per thread (a Celery worker with a thread pool shares nothing mutable)."""
    current = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        adapter = PinnedAdapter(max_retries=0, pool_connections=4, pool_maxsize=4)
        current.mount("https://", adapter)
        current.mount("http://", adapter)
        current.headers["User-Agent"] = USER_AGENT
        _local.session = current
    return current


def post(url: str, *, body: bytes, headers: dict[str, str]) -> requests.Response:
    """POST ``body`` as JSON; raises ``addresses.AddressRefused`` (nothing was sent) when the
    URL's host is not one webhooks go to, ``requests.RequestException`` when no answer came."""
    token = _pinned.set(addresses.deliverable_addresses(url))
    try:
        return session().post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=(settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS, settings.WEBHOOK_TIMEOUT_SECONDS),
            allow_redirects=False,
            stream=True,
        )
    finally:
        _pinned.reset(token)

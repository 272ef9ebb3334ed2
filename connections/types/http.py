"""What every destination client shares: a pooled ``requests.Session``, ``ServiceClient`` (the
one way out, with the 429 / 5xx / timeout / ``Retry-After`` rules) and the rate-limit headers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPConnectionPool
from urllib3.util.retry import Retry

from config.translation import LaterText
from config.translation import gettext_later as _
from connections.types.base import (
    BackendError,
    CredentialStore,
    MemoryCredentialStore,
    RateLimited,
    Transient,
)
from core import api_calls

#: (connect, read) seconds. Imports of 1,000 subscribers are synchronous, hence the long read.
DEFAULT_TIMEOUT = (5.0, 60.0)
USER_AGENT = "AudienceRelay/0.1 (+https://github.com/audience-relay)"


def new_session(
    url: str, *, pool_size: int | None = None, destination: str = ""
) -> requests.Session:
    """A session with connection pooling, one pooled connection per export thread by default.
    Only failures to *connect* are retried here (the request never left, so retrying is safe
    for any method); every other failure reaches the client, which turns it into a typed error
    and lets the caller decide.

    The environment (proxies for ``url``, a CA bundle) is read once here: requests would read
    it again on every request, and a run makes hundreds of thousands.

    ``destination`` (a connection type) labels the session's calls in ``/metrics``.
    """
    pool_size = pool_size or max(10, settings.EXPORT_CONCURRENCY)
    session = TemplateSession()
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(url)
    # A CA bundle only matters to HTTPS; given one, requests checks on disk whether it is a
    # directory on every call, plain HTTP (the local fakes) included.
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    session.verify = bundle if bundle and url.lower().startswith("https:") else True
    # A 429 or 503 with Retry-After reaches the client too: it waits as told, and waiting for a
    # rate limit must not use up a retry.
    retry = Retry(
        total=2,
        connect=2,
        read=0,
        status=0,
        other=0,
        backoff_factor=0.2,
        respect_retry_after_header=False,
    )
    adapter = ApiAdapter(
        pool_connections=pool_size,
        pool_maxsize=pool_size,
        max_retries=retry,
        destination=destination,
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


class ApiAdapter(HTTPAdapter):
    """An adapter for API calls, which come by the thousand to one host: it remembers the
    connection pool of each host instead of working it out again on every call, and its
    responses skip the cookie jar (an API authenticates by header). Calls through a proxy
    take the ordinary path.
    """

    def __init__(self, *args, destination: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self._pools: dict[tuple, HTTPConnectionPool] = {}
        self.destination = destination

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        if proxies:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        scheme, _separator, rest = request.url.partition("://")
        key = (scheme.lower(), rest.split("/", 1)[0].lower(), verify, _hashable(cert))
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:  # not seen yet, or closed
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            self._pools[key] = pool
        return pool

    def request_url(self, request, proxies):
        if proxies:
            return super().request_url(request, proxies)
        url = request.path_url
        return f"/{url.lstrip('/')}" if url.startswith("//") else url

    def build_response(self, req, resp) -> requests.Response:
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url
        response.request = req
        response.connection = self
        api_calls.record(self.destination, resp.status)
        return response

    def close(self):
        self._pools.clear()
        super().close()


def _hashable(cert):
    return tuple(cert) if isinstance(cert, list) else cert


class TemplateSession(requests.Session):
    """A session that prepares a request without a body once per method, URL and headers and
    then only adds each call's query string.

    Preparing a request (merging the session's headers, parsing and re-quoting the URL) is a
    large part of a small call's CPU, and removing subscribers is one call per address. Anything
    with a body, cookies, auth or per-call transport settings takes the ordinary path.
    """

    MAX_TEMPLATES = 64

    def __init__(self):
        super().__init__()
        self._templates: dict[tuple, requests.PreparedRequest] = {}
        self._templates_lock = threading.Lock()

    def request(self, method, url, params=None, headers=None, timeout=None, **kwargs):
        ordinary = any(value is not None for value in kwargs.values()) or not (
            params is None or isinstance(params, Mapping)
        )
        if ordinary:
            return super().request(
                method, url, params=params, headers=headers, timeout=timeout, **kwargs
            )
        prepared = self._template(method, url, headers).copy()
        query = urlencode(
            [(name, value) for name, value in (params or {}).items() if value is not None],
            doseq=True,
        )
        if query:
            prepared.url += ("&" if "?" in prepared.url else "?") + query
        return self._send_to_adapter(prepared, timeout)

    def _send_to_adapter(self, prepared, timeout) -> requests.Response:
        """``Session.send`` without the hooks and cookie jars these calls never use; a redirect
        is followed as ``send`` would follow it."""
        settings = {
            "timeout": timeout,
            "verify": self.verify,
            "proxies": self.proxies,
            "cert": self.cert,
            "stream": False,
        }
        response = self.get_adapter(prepared.url).send(prepared, **settings)
        if response.is_redirect:
            *_earlier, response = self.resolve_redirects(response, prepared, **settings)
        response.content  # noqa: B018 -- read now, as send does: the connection goes back to the pool
        return response

    def _template(self, method, url, headers) -> requests.PreparedRequest:
        key = (method.upper(), url, tuple(sorted((headers or {}).items())))
        template = self._templates.get(key)
        if template is None:
            template = self.prepare_request(requests.Request(method, url, headers=headers))
            with self._templates_lock:
                if len(self._templates) >= self.MAX_TEMPLATES:
                    self._templates.clear()  # tokens were refreshed many times: start again
                self._templates[key] = template
        return template


def wait_from_headers(response: requests.Response) -> float | None:
    """Seconds to wait as the server said: ``Retry-After`` or ``X-RateLimit-Reset``.

    ``X-RateLimit-Reset`` is documented as seconds until the reset; a value that looks like a
    Unix time is read as one, to be tolerant.
    """
    for header in ("Retry-After", "X-RateLimit-Reset"):
        raw = response.headers.get(header)
        if raw is None:
            continue
        try:
            value = float(raw.strip())
        except ValueError:
            continue
        if value > 1_000_000_000:
            value -= time.time()
        return max(0.0, value)
    return None


def reason_for(error: requests.RequestException) -> LaterText | str:
    """A short, secret-free description of a transport failure (no URL, no headers)."""
    if isinstance(error, requests.Timeout):
        return _("the request timed out")
    if isinstance(error, requests.ConnectionError):
        return _("the connection failed")
    return error.__class__.__name__


def json_or_none(response: requests.Response):
    """The response body as JSON, or None when it is empty or not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class ServiceClient:
    """The base of every destination's client: it sends, and it knows the rules every service
    shares, so that each client keeps only what is its own (its credentials, its error bodies,
    its other statuses).

    - ``_send``: every request, on one pooled session with timeouts; a timeout or a dropped
      connection becomes ``Transient``.
    - ``_rate_limited`` / ``_common_error``: a 429 becomes ``RateLimited``, waiting as long as the
      service said (``Retry-After``, ``X-RateLimit-Reset``, or a wait from the body the client
      read) or, unhinted, ``default_rate_limit_wait`` to be grown by backoff; a 5xx becomes
      ``Transient``, with the ``Retry-After`` it may carry.
    """

    #: The service's name in messages.
    service: ClassVar[str] = ""
    #: The connection type, which labels the client's calls in ``/metrics``.
    destination: ClassVar[str] = ""
    #: Seconds before the first retry of a 429 that says nothing about waiting.
    default_rate_limit_wait: ClassVar[float] = 1.0

    def __init__(
        self,
        store: CredentialStore | None,
        *,
        base_url: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        json_body: bool = True,
    ):
        self.store = store if store is not None else MemoryCredentialStore()
        self.session = session or new_session(base_url, destination=self.destination)
        if json_body:
            self.session.headers["Content-Type"] = "application/json"
        self.timeout = timeout

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise Transient(
                _("%(service)s could not be reached: %(reason)s. Try again in a few minutes.")
                % {"service": self.service, "reason": reason_for(error)}
            ) from None

    def _rate_limited(
        self,
        response: requests.Response,
        *,
        message: LaterText | str,
        code: Any = None,
        wait: float | None = None,
    ) -> RateLimited:
        """``wait``: what the body said, when the service puts it there; else the headers."""
        if wait is None:
            wait = wait_from_headers(response)
        return RateLimited(
            _("%(service)s asked us to slow down: %(message)s")
            % {"service": self.service, "message": message},
            wait=self.default_rate_limit_wait if wait is None else wait,
            hinted=wait is not None,
            code=code,
            status=response.status_code,
        )

    def _common_error(
        self,
        response: requests.Response,
        *,
        message: LaterText | str,
        code: Any = None,
        wait: float | None = None,
    ) -> BackendError | None:
        """The error of a 429 or a 5xx; None for any other status (the client's own)."""
        status = response.status_code
        if status == 429:
            return self._rate_limited(response, message=message, code=code, wait=wait)
        if status >= 500:
            return Transient(
                _("%(service)s had a server error (HTTP %(status)s). Try again in a few minutes.")
                % {"service": self.service, "status": status},
                wait=wait_from_headers(response),
                code=code,
                status=status,
            )
        return None

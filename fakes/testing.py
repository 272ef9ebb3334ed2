"""Run a fake inside a test process and drive its ``/_fake/`` control endpoints.

    from fakes.testing import running_fake

    with running_fake("campaign_monitor", rate_limit=10) as cm:
        requests.get(f"{cm.base_url}/clients.json", auth=("demo-cm-api-key", "x"))
        cm.configure(burst_429=2, burst_429_headers="ratelimit")
        assert cm.state(summary=True)["stats"]["served_429"] == 0

``FakeControl`` talks HTTP only, so it also drives a fake started as a separate process
(``FakeControl("http://127.0.0.1:8101", "/api/v3.3")``).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from fakes import FAKES
from fakes.server import FakeApp, FakeHTTPServer, FaultConfig, build_config, config_field_names

# Never send control calls to localhost through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeControlError(RuntimeError):
    pass


class FakeControl:
    """Client of a fake's control endpoints."""

    def __init__(self, root_url: str, api_prefix: str) -> None:
        self.root_url = root_url.rstrip("/")
        self.api_prefix = api_prefix

    @property
    def base_url(self) -> str:
        """Where API clients point, e.g. ``http://127.0.0.1:PORT/api/v3.3``."""
        return self.root_url + self.api_prefix

    def _call(
        self, method: str, action: str, payload: Any = None, query: dict | None = None
    ) -> Any:
        url = f"{self.root_url}/_fake/{action}"
        if query:
            url += "?" + urlencode(query)
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http only
        request.add_header("Content-Type", "application/json")
        try:
            with _opener.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise FakeControlError(f"{method} {url}: {error.code} {error.read()!r}") from error

    def state(self, **query: Any) -> dict[str, Any]:
        """``GET /_fake/state``; e.g. ``state(list=list_id, summary=True, email="a@x.com")``."""
        params = {k: ("1" if v is True else v) for k, v in query.items() if v not in (None, False)}
        return self._call("GET", "state", query=params)

    def configure(self, **changes: Any) -> dict[str, Any]:
        """``POST /_fake/config``: fault or settings fields, e.g. ``configure(drop_next=1)``."""
        return self._call("POST", "config", changes)

    def seed(self, payload: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
        """``POST /_fake/seed``: ``seed(accounts=[...])`` (shapes in fakes/README.md)."""
        return self._call("POST", "seed", {**(payload or {}), **sections})

    def reset(self, **options: Any) -> dict[str, Any]:
        """``POST /_fake/reset``: back to start-up state; ``reset(demo=False)`` empties it."""
        return self._call("POST", "reset", options)

    def revoke(self, **what: Any) -> dict[str, Any]:
        """``POST /_fake/revoke``, e.g. ``revoke(access_token=...)`` or ``revoke(api_key=...)``."""
        return self._call("POST", "revoke", what)

    def delete_list(self, list_id: str) -> dict[str, Any]:
        """``POST /_fake/delete_list``: delete a list, as someone at the service would."""
        return self._call("POST", "delete_list", {"list_id": list_id})

    def consent(self, emails: list[str], state: str, **options: Any) -> dict[str, Any]:
        """``POST /_fake/consent``: these people unsubscribe, bounce, complain, ... at the
        service; ``options``: ``list_id``, ``at`` (ISO time) and the fake's own keys."""
        return self._call("POST", "consent", {"emails": list(emails), "state": state, **options})


class RunningFake(FakeControl):
    """A fake serving from a daemon thread of this process; ``app`` is its live state."""

    def __init__(self, app: FakeApp, server: FakeHTTPServer, thread: threading.Thread) -> None:
        super().__init__(server.root_url, app.api_prefix)
        self.app = app
        self.server = server
        self.thread = thread

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=5)


def start_fake(
    kind: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    demo: bool = True,
    quiet: bool = True,
    public_url: str | None = None,
    **config: Any,
) -> RunningFake:
    """Start a fake on a free port (``port=0``); ``config`` takes fault and settings fields.

    The caller must ``stop()`` it; prefer ``running_fake``.
    """
    fake_class = FAKES[kind]
    fault_names = config_field_names(FaultConfig)
    settings_names = config_field_names(fake_class.settings_class)
    unknown = set(config) - fault_names - settings_names
    if unknown:
        raise TypeError(f"unknown config for {kind}: {', '.join(sorted(unknown))}")
    app = fake_class(
        build_config(
            fake_class.settings_class, {k: v for k, v in config.items() if k in settings_names}
        ),
        build_config(FaultConfig, {k: v for k, v in config.items() if k in fault_names}),
        demo=demo,
        public_url=public_url,
    )
    server = FakeHTTPServer((host, port), app, quiet=quiet)
    # A short poll interval makes stop() quick: tests start and stop a fake per test.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.01},
        name=f"fake-{kind}",
        daemon=True,
    )
    thread.start()
    return RunningFake(app, server, thread)


@contextmanager
def running_fake(kind: str, **options: Any) -> Iterator[RunningFake]:
    """``with running_fake("autopilot", rate_limit=0) as ap: ...``; options as ``start_fake``."""
    fake = start_fake(kind, **options)
    try:
        yield fake
    finally:
        fake.stop()

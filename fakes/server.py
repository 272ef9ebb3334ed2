"""HTTP plumbing shared by the fakes: requests, responses, faults, rate limits, control endpoints.

A fake is a ``FakeApp`` subclass (one per vendor API) served by ``FakeHTTPServer``, a
``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive so that clients' connection pools are
exercised as they would be against the real service.

Every request goes through the same pipeline:

1. ``/_fake/...`` control endpoints are answered directly: no auth, no faults, not counted.
2. Otherwise the ``FaultInjector`` decides, from ``FaultConfig``, whether to drop the connection,
   add latency, answer 429 or 5xx instead of the real answer, or hang before answering.
3. The app answers (auth, routing, state changes under the app's lock).
4. One log line goes to stderr (unless quiet) and the counters are updated.

Fault options (CLI flags ``--latency-ms`` ... and keys of ``POST /_fake/config``) are the fields of
``FaultConfig`` below; each app adds its own settings dataclass with the same mechanics.
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
import traceback
import typing
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


# --------------------------------------------------------------------------------------------
# Requests and responses
# --------------------------------------------------------------------------------------------


@dataclass
class Request:
    """One parsed HTTP request, independent of the socket it came from."""

    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes

    @classmethod
    def parse(cls, method: str, target: str, headers: Message, body: bytes) -> Request:
        split = urlsplit(target)
        # Both vendors treat query parameter names case-insensitively (Campaign Monitor's clients
        # disagree on ``pagesize`` vs ``pageSize``), so names are lower-cased once here.
        query = {name.lower(): value for name, value in parse_qsl(split.query, True)}
        return cls(method, target, unquote(split.path), query, headers, body)

    def form(self) -> dict[str, str]:
        """Form fields from the query string and an urlencoded body; the body wins."""
        values = dict(self.query)
        if self.body:
            text = self.body.decode("utf-8", "replace")
            values.update({k.lower(): v for k, v in parse_qsl(text, True)})
        return values


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    # Route label for the per-endpoint counters, e.g. "POST /subscribers/{listid}/import.json".
    endpoint: str | None = None


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None, endpoint: str | None = None
) -> Response:
    return Response(status, json_bytes(payload), JSON_CONTENT_TYPE, headers or {}, endpoint)


def empty_response(status: int = 200, endpoint: str | None = None) -> Response:
    return Response(status, b"", JSON_CONTENT_TYPE, {}, endpoint)


class BadRequestBody(Exception):
    """The request body is not the JSON the endpoint needs; apps turn it into their 400 shape."""


def as_bool(value: Any, default: bool = False) -> bool:
    """Read a boolean the lenient way clients send it: true, "True", "false", 1, "yes"."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).strip().lower() in {"true", "1", "yes", "on"}


# --------------------------------------------------------------------------------------------
# Configuration dataclasses: one source for CLI flags and POST /_fake/config keys
# --------------------------------------------------------------------------------------------


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A config field (immutable default) with the help text shown by ``--help``.

    Metadata: ``choices`` (allowed values), ``startup_only`` (refused by ``/_fake/config``),
    ``flag`` (CLI flag when it differs from the field name).
    """
    return field(default=default, metadata={"help": help, **metadata})


BURST_HEADER_CHOICES = ("none", "ratelimit", "retry-after", "both")


@dataclass
class FaultConfig:
    """Faults injected in front of every API request (control endpoints are never faulted)."""

    latency_ms: int = option(0, "Delay added before every API response, in milliseconds.")
    burst_429: int = option(0, "Answer the next N API requests with 429.")
    burst_429_headers: str = option(
        "none",
        "Headers on those injected 429s: none, ratelimit (X-RateLimit-Limit/-Remaining/-Reset), "
        "retry-after, or both.",
        choices=BURST_HEADER_CHOICES,
    )
    burst_429_reset: int = option(1, "Seconds announced in X-RateLimit-Reset / Retry-After.")
    error_next: int = option(0, "Answer the next N API requests with a 5xx.")
    error_rate: float = option(0.0, "Probability (0..1) that an API request gets a 5xx.")
    error_status: int = option(500, "Status used for injected server errors (500, 502, 503...).")
    timeout_next: int = option(0, "Hang before answering the next N API requests.")
    timeout_rate: float = option(0.0, "Probability (0..1) that an API request hangs.")
    timeout_seconds: float = option(
        30.0, "How long a hanging request hangs. The request is processed first, then answered."
    )
    drop_next: int = option(0, "Close the connection without answering the next N API requests.")
    drop_rate: float = option(0.0, "Probability (0..1) that a connection is dropped unanswered.")
    fault_path: str = option(
        "", "Only requests whose path contains this text (case-insensitive) get faults."
    )
    seed: int = option(0, "Seed of the random generator used for the *_rate faults.")


def _field_types(config_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(config_cls)


def coerce_config_value(config_cls: type, name: str, value: Any) -> Any:
    """Convert a JSON or CLI value to the field's declared type, or raise ValueError."""
    kind = _field_types(config_cls)[name]
    spec = next(f for f in fields(config_cls) if f.name == name)
    if kind is bool:
        result: Any = as_bool(value)
    elif kind is int:
        result = int(value)
    elif kind is float:
        result = float(value)
    elif kind == list[str]:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part]
        result = [str(item) for item in value]
    else:
        result = str(value)
    choices = spec.metadata.get("choices")
    if choices and result not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}")
    return result


def build_config(config_cls: type, values: dict[str, Any]) -> Any:
    """An instance of ``config_cls`` with ``values`` (coerced) over the defaults."""
    return config_cls(
        **{name: coerce_config_value(config_cls, name, v) for name, v in values.items()}
    )


def config_field_names(config_cls: type) -> set[str]:
    return {spec.name for spec in fields(config_cls)}


# --------------------------------------------------------------------------------------------
# Faults and rate limits
# --------------------------------------------------------------------------------------------


@dataclass
class FaultPlan:
    """What the injector decided for one request."""

    drop: bool = False
    latency_seconds: float = 0.0
    burst_429: bool = False
    error_status: int | None = None
    hang_seconds: float = 0.0


class FaultInjector:
    """Decides per request which configured faults fire; counters and random draws are locked."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._random = random.Random(config.seed)

    def reseed(self) -> None:
        with self._lock:
            self._random = random.Random(self.config.seed)

    def _fires(self, next_attr: str, rate: float) -> bool:
        # "next N" counters are consumed first. A rate draws from the seeded generator only when
        # it is set, so the same seed and request sequence replay the same faults.
        remaining = getattr(self.config, next_attr)
        if remaining > 0:
            setattr(self.config, next_attr, remaining - 1)
            return True
        return rate > 0 and self._random.random() < rate

    def plan(self, path: str) -> FaultPlan | None:
        config = self.config
        if config.fault_path and config.fault_path.lower() not in path.lower():
            return None
        with self._lock:
            if self._fires("drop_next", config.drop_rate):
                return FaultPlan(drop=True)
            plan = FaultPlan(latency_seconds=config.latency_ms / 1000.0)
            if self._fires("burst_429", 0.0):
                plan.burst_429 = True
            elif self._fires("error_next", config.error_rate):
                plan.error_status = config.error_status
            if self._fires("timeout_next", config.timeout_rate):
                plan.hang_seconds = config.timeout_seconds
        if plan == FaultPlan():
            return None
        return plan


@dataclass
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


class TokenBucketLimiter:
    """Per-key token bucket: ``rate`` tokens a second, bursts of up to ``rate`` requests.

    A bucket (rather than a fixed one-second window) matches the client policy in the contracts
    ("token bucket <= N req/s"): a client pacing itself correctly never sees a 429.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, list[float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def acquire(self, key: str, rate: float) -> RateDecision:
        capacity = max(1.0, rate)
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [capacity, now]
            tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
                reset = math.ceil((capacity - tokens) / rate)
            else:
                reset = max(1, math.ceil((1.0 - tokens) / rate))
            bucket[0] = tokens
        return RateDecision(allowed, int(capacity), int(tokens), reset)


def format_rate(rate: float) -> str:
    return str(int(rate)) if float(rate).is_integer() else str(rate)


# --------------------------------------------------------------------------------------------
# Counters
# --------------------------------------------------------------------------------------------


class RequestStats:
    """Request counters shown under ``stats`` in ``GET /_fake/state``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.total = 0
        self.by_endpoint: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def record(self, endpoint: str | None, status: int | None) -> None:
        with self._lock:
            self.total += 1
            if endpoint:
                self.by_endpoint[endpoint] += 1
            self.by_status["dropped" if status is None else str(status)] += 1

    def record_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total_requests": self.total,
                "requests_by_endpoint": dict(self.by_endpoint),
                "responses_by_status": dict(self.by_status),
                "served_429": self.by_status.get("429", 0),
                "faults_injected": dict(self.faults),
            }


# --------------------------------------------------------------------------------------------
# The app base class
# --------------------------------------------------------------------------------------------


class ControlError(Exception):
    """A bad ``/_fake/`` request; answered 400 ``{"error": message}``."""


#: The most addresses one ``POST /_fake/consent`` takes.
MAX_CONSENT_EMAILS = 100_000


def consent_request(
    body: dict[str, Any], states: tuple[str, ...]
) -> tuple[list[str], str, datetime]:
    """The addresses, state and time (aware, default now) of a ``POST /_fake/consent``;
    ``ControlError`` naming what is wrong."""
    emails = body.get("emails")
    if isinstance(emails, str):
        emails = [emails]
    if (
        not isinstance(emails, list)
        or not emails
        or not all(isinstance(email, str) and email.strip() for email in emails)
    ):
        raise ControlError("emails must be a non-empty list of addresses")
    if len(emails) > MAX_CONSENT_EMAILS:
        raise ControlError(f"at most {MAX_CONSENT_EMAILS} emails per call")
    state = str(body.get("state") or "").lower()
    if state not in states:
        raise ControlError(f"state must be one of {', '.join(states)}")
    at = body.get("at")
    if at in (None, ""):
        return [email.strip() for email in emails], state, datetime.now(UTC)
    try:
        when = datetime.fromisoformat(str(at).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ControlError(f"at must be an ISO 8601 time, not {at!r}") from None
    return (
        [email.strip() for email in emails],
        state,
        when if when.tzinfo else when.replace(tzinfo=UTC),
    )


class FakeApp:
    """Base of one vendor fake: state, settings, faults and the ``/_fake/`` control surface.

    Subclasses set ``kind``, ``api_prefix`` and ``settings_class`` and implement ``handle_api``,
    the 429/5xx bodies, ``_reset_state``, ``snapshot``, ``seed``, ``revoke`` and ``delete_list``.
    """

    kind: ClassVar[str]
    api_prefix: ClassVar[str]
    settings_class: ClassVar[type]
    # One-shot keys of POST /_fake/config that trigger an action instead of setting a value.
    config_actions: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        settings: Any = None,
        faults: FaultConfig | None = None,
        *,
        demo: bool = True,
        public_url: str | None = None,
    ) -> None:
        self.settings = settings if settings is not None else self.settings_class()
        self.faults = faults if faults is not None else FaultConfig()
        # Reset goes back to exactly what the server started with.
        self._startup_settings = replace(self.settings)
        self._startup_faults = replace(self.faults)
        self.demo = demo
        self.public_url = public_url
        self.lock = threading.RLock()
        self.stats = RequestStats()
        self.injector = FaultInjector(self.faults)
        self.limiter = TokenBucketLimiter()
        self._reset_state()

    # -- subclass hooks ---------------------------------------------------------------------

    def handle_api(self, request: Request) -> Response:
        raise NotImplementedError

    def burst_429_response(self) -> Response:
        """The vendor's 429, for the ``burst_429`` fault; headers from ``burst_headers``."""
        raise NotImplementedError

    def server_error_response(self, status: int) -> Response:
        raise NotImplementedError

    def _reset_state(self) -> None:
        raise NotImplementedError

    def snapshot(self, query: dict[str, str]) -> dict[str, Any]:
        raise NotImplementedError

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def revoke(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def delete_list(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/delete_list {"list_id": ...}``: the list is gone, as when someone deletes
        it at the service; calls naming it get the vendor's answer for an unknown list."""
        raise NotImplementedError

    def config_action(self, name: str, value: Any) -> dict[str, Any] | None:
        """Handle a one-shot action key of ``/_fake/config``; None if ``name`` is not one."""
        return None

    def consent(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/consent {"emails": [...], "state": ..., "list_id", "at"}``: people
        unsubscribe, bounce, complain or are suppressed or cleaned at the service, as of
        ``at`` (ISO 8601; default now). Parse the body with ``consent_request``."""
        raise ControlError(f"the {self.kind} fake has no consent control")

    # -- control surface --------------------------------------------------------------------

    def reset(self, body: dict[str, Any]) -> dict[str, Any]:
        """Back to start-up state, settings and faults; ``{"demo": false}`` leaves it empty."""
        with self.lock:
            self.settings = replace(self._startup_settings)
            self.faults = replace(self._startup_faults)
            self.injector = FaultInjector(self.faults)
            self.limiter.reset()
            self.stats.clear()
            demo = self.demo
            self.demo = as_bool(body.get("demo"), demo)
            try:
                self._reset_state()
            finally:
                self.demo = demo
        return {"ok": True}

    def current_config(self) -> dict[str, Any]:
        return {"faults": asdict(self.faults), "settings": asdict(self.settings)}

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply config keys (fault or settings field names; ``-`` or ``_``) all or nothing."""
        changes: list[tuple[Any, str, Any]] = []
        actions: list[tuple[str, Any]] = []
        fault_names = {spec.name for spec in fields(FaultConfig)}
        settings_specs = {spec.name: spec for spec in fields(self.settings_class)}
        for raw_name, value in body.items():
            name = raw_name.replace("-", "_").lower()
            try:
                if name in fault_names:
                    changes.append(("faults", name, coerce_config_value(FaultConfig, name, value)))
                elif name in settings_specs:
                    if settings_specs[name].metadata.get("startup_only"):
                        raise ValueError(f"{name} can only be set at start-up (or by seeding)")
                    coerced = coerce_config_value(self.settings_class, name, value)
                    changes.append(("settings", name, coerced))
                elif name in self.config_actions:
                    actions.append((name, value))
                else:
                    known = sorted(fault_names | set(settings_specs) | set(self.config_actions))
                    raise ValueError(f"unknown config key {raw_name!r}; known: {', '.join(known)}")
            except (TypeError, ValueError) as error:
                raise ControlError(str(error)) from error
        results: dict[str, Any] = {}
        with self.lock:
            for target, name, value in changes:
                setattr(getattr(self, target), name, value)
            if any(name == "seed" for _, name, _ in changes):
                self.injector.reseed()
            for name, value in actions:
                results[name] = self.config_action(name, value)
        return {**self.current_config(), **({"actions": results} if results else {})}

    def handle_control(self, request: Request) -> Response:
        action = request.path.lower().rstrip("/").removeprefix("/_fake/")
        try:
            body = json.loads(request.body) if request.body.strip() else {}
            if not isinstance(body, dict):
                raise ControlError("the body must be a JSON object")
            if request.method == "GET" and action == "state":
                return json_response(200, self.snapshot(request.query))
            if request.method == "GET" and action == "config":
                return json_response(200, self.current_config())
            handlers = {
                "reset": self.reset,
                "config": self.configure,
                "seed": self.seed,
                "revoke": self.revoke,
                "delete_list": self.delete_list,
                "consent": self.consent,
            }
            if request.method == "POST" and action in handlers:
                return json_response(200, handlers[action](body))
        except json.JSONDecodeError as error:
            return json_response(400, {"error": f"invalid JSON: {error}"})
        except ControlError as error:
            return json_response(400, {"error": str(error)})
        return json_response(404, {"error": f"no control endpoint {request.method} {request.path}"})

    # -- the request pipeline ---------------------------------------------------------------

    def stats_snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot()

    def burst_headers(self, limit: int) -> dict[str, str]:
        style = self.faults.burst_429_headers
        reset = str(self.faults.burst_429_reset)
        headers: dict[str, str] = {}
        if style in ("ratelimit", "both"):
            headers.update(
                {
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset,
                }
            )
        if style in ("retry-after", "both"):
            headers["Retry-After"] = reset
        return headers


# --------------------------------------------------------------------------------------------
# The HTTP server
# --------------------------------------------------------------------------------------------


class FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Do not wait for hanging requests (timeout faults) when the server is closed.
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: FakeApp, *, quiet: bool = False) -> None:
        super().__init__(address, FakeRequestHandler)
        self.app = app
        self.quiet = quiet
        # Set on shutdown so that hanging (timeout fault) requests stop waiting.
        self.stopping = threading.Event()
        host, port = self.server_address[:2]
        self.root_url = f"http://{host}:{port}"
        if app.public_url is None:
            app.public_url = self.root_url

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class FakeRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AudienceRelayFake/1.0"
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 120
    # Headers and body go out in separate writes; with Nagle on, each answer on a kept-alive
    # connection would wait ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: FakeHTTPServer

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Skip trailers up to the blank line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        started = time.perf_counter()
        app = self.server.app
        request = Request.parse(self.command, self.path, self.headers, self._read_body())
        if request.path.lower().startswith("/_fake/"):
            self._send(app.handle_control(request))
            self._log(request, 200, started)
            return

        plan = app.injector.plan(request.path)
        if plan is not None and plan.drop:
            app.stats.record_fault("drop")
            app.stats.record(None, None)
            self.close_connection = True
            self._log(request, None, started)
            return
        if plan is not None and plan.latency_seconds:
            app.stats.record_fault("latency")
            self.server.stopping.wait(plan.latency_seconds)

        if plan is not None and plan.burst_429:
            app.stats.record_fault("burst_429")
            response = app.burst_429_response()
        elif plan is not None and plan.error_status:
            app.stats.record_fault("error_5xx")
            response = app.server_error_response(plan.error_status)
        else:
            try:
                response = app.handle_api(request)
            except Exception:  # a bug in the fake must still produce an answer
                traceback.print_exc(file=sys.stderr)
                response = app.server_error_response(500)

        app.stats.record(response.endpoint, response.status)
        if plan is not None and plan.hang_seconds:
            # The request was processed; only the answer is late, as on a real timeout where
            # "the write will still be completed".
            app.stats.record_fault("timeout")
            self.server.stopping.wait(plan.hang_seconds)
        self._send(response)
        self._log(request, response.status, started)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (typically during a timeout fault); nothing to answer.
            self.close_connection = True

    def _log(self, request: Request, status: int | None, started: float) -> None:
        if self.server.quiet:
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        outcome = "dropped" if status is None else status
        sys.stderr.write(
            f"{self.server.app.kind} {request.method} {request.target[:200]} {outcome} "
            f"{elapsed_ms:.1f}ms\n"
        )

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's own access log; ``_log`` writes one cheaper line instead."""

    def log_error(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"{self.server.app.kind} error: {format % args}\n")


Route = tuple[str, tuple[str, ...], str, str]


def match_route(
    routes: tuple[Route, ...], method: str, segments: list[str]
) -> tuple[str, str, list[str]] | bool | None:
    """Find ``(handler name, label, ids)`` for a request.

    Each route is ``(method, segments, handler name, label)`` where a ``"*"`` segment captures an
    id and other segments match case-insensitively. The first match wins, so literal routes must
    come before wildcard ones. Returns True when the path exists only for other methods (405),
    None when it does not exist (404).
    """
    path_exists = False
    for route_method, pattern, handler, label in routes:
        if len(pattern) != len(segments):
            continue
        ids = []
        for expected, actual in zip(pattern, segments, strict=True):
            if expected == "*":
                ids.append(actual)
            elif expected != actual.lower():
                break
        else:
            if route_method == method:
                return handler, label, ids
            path_exists = True
    return True if path_exists else None


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"

"""End-to-end fixtures: a real Celery worker process, Redis, PostgreSQL and the fakes.

The worker is started against the test database (the same one pytest-django created) and
listens on a queue of its own, so test sessions running side by side never take each other's
tasks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_string, policy
from email.message import Message
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu.exceptions import ChannelError

from config.celery_app import app as celery_app
from fakes.testing import running_fake

ROOT = Path(settings.BASE_DIR)
STALLED_AFTER_SECONDS = 3


@pytest.fixture
def cm_fake():
    with running_fake("campaign_monitor") as fake:
        yield fake


@pytest.fixture
def autopilot_fake():
    with running_fake("autopilot", rate_limit=20) as fake:
        yield fake


#: How Django's file e-mail backend ends each message it writes.
MAIL_SEPARATOR = "\n" + "-" * 79 + "\n"


class Worker:
    """A Celery worker subprocess that can be killed and started again. The mail it sends is
    written to files in ``mail_dir`` (``sent_mail()``)."""

    def __init__(self, env: dict[str, str], queue: str, log_path: Path, mail_dir: Path):
        self.env = {
            **env,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
        }
        self.queue = queue
        self.log_path = log_path
        self.mail_dir = mail_dir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=threads",
                "--concurrency=2",
                f"--loglevel={self.env.get('LOG_LEVEL', 'INFO')}",
                "-Q",
                self.queue,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement — as when a machine is lost."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def idle(self) -> bool:
        """Nothing waits in its queue and it holds no task: running, reserved or scheduled."""
        with celery_app.connection_for_read() as broker:
            try:
                declared = broker.default_channel.queue_declare(self.queue, passive=True)
            except ChannelError:  # Redis keeps no key for an empty queue
                waiting = 0
            else:
                waiting = declared.message_count
        inspect = celery_app.control.inspect(timeout=1.0)
        held = [inspect.active(), inspect.reserved(), inspect.scheduled()]
        return waiting == 0 and all(
            answer is not None and not any(answer.values()) for answer in held
        )

    def sent_mail(self) -> list[Message]:
        """Every e-mail the worker sent so far."""
        messages = []
        for path in sorted(self.mail_dir.glob("*.log")):
            for text in path.read_text(errors="replace").split(MAIL_SEPARATOR):
                if text.strip():
                    messages.append(message_from_string(text, policy=policy.default))
        return messages


@pytest.fixture
def e2e_settings(settings, cm_fake, autopilot_fake):
    settings.CAMPAIGN_MONITOR_API_URL = cm_fake.base_url
    settings.CAMPAIGN_MONITOR_OAUTH_URL = f"{cm_fake.root_url}/oauth"
    settings.CAMPAIGN_MONITOR_TOKEN_URL = f"{cm_fake.root_url}/oauth/token"
    settings.AUTOPILOT_API_URL = autopilot_fake.base_url
    settings.EXPORT_STALLED_AFTER_SECONDS = STALLED_AFTER_SECONDS
    return settings


@pytest.fixture
def guard_defaults(request, transactional_db):
    """What the worker's pre-flight guard allows: everything, unless the test is marked
    ``guard`` (then the defaults of Admin > System > Safety), as in-process tests do
    (``tests/conftest.py``)."""
    from exports.models import GuardDefaults
    from tests.conftest import GUARD_STANDS_ASIDE

    defaults = GuardDefaults.load()
    if not request.node.get_closest_marker("guard"):
        GuardDefaults.objects.filter(pk=defaults.pk).update(**GUARD_STANDS_ASIDE)
    return defaults


@pytest.fixture
def worker(e2e_settings, tmp_path, transactional_db, guard_defaults):
    """Start a worker on the test database; tasks sent from the test go to it, not eagerly."""
    with worker_process(e2e_settings, tmp_path, settings.REDIS_URL) as process:
        yield process


@contextmanager
def worker_process(e2e_settings, tmp_path: Path, redis_url: str) -> Iterator[Worker]:
    """A worker on the test database whose broker, cache and shared limits are ``redis_url``."""
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.e2e",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": redis_url,
        "CAMPAIGN_MONITOR_API_URL": e2e_settings.CAMPAIGN_MONITOR_API_URL,
        "CAMPAIGN_MONITOR_OAUTH_URL": e2e_settings.CAMPAIGN_MONITOR_OAUTH_URL,
        "CAMPAIGN_MONITOR_TOKEN_URL": e2e_settings.CAMPAIGN_MONITOR_TOKEN_URL,
        "CAMPAIGN_MONITOR_CLIENT_ID": e2e_settings.CAMPAIGN_MONITOR_CLIENT_ID,
        "CAMPAIGN_MONITOR_CLIENT_SECRET": e2e_settings.CAMPAIGN_MONITOR_CLIENT_SECRET,
        "AUTOPILOT_API_URL": e2e_settings.AUTOPILOT_API_URL,
        "AUTOPILOT_RATE_LIMIT": "20",
        "EXPORT_STALLED_AFTER_SECONDS": str(STALLED_AFTER_SECONDS),
        "EXPORT_HEARTBEAT_SECONDS": "0.5",
        # Few batches in flight, so that a test can stop a run half way.
        "EXPORT_CONCURRENCY": "2",
        "EXPORT_BACKOFF_BASE_SECONDS": "0.05",
        "EXPORT_BACKOFF_MAX_SECONDS": "0.5",
        "FIELD_ENCRYPTION_KEY": ",".join(settings.FIELD_ENCRYPTION_KEY),
        # Tasks the worker queues itself (webhook deliveries) go to its own queue too.
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    process = Worker(env, queue, tmp_path / "worker.log", tmp_path / "mail")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous


def _database_url() -> str:
    params = connection.settings_dict
    return (
        f"postgres://{params['USER']}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/"
        f"{params['NAME']}"
    )


def wait_until(predicate, timeout: float = 60, interval: float = 0.2, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")

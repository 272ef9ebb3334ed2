from __future__ import annotations

import os

import pytest

from accounts.roles import Role
from accounts.services import user_create_or_update
from fakes.testing import running_fake

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from the
# test body are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "correct-horse-battery"
#: The places the sources' tests read from (a second PostgreSQL database, MariaDB, files).
pytest_plugins = ["tests.sources.places"]

#: What the pre-flight guard allows in tests not marked ``guard``: everything.
GUARD_STANDS_ASIDE = {"max_removal_percent": 100, "max_removals": 10**9, "max_add_factor": 1000}


@pytest.fixture(autouse=True)
def guard_stands_aside(request, monkeypatch):
    """Runs in tests about other things remove and add freely (their lists are a handful of
    people, where one leaver is more than 10 %): the pre-flight guard stops runs only in the
    tests marked ``guard`` (tests/exports/test_guard.py and the like). E2E workers read the
    same from ``GuardDefaults`` (tests/e2e/conftest.py)."""
    if request.node.get_closest_marker("guard"):
        return
    from exports import guard

    monkeypatch.setattr(
        guard,
        "thresholds_for",
        lambda export, defaults=None: guard.Thresholds(**GUARD_STANDS_ASIDE),
    )


@pytest.fixture
def alice(db):
    """An administrator."""
    return user_create_or_update(username="alice", role=Role.ADMINISTRATOR, password=PASSWORD)[0]


@pytest.fixture
def bob(db):
    """A contributor."""
    return user_create_or_update(username="bob", role=Role.CONTRIBUTOR, password=PASSWORD)[0]


@pytest.fixture
def charlie(db):
    """A viewer."""
    return user_create_or_update(username="charlie", role=Role.VIEWER, password=PASSWORD)[0]


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def as_bob(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture
def as_charlie(client, charlie):
    client.force_login(charlie)
    return client


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium; Playwright's own browser download does not work here."""
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def autopilot(settings):
    """The Autopilot fake, without a rate limit, and the app's settings pointing at it."""
    with running_fake("autopilot", rate_limit=0) as fake:
        settings.AUTOPILOT_API_URL = fake.base_url
        yield fake

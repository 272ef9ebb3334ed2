"""Fixtures for the fakes' own tests: a fresh fake per test and HTTP sessions aimed at it.

These tests need no database; they must not request the ``db`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from fakes.testing import RunningFake, running_fake

CM_API_KEY = "demo-cm-api-key"
AUTOPILOT_KEY = "demo-autopilot-key"


@pytest.fixture
def cm() -> Iterator[RunningFake]:
    with running_fake("campaign_monitor") as fake:
        yield fake


@pytest.fixture
def cm_session(cm: RunningFake) -> Iterator[requests.Session]:
    """Authenticated with the demo account's API key (HTTP Basic, password ignored)."""
    with requests.Session() as session:
        session.auth = (CM_API_KEY, "x")
        session.trust_env = False
        yield session


@pytest.fixture
def ap() -> Iterator[RunningFake]:
    """Autopilot without its 5 r/s limit, so that tests can make many calls; the rate-limit
    tests start their own fake."""
    with running_fake("autopilot", rate_limit=0) as fake:
        yield fake


@pytest.fixture
def ap_session(ap: RunningFake) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["autopilotapikey"] = AUTOPILOT_KEY
        session.trust_env = False
        yield session

from __future__ import annotations

import pytest
import responses

CM_API = "https://cm.test/api/v3.3"
CM_OAUTH = "https://cm.test/oauth"
CM_TOKEN = "https://cm.test/oauth/token"
AP_API = "https://ap.test/v1"


@pytest.fixture(autouse=True)
def service_urls(settings):
    """Both services at test hosts, with an OAuth application configured."""
    settings.CAMPAIGN_MONITOR_API_URL = CM_API
    settings.CAMPAIGN_MONITOR_OAUTH_URL = CM_OAUTH
    settings.CAMPAIGN_MONITOR_TOKEN_URL = CM_TOKEN
    settings.CAMPAIGN_MONITOR_CLIENT_ID = "relay-client-id"
    settings.CAMPAIGN_MONITOR_CLIENT_SECRET = "relay-client-secret"
    settings.AUTOPILOT_API_URL = AP_API


@pytest.fixture
def mocked():
    """``responses`` with every unexpected request refused (no request reaches a network)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps

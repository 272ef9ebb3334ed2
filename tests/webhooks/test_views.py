from __future__ import annotations

import re

import pytest
import responses
from django.urls import reverse

from webhooks import services, signing
from webhooks.models import Delivery, Endpoint

from .conftest import ALL_EVENTS, URL

pytestmark = pytest.mark.django_db


def add(client, **data):
    return client.post(
        reverse("webhooks:create"),
        {"url": URL, "description": "Data team", "events": ALL_EVENTS, **data},
    )


def shown_secret(response) -> str:
    page = response.content.decode()
    assert 'data-copy="#secret"' in page  # shown whole, with a Copy button
    return re.search(r'<textarea id="secret"[^>]*>(whsec_[^<]+)</textarea>', page).group(1)


def test_adding_an_endpoint_shows_its_secret_once(as_alice):
    response = add(as_alice)

    assert response.status_code == 200
    secret = shown_secret(response)
    assert "no-store" in response["Cache-Control"]
    endpoint = Endpoint.objects.get()
    assert (endpoint.url, endpoint.events) == (URL, ALL_EVENTS)
    assert services.endpoint_secret(endpoint) == secret
    for page in ("webhooks:detail", "webhooks:edit"):
        assert secret not in as_alice.get(reverse(page, args=[endpoint.pk])).content.decode()
    assert secret not in as_alice.get(reverse("webhooks:list")).content.decode()


def test_it_rejects_a_plain_http_address_in_production(as_alice, settings):
    settings.DEBUG, settings.WEBHOOKS_ALLOW_HTTP = False, False

    response = add(as_alice, url="http://hooks.example.com/in")

    assert "The address must start with https://" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_it_accepts_plain_http_when_the_setting_allows_it(as_alice, settings):
    settings.WEBHOOKS_ALLOW_HTTP = True

    add(as_alice, url="http://hooks.example.com/in")

    assert Endpoint.objects.get().url == "http://hooks.example.com/in"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "https://10.0.0.5/in",
            "This address points inside your own network (10.0.0.5). Webhooks are only sent "
            "to public addresses.",
        ),
        (
            "https://169.254.169.254/latest/meta-data",
            "This address points inside your own network (169.254.169.254).",
        ),
        (
            "https://localhost:6379/",
            "This address points to the Audience Relay server itself (127.0.0.1).",
        ),
        ("https://example.invalid/in", "The host example.invalid could not be found."),
    ],
)
def test_it_rejects_an_address_webhooks_are_not_sent_to(as_alice, url, message):
    response = add(as_alice, url=url)

    assert message in response.content.decode()
    assert not Endpoint.objects.exists()


def test_it_rejects_a_name_that_resolves_inside_the_network_when_editing(as_alice, endpoint, dns):
    dns.answers["intranet.example.com"] = ["192.168.1.20"]

    response = as_alice.post(
        reverse("webhooks:edit", args=[endpoint.pk]),
        {"url": "https://intranet.example.com/in", "description": "", "events": ALL_EVENTS},
    )

    assert "points inside your own network (192.168.1.20)" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.url == URL


def test_it_accepts_a_local_receiver_when_the_settings_allow_it(as_alice, settings):
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True

    page = as_alice.get(reverse("webhooks:create")).content.decode()
    add(as_alice, url="http://127.0.0.1:9000/in")

    assert "addresses inside your own network, such as 127.0.0.1, are accepted" in page
    assert Endpoint.objects.get().url == "http://127.0.0.1:9000/in"


def test_it_asks_for_at_least_one_event(as_alice):
    response = add(as_alice, events=[])

    assert "Choose at least one event" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_it_rejects_an_address_with_a_password(as_alice):
    response = add(as_alice, url="https://user:pw@hooks.example.com/in")

    assert "Leave the user name and password out" in response.content.decode()


def test_editing_keeps_the_secret(as_alice, endpoint, secret):
    response = as_alice.post(
        reverse("webhooks:edit", args=[endpoint.pk]),
        {"url": "https://other.example.com/in", "description": "", "events": ["segment.refreshed"]},
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events) == (
        "https://other.example.com/in",
        ["segment.refreshed"],
    )
    assert services.endpoint_secret(endpoint) == secret


def test_rotating_shows_a_new_secret_and_the_old_one_stops_signing(as_alice, endpoint, secret):
    response = as_alice.post(reverse("webhooks:rotate_secret", args=[endpoint.pk]))

    new = shown_secret(response)
    assert new != secret
    assert "no-store" in response["Cache-Control"]
    endpoint.refresh_from_db()
    headers = signing.signed_headers(
        secret=services.endpoint_secret(endpoint), message_id="m", timestamp=1, body=b"{}"
    )
    assert signing.verify(secret=new, headers=headers, body=b"{}", now=1)
    assert not signing.verify(secret=secret, headers=headers, body=b"{}", now=1)


@responses.activate
def test_send_test_event_runs_the_real_delivery_and_the_log_shows_it_escaped(
    as_alice, endpoint, django_capture_on_commit_callbacks
):
    responses.post(URL, status=418, body="<script>alert(1)</script>")

    with django_capture_on_commit_callbacks(execute=True):
        response = as_alice.post(reverse("webhooks:test", args=[endpoint.pk]))

    assert response.status_code == 302
    (call,) = responses.calls
    assert call.request.headers["Webhook-Signature"].startswith("v1=")
    page = as_alice.get(reverse("webhooks:detail", args=[endpoint.pk])).content.decode()
    log = page[page.index('id="delivery-log"') :]
    assert "webhook.test" in log
    assert ">418<" in log
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in log
    assert "<script>alert" not in page
    assert "The endpoint answered 418 instead of a 2xx status." in log


def test_the_log_shows_when_the_next_retry_is(as_alice, endpoint):
    delivery = services.event_publish("segment.refreshed", {})[0]
    with responses.RequestsMock() as mock:
        mock.post(URL, status=500)
        attempt = services.delivery_attempt(delivery.pk)

    page = as_alice.get(reverse("webhooks:detail", args=[endpoint.pk])).content.decode()

    assert attempt.next_retry_at is not None
    assert ">500<" in page
    assert "No more retries" not in page


def test_disable_and_enable(as_alice, endpoint):
    as_alice.post(reverse("webhooks:disable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert not endpoint.is_enabled
    assert "Enable" in as_alice.get(reverse("webhooks:detail", args=[endpoint.pk])).content.decode()

    as_alice.post(reverse("webhooks:enable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.is_enabled


def test_disabling_cancels_what_was_waiting(as_alice, endpoint):
    delivery = services.event_publish("segment.refreshed", {})[0]

    as_alice.post(reverse("webhooks:disable", args=[endpoint.pk]))

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CANCELLED


def test_removing_an_endpoint_asks_first(as_alice, endpoint):
    url = reverse("webhooks:delete", args=[endpoint.pk])
    assert "Remove webhook endpoint" in as_alice.get(url).content.decode()

    response = as_alice.post(url)

    assert response.url == reverse("webhooks:list")
    assert not Endpoint.objects.exists()


def test_the_navigation_shows_webhooks_to_administrators_only(client, alice, bob):
    link = f'href="{reverse("webhooks:list")}"'
    client.force_login(alice)
    assert link in client.get(reverse("segments:list")).content.decode()
    client.force_login(bob)
    assert link not in client.get(reverse("segments:list")).content.decode()


def test_the_page_explains_how_to_check_the_signature(as_alice, endpoint):
    page = as_alice.get(reverse("webhooks:detail", args=[endpoint.pk])).content.decode()

    assert "Webhook-Signature" in page
    assert "HMAC-SHA256" in page


def test_pages_have_no_inline_scripts_or_event_handlers(as_alice, endpoint):
    for name, args in [
        ("webhooks:list", []),
        ("webhooks:create", []),
        ("webhooks:detail", [endpoint.pk]),
        ("webhooks:edit", [endpoint.pk]),
        ("webhooks:delete", [endpoint.pk]),
    ]:
        html = as_alice.get(reverse(name, args=args)).content.decode()
        main = html[html.index('<main id="main"') : html.index("</main>")]
        assert "<script" not in main, name
        assert not re.search(r"\son[a-z]+=", main), name

from __future__ import annotations

import hashlib
import hmac

from webhooks import signing

SECRET = "whsec_test-secret"
BODY = b'{"id":"1","type":"webhook.test","data":{}}'
NOW = 1_800_000_000


def headers(timestamp=NOW, secret=SECRET, body=BODY):
    return signing.signed_headers(secret=secret, message_id="m-1", timestamp=timestamp, body=body)


def test_the_signature_is_the_hex_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    assert headers() == {
        "Webhook-Id": "m-1",
        "Webhook-Timestamp": str(NOW),
        "Webhook-Signature": f"v1={expected}",
    }


def test_a_signed_request_verifies():
    assert signing.verify(secret=SECRET, headers=headers(), body=BODY, now=NOW + 10)


def test_headers_are_matched_whatever_their_case():
    lowered = {key.lower(): value for key, value in headers().items()}

    assert signing.verify(secret=SECRET, headers=lowered, body=BODY, now=NOW)


def test_it_refuses_another_secret():
    assert not signing.verify(secret="whsec_other", headers=headers(), body=BODY, now=NOW)


def test_it_refuses_a_changed_body():
    assert not signing.verify(secret=SECRET, headers=headers(), body=BODY + b" ", now=NOW)


def test_it_refuses_a_changed_timestamp():
    forged = {**headers(), "Webhook-Timestamp": str(NOW + 1)}

    assert not signing.verify(secret=SECRET, headers=forged, body=BODY, now=NOW)


def test_it_refuses_a_replay_older_than_the_tolerance():
    assert not signing.verify(secret=SECRET, headers=headers(), body=BODY, now=NOW + 301)


def test_it_refuses_missing_headers():
    assert not signing.verify(secret=SECRET, headers={}, body=BODY, now=NOW)


def test_any_of_several_signatures_may_match():
    both = {**headers(), "Webhook-Signature": f"v1=00 {headers()['Webhook-Signature']}"}

    assert signing.verify(secret=SECRET, headers=both, body=BODY, now=NOW)


def test_new_secrets_are_random_and_recognisable():
    first, second = signing.new_secret(), signing.new_secret()

    assert first != second
    assert first.startswith("whsec_") and len(first) > 40

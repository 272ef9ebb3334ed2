"""The Mailchimp client and backend against the contract's bodies (mailchimp_api.md)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connections.types.base import (
    AuthRevoked,
    ListNotFound,
    MemoryCredentialStore,
    Permanent,
    RateLimited,
    Record,
    Transient,
)
from connections.types.mailchimp.backend import MailchimpBackend, name_tags
from connections.types.mailchimp.client import (
    MailchimpClient,
    NotFound,
    NotRemovable,
    data_centre_of,
    subscriber_hash,
)
from core.consent import ConsentState
from exports.consent import state_for

API = "https://us21.mc.test/3.0"
LOGIN = "https://login.mc.test/oauth2"
KEY = "0123abcd0123abcd-us21"
FULLWIDTH_US21 = "\uff55\uff53\uff12\uff11"  # letters and digits, but not ASCII ones
AUDIENCE = "a1b2c3d4e5"
MERGE_FIELDS = {
    "merge_fields": [
        {"merge_id": 1, "tag": "FNAME", "name": "First Name", "type": "text"},
        {"merge_id": 2, "tag": "LNAME", "name": "Last Name", "type": "text"},
    ],
    "list_id": AUDIENCE,
    "total_items": 2,
}


@pytest.fixture(autouse=True)
def mailchimp_urls(settings):
    settings.MAILCHIMP_API_URL = "https://{dc}.mc.test/3.0"
    settings.MAILCHIMP_OAUTH_URL = LOGIN
    settings.MAILCHIMP_CLIENT_ID = "relay-id"
    settings.MAILCHIMP_CLIENT_SECRET = "relay-secret"
    settings.REDIS_URL = ""  # connection slots in the process


@pytest.fixture
def store():
    return MemoryCredentialStore({"api_key": KEY})


@pytest.fixture
def client(store):
    return MailchimpClient(store)


@pytest.fixture
def backend(store, client):
    return MailchimpBackend(store, client=client)


def problem(status, title, detail="details"):
    return {
        "status": status,
        "json": {"type": "x", "title": title, "status": status, "detail": detail, "instance": "i"},
        "content_type": "application/problem+json",
    }


def test_the_data_centre_is_the_api_keys_suffix():
    assert data_centre_of(KEY) == "us21"
    assert data_centre_of("no-suffix-here") == ""
    assert data_centre_of("nosuffix") == ""
    assert data_centre_of("0123abcd-127.0.0.1:8907/x") == ""
    assert data_centre_of("0123abcd-localhost") == ""


def test_the_subscriber_hash_is_the_md5_of_the_lower_cased_address():
    assert subscriber_hash(" Ann@Example.com ") == subscriber_hash("ann@example.com")
    assert len(subscriber_hash("ann@example.com")) == 32


def test_an_api_key_is_sent_as_http_basic_to_its_data_centre(mocked, client):
    mocked.get(f"{API}/ping", json={"health_status": "Everything's Chimpy!"})
    client.ping()
    header = mocked.calls[0].request.headers["Authorization"]
    assert header.startswith("Basic ")
    assert base64.b64decode(header.removeprefix("Basic ")).decode().endswith(f":{KEY}")


def test_an_oauth_token_is_sent_as_bearer_to_the_stored_data_centre(mocked):
    client = MailchimpClient(MemoryCredentialStore({"access_token": "tok", "dc": "us21"}))
    mocked.get(f"{API}/ping", json={})
    client.ping()
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer tok"


def test_signing_in_exchanges_the_code_and_reads_the_data_centre(mocked):
    mocked.post(f"{LOGIN}/token", json={"access_token": "tok", "expires_in": 0, "scope": None})
    mocked.get(f"{LOGIN}/metadata", json={"dc": "us21", "accountname": "Acme"})
    credentials = MailchimpClient().exchange_code(code="c0de", redirect_uri="https://r/cb")
    assert credentials == {"access_token": "tok", "dc": "us21", "account_name": "Acme"}
    assert "code=c0de" in mocked.calls[0].request.body
    assert mocked.calls[1].request.headers["Authorization"] == "OAuth tok"


@pytest.mark.parametrize(
    "dc",
    ["127.0.0.1:8907/steal?", "evil.example", "us21.evil.example/", "us21#", FULLWIDTH_US21, ""],
)
def test_signing_in_refuses_a_data_centre_that_is_not_a_data_centre_name(mocked, dc):
    """The metadata answer names a host part: anything else would take the token elsewhere."""
    mocked.post(f"{LOGIN}/token", json={"access_token": "tok", "expires_in": 0, "scope": None})
    mocked.get(f"{LOGIN}/metadata", json={"dc": dc, "accountname": "Acme"})
    with pytest.raises(Permanent, match="data centre"):
        MailchimpClient().exchange_code(code="c0de", redirect_uri="https://r/cb")
    assert [call.request.url for call in mocked.calls] == [f"{LOGIN}/token", f"{LOGIN}/metadata"]


@pytest.mark.parametrize(
    "credentials",
    [
        {"access_token": "tok", "dc": "127.0.0.1:8907/steal?"},
        {"access_token": "tok", "dc": "us21.evil.example"},
        {"api_key": f"0123abcd-{FULLWIDTH_US21}"},
        {"api_key": "0123abcd-localhost"},
    ],
)
def test_a_stored_data_centre_that_is_not_a_name_sends_nothing(mocked, credentials):
    client = MailchimpClient(MemoryCredentialStore(credentials))
    with pytest.raises(AuthRevoked, match="data centre"):
        client.ping()
    assert len(mocked.calls) == 0


def test_a_refused_code_is_a_permanent_sign_in_error(mocked):
    mocked.post(f"{LOGIN}/token", status=400, json={"error": "invalid_grant"})
    with pytest.raises(Permanent, match="invalid_grant"):
        MailchimpClient().exchange_code(code="used", redirect_uri="https://r/cb")


def test_the_authorize_url_carries_the_application_and_state():
    url = MailchimpClient().authorize_url(redirect_uri="https://r/cb", state="s1")
    assert url.startswith(f"{LOGIN}/authorize?response_type=code&client_id=relay-id")
    assert "state=s1" in url


def test_it_reads_every_page_of_audiences(mocked, client):
    first = [{"id": str(n), "name": f"A{n}"} for n in range(1000)]
    mocked.get(f"{API}/lists", json={"lists": first, "total_items": 1001})
    mocked.get(f"{API}/lists", json={"lists": [{"id": "x", "name": "Last"}], "total_items": 1001})
    assert len(client.audiences()) == 1001
    assert "offset=1000" in mocked.calls[1].request.url


@pytest.mark.parametrize(
    ("response", "error_class"),
    [
        ({"status": 429, "json": {"title": "Too Many Requests", "status": 429}}, RateLimited),
        ({"status": 403, "body": "<html>Forbidden</html>"}, RateLimited),
        (problem(403, "User Disabled"), AuthRevoked),
        (problem(403, "Wrong Datacenter"), AuthRevoked),
        (problem(401, "API Key Invalid"), AuthRevoked),
        (problem(404, "Resource Not Found"), NotFound),
        (problem(405, "Method Not Allowed"), NotRemovable),
        (problem(400, "Invalid Resource"), Permanent),
        (problem(400, "JSON Parse Error"), Permanent),
        (problem(403, "Forbidden"), Permanent),
        (problem(500, "Internal Server Error"), Transient),
        (problem(503, "Service Unavailable"), Transient),
    ],
)
def test_each_error_of_the_contract_becomes_its_typed_error(mocked, client, response, error_class):
    mocked.get(f"{API}/ping", **response)
    with pytest.raises(error_class) as raised:
        client.ping()
    assert raised.value.status == response["status"]


def test_a_rejected_key_marks_the_connection_for_re_authentication(mocked, store, client):
    mocked.get(f"{API}/ping", **problem(401, "API Key Invalid", "Your API key may be invalid"))
    with pytest.raises(AuthRevoked):
        client.ping()
    assert len(store.auth_failures) == 1


def test_a_429_without_hints_waits_the_default_and_one_with_retry_after_as_told(mocked, client):
    mocked.get(f"{API}/ping", status=429, json={"title": "Too Many Requests"})
    mocked.get(f"{API}/ping", status=429, json={}, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as unhinted:
        client.ping()
    with pytest.raises(RateLimited) as hinted:
        client.ping()
    assert (unhinted.value.hinted, hinted.value.hinted, hinted.value.wait) == (False, True, 7)


@pytest.mark.parametrize("failure", [requests.Timeout, requests.ConnectionError])
def test_timeouts_and_dropped_connections_are_transient(mocked, client, failure):
    mocked.get(f"{API}/ping", body=failure("boom"))
    with pytest.raises(Transient):
        client.ping()


def test_a_key_without_data_centre_is_refused_before_any_call(mocked):
    with pytest.raises(Permanent, match="data centre"):
        MailchimpBackend.verify({"api_key": "nodatacentre"})
    assert not mocked.calls


def test_a_batch_is_one_upsert_with_update_existing_and_merge_fields(mocked, backend):
    mocked.get(f"{API}/lists/{AUDIENCE}/merge-fields", json=MERGE_FIELDS)
    mocked.post(
        f"{API}/lists/{AUDIENCE}",
        json={
            "new_members": [{"email_address": "ann@x.com"}],
            "updated_members": [{"email_address": "Bob@x.com"}],
            "errors": [],
        },
    )
    result = backend.push(
        AUDIENCE + "#vip", [Record("ann@x.com", "Ann", "Lee"), Record("bob@x.com", "Bob")]
    )
    assert (result.accepted, result.failures) == (2, [])
    body = json.loads(mocked.calls[-1].request.body)
    assert body["update_existing"] is True and body["sync_tags"] is False
    # Only the written members' addresses come back, not 500 whole members.
    asked = parse_qs(urlsplit(mocked.calls[-1].request.url).query)["fields"][0].split(",")
    assert {"new_members.email_address", "updated_members.email_address", "errors"} <= set(asked)
    assert body["members"][0] == {
        "email_address": "ann@x.com",
        "status": "subscribed",
        "merge_fields": {"FNAME": "Ann", "LNAME": "Lee"},
        "tags": ["vip"],
    }


def test_per_record_errors_become_refusals_and_opt_outs(mocked, backend):
    mocked.get(f"{API}/lists/{AUDIENCE}/merge-fields", json=MERGE_FIELDS)
    errors = [
        ("out@x.com", "out@x.com is in a compliance state due to unsubscribe, bounce, or ..."),
        ("gone@x.com", "gone@x.com was permanently deleted and cannot be re-imported."),
        ("fake@x.com", "fake@x.com looks fake or invalid, please enter a real email address."),
        ("busy@x.com", "busy@x.com has signed up to a lot of lists very recently"),
        ("odd@x.com", "Something new"),
    ]
    mocked.post(
        f"{API}/lists/{AUDIENCE}",
        json={
            "new_members": [],
            "updated_members": [],
            "errors": [
                {"email_address": e, "error": t, "error_code": "ERROR_GENERIC"} for e, t in errors
            ],
        },
    )
    records = [Record(email) for email, _text in errors] + [Record("silent@x.com")]
    result = backend.push(AUDIENCE, records)
    codes = [failure.code for failure in result.failures]
    assert codes == [
        "compliance_state",
        "forgotten",
        "invalid_email",
        "too_many_signups",
        "generic",
        "not_accepted",
    ]
    assert result.accepted == 0
    assert {"compliance_state", "forgotten"} == set(codes) & backend.opted_out_codes


def test_an_audience_without_fname_says_names_are_not_sent(mocked, backend):
    mocked.get(f"{API}/lists", json={"lists": [{"id": AUDIENCE, "name": "News"}], "total_items": 1})
    mocked.get(
        f"{API}/lists/{AUDIENCE}/merge-fields",
        json={"merge_fields": [{"tag": "LNAME", "name": "Last Name"}], "total_items": 1},
    )
    [destination] = backend.list_destinations()
    assert destination.name == "News (no FNAME merge field: first names are not sent)"


def test_name_fields_are_found_by_the_name_the_account_gave_them():
    fields = [{"tag": "MMERGE5", "name": "First name"}, {"tag": "SURNAME", "name": "Surname"}]
    assert name_tags(fields) == ("MMERGE5", "SURNAME")
    assert name_tags([]) == ("", "")


def member_url(email: str) -> str:
    return f"{API}/lists/{AUDIENCE}/members/{subscriber_hash(email)}"


def test_leavers_are_archived_never_deleted_permanently(mocked, backend):
    mocked.get(member_url("a@x.com"), json={"email_address": "a@x.com", "status": "subscribed"})
    mocked.get(member_url("c@x.com"), **problem(404, "Resource Not Found"))
    mocked.delete(member_url("a@x.com"), status=204)
    mocked.get(f"{API}/lists/{AUDIENCE}", json={"id": AUDIENCE})
    result = backend.remove(AUDIENCE, ["a@x.com", "c@x.com"])
    assert (result.accepted, result.failures, result.opted_out) == (2, [], [])
    deleted = [call.request.url for call in mocked.calls if call.request.method == "DELETE"]
    assert deleted == [member_url("a@x.com")]
    assert not any("delete-permanent" in call.request.url for call in mocked.calls)


def test_a_leaver_who_unsubscribed_or_was_cleaned_is_reported_opted_out(mocked, backend):
    """Archiving hides the status (an archived member reads as archived, and is restored as
    subscribed when sent again): the export must learn the opt-out before archiving."""
    for email, status in (("out@x.com", "unsubscribed"), ("bounced@x.com", "cleaned")):
        mocked.get(member_url(email), json={"email_address": email, "status": status})
    mocked.delete(member_url("out@x.com"), status=204)
    result = backend.remove(AUDIENCE, ["out@x.com", "bounced@x.com"])
    assert (result.accepted, result.failures) == (2, [])
    assert result.opted_out == ["out@x.com", "bounced@x.com"]
    assert result.opted_out_states == {"bounced@x.com": "cleaned"}
    deleted = [call.request.url for call in mocked.calls if call.request.method == "DELETE"]
    assert deleted == [member_url("out@x.com")]  # Mailchimp does not archive cleaned members


def test_a_returning_member_who_unsubscribed_is_not_sent_again(mocked, backend):
    mocked.get(f"{API}/lists/{AUDIENCE}/merge-fields", json=MERGE_FIELDS)
    mocked.get(
        member_url("out@x.com"), json={"email_address": "out@x.com", "status": "unsubscribed"}
    )
    mocked.get(member_url("back@x.com"), json={"email_address": "back@x.com", "status": "archived"})
    mocked.post(
        f"{API}/lists/{AUDIENCE}",
        json={"new_members": [], "updated_members": [{"email_address": "back@x.com"}]},
    )
    records = [Record("out@x.com", returning=True), Record("back@x.com", returning=True)]
    result = backend.push(AUDIENCE, records)
    assert result.accepted == 1
    [failure] = result.failures
    assert (failure.email, failure.code) == ("out@x.com", "unsubscribed")
    assert failure.code in backend.opted_out_codes
    sent = json.loads(mocked.calls[-1].request.body)["members"]
    assert [member["email_address"] for member in sent] == ["back@x.com"]


def test_a_returning_member_who_was_cleaned_is_refused_as_cleaned_not_unsubscribed(mocked, backend):
    """The run writes the person's consent record from the code: a cleaned member (bounces)
    must not become an unsubscription."""
    mocked.get(f"{API}/lists/{AUDIENCE}/merge-fields", json=MERGE_FIELDS)
    for email, status in (("out@x.com", "unsubscribed"), ("bounced@x.com", "cleaned")):
        mocked.get(member_url(email), json={"email_address": email, "status": status})
    records = [Record("out@x.com", returning=True), Record("bounced@x.com", returning=True)]

    result = backend.push(AUDIENCE, records)

    assert result.accepted == 0
    codes = {failure.email: failure.code for failure in result.failures}
    assert codes == {"out@x.com": "unsubscribed", "bounced@x.com": "cleaned"}
    assert set(codes.values()) <= backend.opted_out_codes
    states = {email: state_for(code, backend.opted_out_states) for email, code in codes.items()}
    assert states == {"out@x.com": ConsentState.UNSUBSCRIBED, "bounced@x.com": ConsentState.CLEANED}
    assert not any(call.request.method == "POST" for call in mocked.calls)  # nobody sent


def test_removing_from_an_unknown_audience_stops_the_export(mocked, backend):
    mocked.get(member_url("a@x.com"), **problem(404, "Resource Not Found"))
    mocked.get(f"{API}/lists/{AUDIENCE}", **problem(404, "Resource Not Found"))
    with pytest.raises(ListNotFound):
        backend.remove(AUDIENCE, ["a@x.com"])


def test_a_push_to_an_audience_that_is_gone_raises_list_not_found(mocked, backend):
    mocked.get(f"{API}/lists/{AUDIENCE}/merge-fields", json=MERGE_FIELDS)
    mocked.post(f"{API}/lists/{AUDIENCE}", **problem(404, "Resource Not Found"))
    with pytest.raises(ListNotFound) as caught:
        backend.push(AUDIENCE, [Record("a@x.com")])
    assert caught.value.list_id == AUDIENCE


SEGMENTS = {
    "segments": [{"id": 7, "name": "Other", "type": "static"}, {"id": 8, "name": "VIP"}],
    "total_items": 2,
}


def test_leavers_of_a_tagged_export_lose_the_tag_500_at_a_time(mocked, backend):
    """The tag's static segment takes them off in one call, not one call per person."""
    mocked.get(f"{API}/lists/{AUDIENCE}/segments", json=SEGMENTS)
    mocked.post(f"{API}/lists/{AUDIENCE}/segments/8", json={"total_removed": 500, "errors": []})
    assert backend.removal_batch_size_for(AUDIENCE + "#vip") == 500
    assert backend.removal_batch_size_for(AUDIENCE) == backend.removal_batch_size == 500
    emails = [f"m{n}@x.com" for n in range(500)]
    assert backend.remove(AUDIENCE + "#vip", emails).accepted == 500
    assert backend.remove(AUDIENCE + "#vip", ["a@x.com"]).accepted == 1
    assert [call.request.method for call in mocked.calls] == ["GET", "POST", "POST"]
    assert json.loads(mocked.calls[1].request.body) == {"members_to_remove": emails}
    with pytest.raises(ValueError):
        backend.remove(AUDIENCE + "#vip", [*emails, "one.more@x.com"])


def test_leavers_of_a_tag_nobody_carries_need_no_call(mocked, backend):
    mocked.get(f"{API}/lists/{AUDIENCE}/segments", json=SEGMENTS)
    assert backend.remove(AUDIENCE + "#new", ["a@x.com"]).accepted == 1
    assert len(mocked.calls) == 1


def test_an_export_to_a_tag_is_found_in_its_audience(mocked, backend):
    mocked.get(f"{API}/lists", json={"lists": [{"id": AUDIENCE, "name": "News"}], "total_items": 1})
    mocked.get(f"{API}/lists/{AUDIENCE}/merge-fields", json=MERGE_FIELDS)
    found = backend.find_destination(f"{AUDIENCE}#vip")
    assert (found.id, found.name) == (f"{AUDIENCE}#vip", "News #vip")
    assert backend.find_destination("unknown#vip") is None

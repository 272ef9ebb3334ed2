"""The Mailchimp fake keeps the contract (mailchimp_api.md) and its documented choices."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from fakes.mailchimp import subscriber_hash
from fakes.testing import RunningFake, running_fake

KEY = "demo0mailchimp0key-us21"


@pytest.fixture
def mc() -> Iterator[RunningFake]:
    with running_fake("mailchimp") as fake:
        yield fake


@pytest.fixture
def api(mc) -> str:
    return mc.base_url.format(dc="us21")


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = ("anystring", KEY)
        session.trust_env = False
        yield session


@pytest.fixture
def audience(mc) -> str:
    return next(iter(mc.state()["accounts"][0]["audiences"]))


def batch(session, api, audience, *members, update_existing=True):
    body = {"members": list(members), "update_existing": update_existing}
    return session.post(f"{api}/lists/{audience}", json=body, timeout=5)


def test_a_key_for_another_data_centre_is_refused_with_a_problem_document(mc, session):
    response = session.get(mc.base_url.format(dc="us1") + "/ping", timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["title"] == "API Key Invalid"
    assert response.json()["instance"] == response.headers["X-Request-Id"]


def test_ping_answers_chimpy(session, api):
    assert session.get(f"{api}/ping", timeout=5).json() == {"health_status": "Everything's Chimpy!"}


def test_a_batch_creates_then_updates_and_reports_fake_addresses(session, api, audience):
    member = {"email_address": "ann@relay.dev", "status": "subscribed"}
    first = batch(
        session, api, audience, member, {"email_address": "x@y.test", "status": "subscribed"}
    )
    assert first.status_code == 200
    body = first.json()
    assert (body["total_created"], body["error_count"]) == (1, 1)
    assert "looks fake or invalid" in body["errors"][0]["error"]
    assert body["errors"][0]["error_code"] == "ERROR_GENERIC"
    again = batch(session, api, audience, member).json()
    assert [m["email_address"] for m in again["updated_members"]] == ["ann@relay.dev"]


def test_a_batch_reply_holds_only_the_fields_asked_for(session, api, audience):
    members = [
        {"email_address": "ann@relay.dev", "status": "subscribed"},
        {"email_address": "x@y.test", "status": "subscribed"},
    ]
    fields = "new_members.email_address,errors,total_created"
    response = session.post(
        f"{api}/lists/{audience}",
        params={"fields": fields},
        json={"members": members, "update_existing": True},
        timeout=5,
    )
    body = response.json()
    assert set(body) == {"new_members", "errors", "total_created"}
    assert body["new_members"] == [{"email_address": "ann@relay.dev"}]
    assert body["total_created"] == 1
    assert body["errors"][0]["email_address"] == "x@y.test" and body["errors"][0]["error"]


def test_a_batch_reply_cuts_each_list_of_members_to_its_own_fields(session, api, audience):
    batch(session, api, audience, {"email_address": "bo@relay.dev", "status": "subscribed"})
    members = [
        {"email_address": "ann@relay.dev", "status": "pending"},
        {"email_address": "bo@relay.dev", "status": "subscribed"},
    ]
    fields = "new_members.status,updated_members.email_address,updated_members.merge_fields"
    response = session.post(
        f"{api}/lists/{audience}",
        params={"fields": fields},
        json={"members": members, "update_existing": True},
        timeout=5,
    )
    body = response.json()
    assert body["new_members"] == [{"status": "pending"}]
    [updated] = body["updated_members"]
    assert set(updated) == {"email_address", "merge_fields"}
    assert updated["email_address"] == "bo@relay.dev" and updated["merge_fields"]["FNAME"] == ""


def test_without_update_existing_a_member_exists(session, api, audience):
    member = {"email_address": "ann@relay.dev", "status": "subscribed"}
    batch(session, api, audience, member)
    error = batch(session, api, audience, member, update_existing=False).json()["errors"][0]
    assert error["error_code"] == "ERROR_CONTACT_EXISTS"


def test_more_than_500_members_are_refused_and_nothing_is_written(mc, session, api, audience):
    members = [{"email_address": f"m{n}@relay.dev", "status": "subscribed"} for n in range(501)]
    response = batch(session, api, audience, *members)
    assert (response.status_code, response.json()["title"]) == (400, "Invalid Resource")
    assert (
        mc.state(list=audience)["accounts"][0]["audiences"][audience]["counts"]["subscribed"] == 0
    )


@pytest.mark.parametrize("status", ["unsubscribed", "cleaned"])
def test_an_opted_out_member_is_never_subscribed_again(mc, session, api, audience, status):
    mc.seed(
        accounts=[
            {
                "id": "demo",
                "audiences": [
                    {
                        "id": audience,
                        "members": [{"email_address": "out@relay.dev", "status": status}],
                    }
                ],
            }
        ]
    )
    body = batch(
        session, api, audience, {"email_address": "out@relay.dev", "status": "subscribed"}
    ).json()
    assert "compliance state" in body["errors"][0]["error"]
    member = mc.state(email="out@relay.dev")["accounts"][0]["audiences"][audience]["members"]
    assert member["out@relay.dev"]["status"] == status


def test_a_forgotten_address_cannot_be_imported_again(mc, session, api, audience):
    batch(session, api, audience, {"email_address": "gone@relay.dev", "status": "subscribed"})
    url = f"{api}/lists/{audience}/members/{subscriber_hash('gone@relay.dev')}"
    assert session.post(url + "/actions/delete-permanent", timeout=5).status_code == 204
    assert session.get(url, timeout=5).status_code == 404
    body = batch(
        session, api, audience, {"email_address": "gone@relay.dev", "status": "subscribed"}
    ).json()
    assert "permanently deleted" in body["errors"][0]["error"]


def test_archive_is_204_then_405_and_a_returning_member_is_restored(session, api, audience):
    batch(session, api, audience, {"email_address": "ann@relay.dev", "status": "subscribed"})
    url = f"{api}/lists/{audience}/members/{subscriber_hash('ann@relay.dev')}"
    assert session.delete(url, timeout=5).status_code == 204
    second = session.delete(url, timeout=5)
    assert (second.status_code, second.headers["Allow"]) == (405, "GET, PUT")
    body = batch(
        session, api, audience, {"email_address": "ann@relay.dev", "status": "subscribed"}
    ).json()
    assert body["updated_members"][0]["status"] == "subscribed"


def test_tags_are_added_by_the_batch_and_taken_off_one_by_one(mc, session, api, audience):
    member = {"email_address": "ann@relay.dev", "status": "subscribed", "tags": ["VIP"]}
    batch(session, api, audience, member)
    url = f"{api}/lists/{audience}/members/{subscriber_hash('ann@relay.dev')}/tags"
    off = session.post(url, json={"tags": [{"name": "vip", "status": "inactive"}]}, timeout=5)
    assert off.status_code == 204
    state = mc.state(email="ann@relay.dev")["accounts"][0]["audiences"][audience]["members"]
    assert state["ann@relay.dev"]["tags"] == []


def test_a_tag_is_a_static_segment_that_takes_500_addresses_off_in_one_call(
    mc, session, api, audience
):
    members = [
        {"email_address": f"m{n}@relay.dev", "status": "subscribed", "tags": ["VIP"]}
        for n in range(3)
    ]
    batch(session, api, audience, *members)
    listed = session.get(f"{api}/lists/{audience}/segments", params={"type": "static"}, timeout=5)
    [segment] = listed.json()["segments"]
    assert (segment["name"], segment["type"], segment["member_count"]) == ("VIP", "static", 3)

    url = f"{api}/lists/{audience}/segments/{segment['id']}"
    too_many = [f"x{n}@relay.dev" for n in range(501)]
    assert session.post(url, json={"members_to_remove": too_many}, timeout=5).status_code == 400
    gone = ["m0@relay.dev", "M1@relay.dev", "stranger@relay.dev"]
    reply = session.post(url, json={"members_to_remove": gone}, timeout=5).json()
    assert (reply["total_removed"], reply["errors"]) == (2, [])
    state = mc.state()["accounts"][0]["audiences"][audience]["members"]
    assert {email: m["tags"] for email, m in state.items()} == {
        "m0@relay.dev": [],
        "m1@relay.dev": [],
        "m2@relay.dev": ["VIP"],
    }
    assert "stranger@relay.dev" not in state
    unknown = session.post(f"{api}/lists/{audience}/segments/999", json={}, timeout=5)
    assert unknown.status_code == 404


def test_the_eleventh_simultaneous_request_gets_429_without_rate_headers(session, api):
    with running_fake("mailchimp", work_ms=300) as slow:
        url = slow.base_url.format(dc="us21") + "/ping"
        statuses = []

        def call():
            response = requests.get(url, auth=("x", KEY), timeout=10)
            statuses.append((response.status_code, "Retry-After" in response.headers))

        threads = [threading.Thread(target=call) for _ in range(11)]
        for thread in threads:
            thread.start()
            time.sleep(0.005)
        for thread in threads:
            thread.join()
    assert sorted(statuses) == [(200, False)] * 10 + [(429, False)]


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ({"burst_429": 1}, lambda r: r.status_code == 429 and "Retry-After" not in r.headers),
        (
            {"burst_429": 1, "burst_429_headers": "retry-after"},
            lambda r: r.status_code == 429 and r.headers["Retry-After"] == "1",
        ),
        ({"error_next": 1, "error_status": 503}, lambda r: r.status_code == 503),
    ],
)
def test_injected_faults_answer_in_mailchimps_shape(mc, session, api, fault, check):
    mc.configure(**fault)
    response = session.get(f"{api}/ping", timeout=5)
    assert check(response)
    assert response.json()["status"] == response.status_code


def test_dropped_connections_and_timeouts(mc, session, api):
    mc.configure(drop_next=1)
    with pytest.raises(requests.ConnectionError):
        session.get(f"{api}/ping", timeout=5)
    mc.configure(timeout_next=1, timeout_seconds=2)
    with pytest.raises(requests.Timeout):
        session.get(f"{api}/ping", timeout=0.5)


def test_a_revoked_key_gets_401(mc, session, api):
    mc.revoke(api_key=KEY)
    assert session.get(f"{api}/ping", timeout=5).status_code == 401


def test_oauth_gives_a_token_that_never_expires_and_metadata_wants_the_oauth_scheme(mc):
    redirect = "https://relay.test/cb/"
    allowed = requests.post(
        mc.root_url + "/oauth2/authorize",
        data={
            "client_id": "demo-mailchimp-client-id",
            "redirect_uri": redirect,
            "state": "s",
            "decision": "allow",
        },
        allow_redirects=False,
        timeout=5,
    )
    code = allowed.headers["Location"].split("code=")[1].split("&")[0]
    token = requests.post(
        mc.root_url + "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "demo-mailchimp-client-id",
            "client_secret": "demo-mailchimp-client-secret",
            "redirect_uri": redirect,
            "code": code,
        },
        timeout=5,
    ).json()
    assert token["expires_in"] == 0 and "refresh_token" not in token
    metadata = mc.root_url + "/oauth2/metadata"
    bearer = requests.get(
        metadata, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5
    )
    assert bearer.status_code == 401
    oauth = requests.get(
        metadata, headers={"Authorization": f"OAuth {token['access_token']}"}, timeout=5
    )
    assert oauth.json()["dc"] == "us21"


def read_results(session, url: str) -> dict[str, dict]:
    """A finished batch's results (mailchimp_api.md §6), by operation id."""

    archive = requests.get(url, timeout=5)  # a pre-signed address: no credentials
    assert archive.status_code == 200
    results = {}
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        for member in tar:
            for entry in json.loads(tar.extractfile(member).read()):
                results[entry["operation_id"]] = entry
    return results


def test_batches_run_each_operation_and_give_its_result_in_a_gzipped_tar(
    mc, session, api, audience
):
    batch(session, api, audience, {"email_address": "ann@relay.dev", "status": "subscribed"})
    member = f"/lists/{audience}/members/{subscriber_hash('ann@relay.dev')}"
    operations = [
        {"method": "GET", "path": member, "operation_id": "read", "params": {"fields": "status"}},
        {"method": "DELETE", "path": member, "operation_id": "archive"},
        {"method": "DELETE", "path": member, "operation_id": "again"},
        {"method": "GET", "path": f"/lists/{audience}/members/nobody", "operation_id": "gone"},
    ]
    started = session.post(f"{api}/batches", json={"operations": operations}, timeout=5)
    assert started.status_code == 200
    body = started.json()
    assert (body["status"], body["total_operations"], body["response_body_url"]) == (
        "pending",
        4,
        "",
    )
    finished = session.get(f"{api}/batches/{body['id']}", timeout=5).json()
    assert (finished["status"], finished["finished_operations"]) == ("finished", 4)
    assert finished["errored_operations"] == 2
    results = read_results(session, finished["response_body_url"])
    assert {key: entry["status_code"] for key, entry in results.items()} == {
        "read": 200,
        "archive": 204,
        "again": 405,
        "gone": 404,
    }
    assert json.loads(results["read"]["response"])["status"] == "subscribed"
    assert json.loads(results["again"]["response"])["title"] == "Method Not Allowed"
    state = mc.state(email="ann@relay.dev")["accounts"][0]["audiences"][audience]["members"]
    assert state["ann@relay.dev"]["status"] == "archived"


def test_a_batch_reads_started_as_configured_and_its_results_wait_for_finished(
    mc, session, api, audience
):
    mc.configure(batch_polls=2)
    operations = [{"method": "GET", "path": "/ping", "operation_id": "p"}]
    batch_id = session.post(f"{api}/batches", json={"operations": operations}, timeout=5).json()[
        "id"
    ]
    reads = [session.get(f"{api}/batches/{batch_id}", timeout=5).json() for _ in range(3)]
    assert [read["status"] for read in reads] == ["started", "started", "finished"]
    assert [bool(read["response_body_url"]) for read in reads] == [False, False, True]
    assert read_results(session, reads[-1]["response_body_url"])["p"]["status_code"] == 200


# -- merge fields (issue 24) --------------------------------------------------------------------


def create_merge_field(session, api, audience, **body):
    return session.post(f"{api}/lists/{audience}/merge-fields", json=body, timeout=5)


def test_a_merge_field_is_created_with_the_tag_given_or_one_mailchimp_picks(session, api, audience):
    named = create_merge_field(session, api, audience, name="Plan", type="text", tag="PLAN")
    picked = create_merge_field(
        session, api, audience, name="Tier", type="dropdown", options={"choices": ["A", "B"]}
    )
    assert named.json()["tag"] == "PLAN" and picked.json()["tag"].startswith("MMERGE")
    listed = session.get(f"{api}/lists/{audience}/merge-fields", timeout=5).json()
    assert {"PLAN", picked.json()["tag"]} <= {f["tag"] for f in listed["merge_fields"]}


@pytest.mark.parametrize(
    "body",
    [{}, {"operations": []}, {"operations": [{"method": "FETCH", "path": "/ping"}]}],
)
def test_a_malformed_batch_is_refused_and_nothing_runs(session, api, body):
    response = session.post(f"{api}/batches", json=body, timeout=5)
    assert response.status_code == 400
    assert response.json()["title"] == "Invalid Resource"


def test_another_accounts_batch_is_not_found(session, api):
    assert session.get(f"{api}/batches/nope", timeout=5).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "No type"},
        {"name": "Bad tag", "type": "text", "tag": "BAD-TAG"},
        {"name": "Long tag", "type": "text", "tag": "ELEVENCHARS"},
        {"name": "No choices", "type": "dropdown"},
        {"name": "Twice", "type": "text", "tag": "FNAME"},
    ],
)
def test_a_merge_field_mailchimp_would_refuse_is_400(session, api, audience, body):
    assert create_merge_field(session, api, audience, **body).status_code == 400


def test_the_thirty_first_merge_field_is_refused(session, api, audience):
    for n in range(26):  # after FNAME, LNAME, ADDRESS and PHONE
        assert create_merge_field(session, api, audience, name=f"F{n}", type="text").ok
    assert (
        create_merge_field(session, api, audience, name="One more", type="text").status_code == 400
    )


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("text", "x" * 256),
        ("number", "twelve"),
        ("number", True),
        ("date", "03/09/2027"),
        ("birthday", "1990-12-24"),
        ("dropdown", "C"),
    ],
)
def test_a_merge_value_the_field_cannot_take_fails_its_member(session, api, audience, kind, value):
    extra = {"options": {"choices": ["A", "B"]}} if kind == "dropdown" else {}
    create_merge_field(session, api, audience, name="Field", type=kind, tag="FIELD", **extra)
    reply = batch(
        session,
        api,
        audience,
        {"email_address": "good@example.org", "status": "subscribed"},
        {
            "email_address": "bad@example.org",
            "status": "subscribed",
            "merge_fields": {"FIELD": value},
        },
    ).json()
    assert [m["email_address"] for m in reply["new_members"]] == ["good@example.org"]
    assert [(e["email_address"], e["field"]) for e in reply["errors"]] == [
        ("bad@example.org", "merge_fields.FIELD")
    ]


def test_an_unknown_merge_tag_fails_its_member(session, api, audience):
    member = {"email_address": "a@example.org", "status": "subscribed", "merge_fields": {"NOPE": 1}}
    assert batch(session, api, audience, member).json()["error_count"] == 1


def test_values_in_each_format_are_kept_and_empty_clears(mc, session, api, audience):
    create_merge_field(session, api, audience, name="Score", type="number", tag="SCORE")
    create_merge_field(session, api, audience, name="Day", type="date", tag="DAY")
    create_merge_field(session, api, audience, name="Bday", type="birthday", tag="BDAY")
    values = {"SCORE": 2.5, "DAY": "2027-03-09", "BDAY": "12/24", "FNAME": "Ann"}
    member = {"email_address": "a@example.org", "status": "subscribed", "merge_fields": values}
    assert batch(session, api, audience, member).json()["error_count"] == 0
    cleared = {**member, "merge_fields": {"FNAME": ""}}
    batch(session, api, audience, cleared)
    stored = mc.state()["accounts"][0]["audiences"][audience]["members"]["a@example.org"]
    assert stored["merge_fields"] == {**values, "FNAME": ""}

"""The Campaign Monitor backend: what the export engine and the Test connection button see."""

from __future__ import annotations

import json

import pytest
from responses import matchers

from connections.types.base import (
    DestinationField,
    FieldType,
    ListNotFound,
    MemoryCredentialStore,
    Record,
    StepStatus,
)
from connections.types.campaign_monitor import backend as cm_backend
from connections.types.campaign_monitor.backend import CampaignMonitorBackend
from tests.connections.campaign_monitor.test_client import LIST_ID, PARTIAL, REVOKED
from tests.connections.conftest import CM_API
from tests.connections.factories import campaign_monitor_credentials


@pytest.fixture
def backend():
    return CampaignMonitorBackend(MemoryCredentialStore(campaign_monitor_credentials()))


def custom_fields(mocked, *fields: tuple[str, str, str]) -> None:
    """``GET /lists/{listid}/customfields.json``: (FieldName, Key, DataType) each."""
    mocked.get(
        f"{CM_API}/lists/{LIST_ID}/customfields.json",
        json=[
            {"FieldName": name, "Key": key, "DataType": kind, "FieldOptions": []}
            for name, key, kind in fields
        ],
    )


def test_push_returns_the_refused_records_of_a_partly_failed_import(mocked, backend):
    custom_fields(mocked, ("website", "[website]", "Text"))
    backend.prepare(LIST_ID, [DestinationField("[website]", "website", FieldType.TEXT)])
    mocked.post(f"{CM_API}/subscribers/{LIST_ID}/import.json", json=PARTIAL, status=400)
    batch = [
        Record("a@example.com", "Ann", "Lee", {"[website]": "https://a.example"}),
        Record("b@example.com"),
        Record("example+1@example"),
    ]
    result = backend.push(LIST_ID, batch)
    assert result.accepted == 2
    assert [(f.email, f.code, f.message) for f in result.failures] == [
        ("example+1@example", "1", "Invalid Email Address")
    ]
    sent = json.loads(imports(mocked)[0].request.body)["Subscribers"][0]
    assert sent["Name"] == "Ann Lee"
    assert sent["CustomFields"] == [{"Key": "[website]", "Value": "https://a.example"}]


def test_an_address_deleted_at_the_service_is_added_again_with_resubscribe(mocked, backend):
    url = f"{CM_API}/subscribers/{LIST_ID}/import.json"
    deleted = {"EmailAddress": "B@example.com", "Code": 205, "Message": "Subscriber Is Deleted"}
    unsubscribed = {"EmailAddress": "c@example.com", "Code": 206, "Message": "Is Unsubscribed"}
    refused = {"Code": 210, "ResultData": {"FailureDetails": [deleted, unsubscribed]}}
    mocked.post(url, json=refused, status=400)
    mocked.post(url, json={"FailureDetails": []}, status=201)
    subscriber_state(mocked, "b@example.com", "Deleted")
    batch = [Record("a@example.com"), Record("b@example.com"), Record("c@example.com")]

    result = backend.push(LIST_ID, batch)

    assert result.accepted == 2
    assert [(f.email, f.code) for f in result.failures] == [("c@example.com", "206")]
    first, second = (json.loads(call.request.body) for call in imports(mocked))
    assert first["Resubscribe"] is False and len(first["Subscribers"]) == 3
    assert second["Resubscribe"] is True  # only the deleted one: the unsubscribed stays out
    assert [item["EmailAddress"] for item in second["Subscribers"]] == ["b@example.com"]


def subscriber_state(mocked, email: str, state: str | None) -> None:
    """``GET /subscribers/{listid}.json?email=``: the state, or 203 when not in the list."""
    url = f"{CM_API}/subscribers/{LIST_ID}.json"
    match = [matchers.query_param_matcher({"email": email})]
    if state is None:
        mocked.get(url, json={"Code": 203, "Message": "Not In List"}, status=400, match=match)
    else:
        mocked.get(url, json={"EmailAddress": email, "State": state}, match=match)


def imports(mocked) -> list:
    return [call for call in mocked.calls if call.request.url.endswith("/import.json")]


def test_a_returning_subscriber_who_unsubscribed_or_bounced_is_not_resubscribed(mocked, backend):
    """Resubscribe re-activates unsubscribed and bounced people too: their state is read
    first, and they are refused as opted out instead of being sent."""
    url = f"{CM_API}/subscribers/{LIST_ID}/import.json"
    mocked.post(url, json={"FailureDetails": []}, status=201)
    subscriber_state(mocked, "out@example.com", "Unsubscribed")
    subscriber_state(mocked, "bounced@example.com", "Bounced")
    subscriber_state(mocked, "back@example.com", "Deleted")
    batch = [
        Record(email, returning=True)
        for email in ("out@example.com", "bounced@example.com", "back@example.com")
    ]

    result = backend.push(LIST_ID, batch)

    assert result.accepted == 1
    assert [(f.email, f.code) for f in result.failures] == [
        ("out@example.com", "206"),
        ("bounced@example.com", "207"),
    ]
    assert {"206", "207"} <= backend.opted_out_codes
    [sent] = (json.loads(call.request.body) for call in imports(mocked))
    assert sent["Resubscribe"] is True
    assert [item["EmailAddress"] for item in sent["Subscribers"]] == ["back@example.com"]


def test_a_record_without_names_leaves_the_name_in_the_list_alone(mocked, backend):
    mocked.post(
        f"{CM_API}/subscribers/{LIST_ID}/import.json", json={"FailureDetails": []}, status=201
    )
    backend.push(LIST_ID, [Record("a@example.com", "Ann", ""), Record("b@example.com")])
    sent = json.loads(mocked.calls[0].request.body)["Subscribers"]
    assert sent[0]["Name"] == "Ann"
    assert "Name" not in sent[1]  # an empty Name would overwrite the one Campaign Monitor has


def test_push_sends_at_most_250_characters_per_value_and_keeps_every_record(mocked, backend):
    custom_fields(mocked, ("bio", "[bio]", "Text"), ("score", "[score]", "Number"))
    backend.prepare(
        LIST_ID,
        [
            DestinationField("[bio]", "bio", FieldType.TEXT),
            DestinationField("[score]", "score", FieldType.NUMBER),
        ],
    )
    mocked.post(
        f"{CM_API}/subscribers/{LIST_ID}/import.json", json={"FailureDetails": []}, status=201
    )
    long_first, long_last = "Å" * 200, "Ø" * 200
    batch = [
        Record("a@example.com", long_first, long_last, {"[bio]": "x" * 300, "[score]": 7}),
        Record("b@example.com", "é" * 249, "Lee"),  # the cut falls after the space
    ]

    result = backend.push(LIST_ID, batch)

    assert result.accepted == 2 and result.failures == []
    assert [(w.email, w.code) for w in result.warnings] == [("a@example.com", "value_shortened")]
    sent = json.loads(mocked.calls[-1].request.body)["Subscribers"]
    assert len(sent) == 2
    assert sent[0]["Name"] == f"{long_first} {long_last[:49]}"
    assert sent[0]["CustomFields"] == [
        {"Key": "[bio]", "Value": "x" * 250},
        {"Key": "[score]", "Value": "7"},
    ]
    assert sent[1]["Name"] == "é" * 249
    values = [item["Name"] for item in sent]
    values += [field["Value"] for item in sent for field in item["CustomFields"]]
    assert max(len(value) for value in values) <= 250


def test_push_refuses_a_batch_over_the_batch_size(backend):
    with pytest.raises(ValueError):
        backend.push(LIST_ID, [Record(f"p{i}@x.com") for i in range(backend.batch_size + 1)])


def test_the_destinations_are_every_clients_lists(mocked, backend):
    mocked.get(f"{CM_API}/clients.json", json=[{"ClientID": "c1", "Name": "Shop"}])
    mocked.get(f"{CM_API}/clients/c1/lists.json", json=[{"ListID": LIST_ID, "Name": "Newsletter"}])
    assert [(d.id, d.name) for d in backend.list_destinations()] == [(LIST_ID, "Shop / Newsletter")]


def test_the_connection_test_passes_every_step_on_a_working_account(mocked, backend):
    mocked.get(f"{CM_API}/clients.json", json=[{"ClientID": "c1", "Name": "Shop"}])
    mocked.get(f"{CM_API}/clients/c1/lists.json", json=[{"ListID": LIST_ID, "Name": "News"}])
    mocked.get(f"{CM_API}/lists/{LIST_ID}.json", json={"ListID": LIST_ID, "Title": "News"})
    mocked.get(f"{CM_API}/lists/{LIST_ID}/customfields.json", json=[])
    steps = backend.test()
    assert [(s.name, s.status) for s in steps] == [
        ("Credentials accepted", StepStatus.PASSED),
        ("Lists readable", StepStatus.PASSED),
        ("List settings readable", StepStatus.PASSED),
    ]


def test_the_connection_test_skips_the_list_step_when_there_is_no_list(mocked, backend):
    mocked.get(f"{CM_API}/clients.json", json=[{"ClientID": "c1", "Name": "Shop"}])
    mocked.get(f"{CM_API}/clients/c1/lists.json", json=[])
    steps = backend.test()
    assert steps[2].status == StepStatus.SKIPPED
    assert "Create a list in Campaign Monitor" in steps[2].message


def test_a_revoked_authorization_fails_the_first_step_and_skips_the_rest(mocked, backend):
    mocked.get(f"{CM_API}/clients.json", json=REVOKED, status=401)
    steps = backend.test()
    assert [s.status for s in steps] == [StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.SKIPPED]
    assert "Authenticate with Campaign Monitor again" in steps[0].message
    assert backend.store.auth_failures


def test_remove_treats_an_address_that_is_not_on_the_list_as_removed(mocked, backend):
    url = f"{CM_API}/subscribers/{LIST_ID}.json"
    subscriber_state(mocked, "a@x.com", "Active")
    subscriber_state(mocked, "gone@x.com", None)
    mocked.delete(url, status=200)
    result = backend.remove(LIST_ID, ["a@x.com", "gone@x.com"])
    assert (result.accepted, result.failures, result.opted_out) == (2, [], [])
    assert [call.request.method for call in mocked.calls] == ["GET", "DELETE", "GET"]


def test_leavers_who_unsubscribed_or_bounced_are_reported_opted_out(mocked, backend):
    """Once deleted they read as Deleted, which Resubscribe lets in again: the export learns
    the opt-out before deleting."""
    subscriber_state(mocked, "out@x.com", "Unsubscribed")
    subscriber_state(mocked, "bounced@x.com", "Bounced")
    mocked.delete(f"{CM_API}/subscribers/{LIST_ID}.json", status=200)
    result = backend.remove(LIST_ID, ["out@x.com", "bounced@x.com"])
    assert (result.accepted, result.failures) == (2, [])
    assert result.opted_out == ["out@x.com", "bounced@x.com"]
    assert result.opted_out_states == {"bounced@x.com": "bounced"}


def opt_outs(mocked, kind: str, emails: list[str], *, page=1, pages=1, total=None) -> None:
    """``GET /lists/{listid}/{kind}.json``, all of them (no date), one page."""
    state = kind.capitalize()
    mocked.get(
        f"{CM_API}/lists/{LIST_ID}/{kind}.json",
        json={
            "Results": [{"EmailAddress": email, "State": state} for email in emails],
            "PageNumber": page,
            "PageSize": 1000,
            "RecordsOnThisPage": len(emails),
            "TotalNumberOfRecords": len(emails) if total is None else total,
            "NumberOfPages": pages,
        },
        match=[
            matchers.query_param_matcher(
                {
                    "date": "",
                    "page": str(page),
                    "pagesize": "1000",
                    "orderfield": "date",
                    "orderdirection": "asc",
                }
            )
        ],
    )


def deletes(mocked, *, not_in_list: tuple[str, ...] = ()) -> None:
    url = f"{CM_API}/subscribers/{LIST_ID}.json"
    for email in not_in_list:
        mocked.delete(
            url,
            json={"Code": 203, "Message": "Subscriber Not In List"},
            status=400,
            match=[matchers.query_param_matcher({"email": email})],
        )
    mocked.delete(url, status=200)


def calls_by_kind(mocked) -> dict[str, int]:
    counted: dict[str, int] = {}
    for call in mocked.calls:
        name = f"{call.request.method} {call.request.path_url.split('?')[0]}"
        counted[name] = counted.get(name, 0) + 1
    return counted


LEAVERS = [f"leaver{number}@x.com" for number in range(40)]


def test_forty_leavers_cost_a_delete_each_and_two_list_reads(mocked, backend):
    """3 unsubscribed and 2 bounced among 40 leavers: their states come from the list's reads,
    not from 40 reads of a subscriber."""
    opt_outs(mocked, "unsubscribed", ["Leaver1@x.com", "leaver2@x.com", "leaver3@x.com", "x@x.com"])
    opt_outs(mocked, "bounced", ["leaver4@x.com", "leaver5@x.com"])
    deletes(mocked)

    result = backend.remove(LIST_ID, LEAVERS)

    assert (result.accepted, result.failures) == (40, [])
    assert result.opted_out == [f"leaver{number}@x.com" for number in range(1, 6)]
    assert result.opted_out_states == {"leaver4@x.com": "bounced", "leaver5@x.com": "bounced"}
    assert calls_by_kind(mocked) == {
        f"GET /api/v3.3/lists/{LIST_ID}/unsubscribed.json": 1,
        f"GET /api/v3.3/lists/{LIST_ID}/bounced.json": 1,
        f"DELETE /api/v3.3/subscribers/{LIST_ID}.json": 40,
    }


def test_the_lists_are_read_once_for_every_batch_of_the_run(mocked, backend):
    opt_outs(mocked, "unsubscribed", ["leaver30@x.com"])
    opt_outs(mocked, "bounced", [])
    deletes(mocked)

    first = backend.remove(LIST_ID, LEAVERS[:20])
    second = backend.remove(LIST_ID, LEAVERS[20:])

    assert (first.opted_out, second.opted_out) == ([], ["leaver30@x.com"])
    assert len(mocked.calls) == 2 + 40


def test_every_page_of_the_lists_is_read(mocked, backend):
    opt_outs(mocked, "unsubscribed", ["leaver1@x.com"], page=1, pages=2, total=2)
    opt_outs(mocked, "unsubscribed", ["leaver2@x.com"], page=2, pages=2, total=2)
    opt_outs(mocked, "bounced", ["leaver3@x.com"])
    deletes(mocked)

    result = backend.remove(LIST_ID, LEAVERS[:10])

    assert result.opted_out == ["leaver1@x.com", "leaver2@x.com", "leaver3@x.com"]
    assert len(mocked.calls) == 3 + 10


def test_an_address_not_on_the_list_counts_as_removed(mocked, backend):
    opt_outs(mocked, "unsubscribed", [])
    opt_outs(mocked, "bounced", [])
    deletes(mocked, not_in_list=("leaver0@x.com",))

    result = backend.remove(LIST_ID, LEAVERS[:3])

    assert (result.accepted, result.failures, result.opted_out) == (3, [], [])


def test_a_refused_delete_is_a_failure_of_that_address_alone(mocked, backend):
    opt_outs(mocked, "unsubscribed", [])
    opt_outs(mocked, "bounced", [])
    mocked.delete(
        f"{CM_API}/subscribers/{LIST_ID}.json",
        json={"Code": 1, "Message": "Invalid Email Address"},
        status=400,
        match=[matchers.query_param_matcher({"email": "leaver1@x.com"})],
    )
    deletes(mocked)

    result = backend.remove(LIST_ID, LEAVERS[:3])

    assert result.accepted == 2
    assert [(f.email, f.code) for f in result.failures] == [("leaver1@x.com", "1")]


def test_a_list_with_more_opt_outs_than_kept_has_each_leaver_read_for_the_whole_run(
    mocked, backend, monkeypatch
):
    """Over ``MAX_KNOWN_OPT_OUTS`` (here 3): the bounced are not even read, and the next batch
    reads no list either."""
    monkeypatch.setattr(cm_backend, "MAX_KNOWN_OPT_OUTS", 3)
    opt_outs(mocked, "unsubscribed", ["leaver1@x.com", "a@x.com", "b@x.com", "c@x.com"])
    for number, email in enumerate(LEAVERS[:6]):
        subscriber_state(mocked, email, "Unsubscribed" if number == 1 else "Active")
    deletes(mocked)

    first = backend.remove(LIST_ID, LEAVERS[:3])
    second = backend.remove(LIST_ID, LEAVERS[3:6])

    assert (first.opted_out, second.opted_out) == (["leaver1@x.com"], [])
    assert calls_by_kind(mocked) == {
        f"GET /api/v3.3/lists/{LIST_ID}/unsubscribed.json": 1,
        f"GET /api/v3.3/subscribers/{LIST_ID}.json": 6,
        f"DELETE /api/v3.3/subscribers/{LIST_ID}.json": 6,
    }


def test_leavers_fewer_than_the_pages_left_to_read_are_read_one_by_one(mocked, backend):
    """Four leavers of a list with 5,500 unsubscribed (six pages): four state reads cost less
    than five more pages, and the bounced are not read."""
    opt_outs(mocked, "unsubscribed", ["leaver1@x.com"], pages=6, total=5500)
    for email in LEAVERS[:4]:
        subscriber_state(mocked, email, "Active")
    deletes(mocked)

    result = backend.remove(LIST_ID, LEAVERS[:4])

    assert result.accepted == 4
    assert calls_by_kind(mocked) == {
        f"GET /api/v3.3/lists/{LIST_ID}/unsubscribed.json": 1,
        f"GET /api/v3.3/subscribers/{LIST_ID}.json": 4,
        f"DELETE /api/v3.3/subscribers/{LIST_ID}.json": 4,
    }


def test_a_refused_list_read_falls_back_to_reading_each_leaver(mocked, backend):
    mocked.get(
        f"{CM_API}/lists/{LIST_ID}/unsubscribed.json",
        json={"Code": 403, "Message": "Not allowed"},
        status=403,
    )
    subscriber_state(mocked, "leaver0@x.com", "Bounced")
    for email in LEAVERS[1:3]:
        subscriber_state(mocked, email, "Active")
    deletes(mocked)

    result = backend.remove(LIST_ID, LEAVERS[:3])

    assert (result.accepted, result.opted_out) == (3, ["leaver0@x.com"])
    assert result.opted_out_states == {"leaver0@x.com": "bounced"}


def test_removals_from_a_list_gone_before_its_reads_stop_at_the_first_read(mocked, backend):
    mocked.get(
        f"{CM_API}/lists/{LIST_ID}/unsubscribed.json",
        json={"Code": 101, "Message": "Invalid ListID"},
        status=400,
    )
    with pytest.raises(ListNotFound):
        backend.remove(LIST_ID, LEAVERS[:10])
    assert len(mocked.calls) == 1


def test_removals_from_a_list_that_is_gone_stop_at_the_first_address(mocked, backend):
    url = f"{CM_API}/subscribers/{LIST_ID}.json"
    mocked.get(url, json={"Code": 101, "Message": "Invalid ListID"}, status=400)
    with pytest.raises(ListNotFound):
        backend.remove(LIST_ID, ["a@x.com", "b@x.com"])
    assert len(mocked.calls) == 1

"""The Campaign Monitor fake against its contract (/work/shared/spec/campaign_monitor_api.md).

One test per contract row, so the fake stays honest: the app's client is only as good as this.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from fakes.testing import FakeControlError, RunningFake, running_fake

REDIRECT_URI = "http://app.test/connections/campaign-monitor/callback"
INVALID_GRANT = {
    "error": "invalid_grant",
    "error_description": "Specified code was invalid or expired",
}


def list_ids(cm: RunningFake) -> dict[str, str]:
    """Demo list title → list id."""
    return {entry["Title"]: list_id for list_id, entry in cm.state(summary=True)["lists"].items()}


@pytest.fixture
def newsletter(cm: RunningFake) -> str:
    return list_ids(cm)["Newsletter"]


def subscribers(*emails: str) -> list[dict]:
    return [{"EmailAddress": e, "Name": e.split("@")[0], "ConsentToTrack": "Yes"} for e in emails]


def run_import(session, cm, list_id, subs, resubscribe=False) -> requests.Response:
    return session.post(
        f"{cm.base_url}/subscribers/{list_id}/import.json",
        json={
            "Subscribers": subs,
            "Resubscribe": resubscribe,
            "QueueSubscriptionBasedAutoResponders": False,
            "RestartSubscriptionBasedAutoresponders": False,
        },
    )


def members(cm: RunningFake, list_id: str) -> dict[str, dict]:
    return cm.state(list=list_id)["lists"][list_id]["subscribers"]


def authorize_code(cm: RunningFake, state: str = "xyz", **extra: str) -> str:
    response = requests.post(
        f"{cm.root_url}/oauth",
        data={
            "client_id": "demo-client-id",
            "redirect_uri": REDIRECT_URI,
            "scope": "ManageLists,ImportSubscribers",
            "state": state,
            "decision": "allow",
            **extra,
        },
        allow_redirects=False,
    )
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def exchange(cm: RunningFake, code: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": "demo-client-id",
        "client_secret": "demo-client-secret",
        "redirect_uri": REDIRECT_URI,
        "code": code,
        **overrides,
    }
    return requests.post(f"{cm.root_url}/oauth/token", data=form)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seeded_token(cm: RunningFake, **token: object) -> dict:
    account = cm.seed(accounts=[{"id": "demo", "tokens": [token]}])["accounts"][0]
    return account["tokens"][0]


# -- authentication -----------------------------------------------------------------------------


class TestAuthentication:
    def test_it_checks_credentials_before_routing(self, cm):
        for path in ("/api/v3.3/no/such/thing.json", "/somewhere/else", "/api/v3.3/clients.json"):
            response = requests.get(cm.root_url + path)
            assert response.status_code == 401
            assert response.json() == {"Code": 100, "Message": "Invalid API Key"}

    def test_an_unknown_path_with_credentials_is_404(self, cm, cm_session):
        assert cm_session.get(f"{cm.base_url}/no/such/thing.json").status_code == 404

    def test_it_rejects_an_unknown_api_key_with_code_100(self, cm):
        response = requests.get(f"{cm.base_url}/clients.json", auth=("wrong", "x"))
        assert (response.status_code, response.json()["Code"]) == (401, 100)

    def test_it_rejects_an_unreadable_basic_header_with_code_50(self, cm):
        response = requests.get(
            f"{cm.base_url}/clients.json", headers={"Authorization": "Basic %%%"}
        )
        assert (response.status_code, response.json()["Code"]) == (401, 50)

    def test_the_basic_password_is_ignored(self, cm):
        token = base64.b64encode(b"demo-cm-api-key:anything").decode()
        response = requests.get(
            f"{cm.base_url}/clients.json", headers={"Authorization": f"Basic {token}"}
        )
        assert response.status_code == 200

    def test_an_invalid_token_gets_code_120(self, cm):
        response = requests.get(f"{cm.base_url}/clients.json", headers=bearer("nope"))
        assert response.status_code == 401
        assert response.json() == {"Code": 120, "Message": "Invalid OAuth Token"}

    def test_an_expired_token_gets_code_121(self, cm):
        token = seeded_token(cm, expires_in=0)
        response = requests.get(
            f"{cm.base_url}/clients.json", headers=bearer(token["access_token"])
        )
        assert response.status_code == 401
        assert response.json() == {"Code": 121, "Message": "Expired OAuth Token"}

    def test_a_revoked_token_gets_code_122(self, cm):
        token = seeded_token(cm)
        cm.revoke(access_token=token["access_token"])
        response = requests.get(
            f"{cm.base_url}/clients.json", headers=bearer(token["access_token"])
        )
        assert response.status_code == 401
        assert response.json() == {"Code": 122, "Message": "Revoked OAuth Token"}
        refresh = requests.post(
            f"{cm.root_url}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        )
        assert refresh.json()["error"] == "invalid_grant"

    def test_a_revoked_api_key_gets_code_100(self, cm, cm_session):
        cm.revoke(api_key="demo-cm-api-key")
        assert cm_session.get(f"{cm.base_url}/clients.json").json()["Code"] == 100

    def test_forced_expiry_expires_current_tokens_but_refresh_still_works(self, cm):
        token = seeded_token(cm)
        result = cm.configure(expire_tokens=True)
        assert result["actions"]["expire_tokens"]["expired"] >= 1
        response = requests.get(
            f"{cm.base_url}/clients.json", headers=bearer(token["access_token"])
        )
        assert response.json()["Code"] == 121
        refreshed = requests.post(
            f"{cm.root_url}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        ).json()
        fresh = requests.get(
            f"{cm.base_url}/clients.json", headers=bearer(refreshed["access_token"])
        )
        assert fresh.status_code == 200

    def test_tokens_can_expire_after_a_chosen_number_of_requests(self, cm):
        token = seeded_token(cm)
        cm.configure(expire_tokens_after=2)
        answers = [
            requests.get(f"{cm.base_url}/clients.json", headers=bearer(token["access_token"]))
            for _ in range(3)
        ]
        assert [answer.status_code for answer in answers] == [200, 200, 401]
        assert answers[2].json()["Code"] == 121

    def test_refused_calls_are_counted_under_their_endpoint(self, cm):
        token = seeded_token(cm)
        cm.configure(expire_tokens=True)
        requests.get(f"{cm.base_url}/clients.json", headers=bearer(token["access_token"]))
        stats = cm.state(summary=True)["stats"]
        assert stats["requests_by_endpoint"]["GET /clients.json"] == 1
        assert stats["responses_by_status"]["401"] == 1

    def test_token_lifetime_is_configurable(self):
        with running_fake("campaign_monitor", token_lifetime=0) as cm:
            tokens = exchange(cm, authorize_code(cm)).json()
            assert tokens["expires_in"] == 0
            response = requests.get(
                f"{cm.base_url}/clients.json", headers=bearer(tokens["access_token"])
            )
            assert response.json()["Code"] == 121


# -- OAuth ----------------------------------------------------------------------------------------


class TestOAuth:
    @pytest.mark.parametrize("extra", [{}, {"type": "web_server"}])
    def test_the_authorize_page_shows_the_client_scopes_and_both_buttons(self, cm, extra):
        response = requests.get(
            f"{cm.root_url}/oauth",
            params={
                "client_id": "demo-client-id",
                "redirect_uri": REDIRECT_URI,
                "scope": "ManageLists,ImportSubscribers",
                "state": "s1",
                **extra,
            },
        )
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")
        page = response.text
        assert "Audience Relay" in page
        assert "<li>ManageLists</li>" in page and "<li>ImportSubscribers</li>" in page
        assert 'value="allow">Allow</button>' in page and 'value="deny">Deny</button>' in page

    def test_the_authorize_page_rejects_an_unknown_client(self, cm):
        response = requests.get(
            f"{cm.root_url}/oauth", params={"client_id": "who", "redirect_uri": REDIRECT_URI}
        )
        assert response.status_code == 400

    def test_allow_redirects_back_with_a_code_and_the_state(self, cm):
        response = requests.post(
            f"{cm.root_url}/oauth",
            data={
                "client_id": "demo-client-id",
                "redirect_uri": REDIRECT_URI,
                "scope": "ManageLists",
                "state": "abc 123",
                "decision": "allow",
            },
            allow_redirects=False,
        )
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
        query = parse_qs(location.query)
        assert query["state"] == ["abc 123"] and query["code"][0]

    def test_deny_redirects_back_with_access_denied_and_the_state(self, cm):
        response = requests.post(
            f"{cm.root_url}/oauth",
            data={
                "client_id": "demo-client-id",
                "redirect_uri": REDIRECT_URI,
                "scope": "ManageLists",
                "state": "s2",
                "decision": "deny",
            },
            allow_redirects=False,
        )
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        assert query["error"] == ["access_denied"]
        assert query["error_description"][0]
        assert query["state"] == ["s2"]
        assert "code" not in query

    def test_a_code_exchanges_for_tokens_with_a_form_body(self, cm):
        response = exchange(cm, authorize_code(cm))
        assert response.status_code == 200
        tokens = response.json()
        assert set(tokens) == {"access_token", "expires_in", "refresh_token"}
        assert tokens["expires_in"] == 1209600
        assert requests.get(
            f"{cm.base_url}/clients.json", headers=bearer(tokens["access_token"])
        ).ok

    def test_a_code_exchanges_for_tokens_with_the_query_string(self, cm):
        params = {
            "grant_type": "authorization_code",
            "client_id": "demo-client-id",
            "client_secret": "demo-client-secret",
            "redirect_uri": REDIRECT_URI,
            "code": authorize_code(cm),
        }
        response = requests.post(f"{cm.root_url}/oauth/token", params=params)
        assert response.status_code == 200
        assert response.json()["access_token"]

    def test_codes_are_single_use(self, cm):
        code = authorize_code(cm)
        assert exchange(cm, code).status_code == 200
        second = exchange(cm, code)
        assert second.status_code == 400
        assert second.json() == INVALID_GRANT

    def test_an_unknown_code_is_an_invalid_grant(self, cm):
        response = exchange(cm, "made-up")
        assert (response.status_code, response.json()) == (400, INVALID_GRANT)

    def test_the_redirect_uri_must_match_the_authorize_request(self, cm):
        response = exchange(cm, authorize_code(cm), redirect_uri="http://elsewhere.test/cb")
        assert (response.status_code, response.json()) == (400, INVALID_GRANT)

    def test_the_client_secret_must_match(self, cm):
        response = exchange(cm, authorize_code(cm), client_secret="wrong")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_client"

    def test_refresh_rotates_the_refresh_token(self, cm):
        first = exchange(cm, authorize_code(cm)).json()
        refreshed = requests.post(
            f"{cm.root_url}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
        assert refreshed.status_code == 200
        second = refreshed.json()
        assert set(second) == {"access_token", "expires_in", "refresh_token"}
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        reused = requests.post(
            f"{cm.root_url}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
        assert reused.status_code == 400
        assert reused.json()["error"] == "invalid_grant"
        assert requests.get(
            f"{cm.base_url}/clients.json", headers=bearer(second["access_token"])
        ).ok

    def test_refresh_can_keep_the_refresh_token(self):
        with running_fake("campaign_monitor", rotate_refresh_tokens=False) as cm:
            first = exchange(cm, authorize_code(cm)).json()
            second = requests.post(
                f"{cm.root_url}/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
            ).json()
            assert second["refresh_token"] == first["refresh_token"]


# -- clients, lists, custom fields ---------------------------------------------------------------


class TestListsAndFields:
    def test_clients_lists_and_list_details(self, cm, cm_session):
        clients = cm_session.get(f"{cm.base_url}/clients.json").json()
        assert [c["Name"] for c in clients] == ["Demo Client"]
        lists = cm_session.get(f"{cm.base_url}/clients/{clients[0]['ClientID']}/lists.json").json()
        assert [entry["Name"] for entry in lists] == ["Newsletter", "Customers"]
        details = cm_session.get(f"{cm.base_url}/lists/{lists[0]['ListID']}.json").json()
        assert set(details) == {
            "ListID",
            "Title",
            "UnsubscribePage",
            "ConfirmedOptIn",
            "ConfirmationSuccessPage",
            "UnsubscribeSetting",
        }
        assert details["Title"] == "Newsletter"

    def test_an_unknown_list_is_code_101(self, cm, cm_session):
        response = cm_session.get(f"{cm.base_url}/lists/0123456789abcdef.json")
        assert response.status_code == 400
        assert response.json() == {"Code": 101, "Message": "Invalid ListID"}

    def test_another_accounts_list_is_code_101(self, cm, cm_session):
        seeded = cm.seed(
            accounts=[{"api_key": "other", "clients": [{"lists": [{"title": "Theirs"}]}]}]
        )
        theirs = seeded["accounts"][0]["clients"][0]["lists"][0]["id"]
        response = cm_session.get(f"{cm.base_url}/lists/{theirs}.json")
        assert response.json()["Code"] == 101

    def test_creating_a_custom_field_derives_its_key(self, cm, cm_session, newsletter):
        response = cm_session.post(
            f"{cm.base_url}/lists/{newsletter}/customfields.json",
            json={
                "FieldName": "new date field",
                "DataType": "Date",
                "Options": [],
                "VisibleInPreferenceCenter": True,
            },
        )
        assert response.status_code == 201
        assert response.json() == "[newdatefield]"
        fields = cm_session.get(f"{cm.base_url}/lists/{newsletter}/customfields.json").json()
        assert fields == [
            {
                "FieldName": "new date field",
                "Key": "[newdatefield]",
                "DataType": "Date",
                "FieldOptions": [],
                "VisibleInPreferenceCenter": True,
            }
        ]

    def test_a_duplicate_custom_field_is_refused(self, cm, cm_session, newsletter):
        url = f"{cm.base_url}/lists/{newsletter}/customfields.json"
        assert cm_session.post(url, json={"FieldName": "website", "DataType": "Text"}).ok
        again = cm_session.post(url, json={"FieldName": "Website", "DataType": "Text"})
        assert again.status_code == 400


# -- import ---------------------------------------------------------------------------------------


class TestImport:
    def test_a_clean_import_is_201_with_the_counts(self, cm, cm_session, newsletter):
        response = run_import(
            cm_session, cm, newsletter, subscribers("a@x.com", "b@x.com", "c@x.com")
        )
        assert response.status_code == 201
        assert response.json() == {
            "FailureDetails": [],
            "TotalUniqueEmailsSubmitted": 3,
            "TotalExistingSubscribers": 0,
            "TotalNewSubscribers": 3,
            "DuplicateEmailsInSubmission": [],
        }
        assert set(members(cm, newsletter)) == {"a@x.com", "b@x.com", "c@x.com"}

    def test_existing_subscribers_are_counted_as_existing(self, cm, cm_session, newsletter):
        run_import(cm_session, cm, newsletter, subscribers("a@x.com", "b@x.com"))
        result = run_import(
            cm_session, cm, newsletter, subscribers("a@x.com", "B@X.com", "c@x.com")
        )
        assert result.json()["TotalExistingSubscribers"] == 2
        assert result.json()["TotalNewSubscribers"] == 1

    def test_more_than_1000_subscribers_is_code_209(self, cm, cm_session, newsletter):
        emails = [f"u{i}@x.com" for i in range(1001)]
        response = run_import(cm_session, cm, newsletter, subscribers(*emails))
        assert response.status_code == 400
        assert response.json()["Code"] == 209
        assert "1000" in response.json()["Message"]
        assert members(cm, newsletter) == {}

    def test_exactly_1000_subscribers_is_fine(self, cm, cm_session, newsletter):
        emails = [f"u{i}@x.com" for i in range(1000)]
        assert run_import(cm_session, cm, newsletter, subscribers(*emails)).status_code == 201

    def test_an_empty_batch_is_code_212(self, cm, cm_session, newsletter):
        response = run_import(cm_session, cm, newsletter, [])
        assert (response.status_code, response.json()["Code"]) == (400, 212)

    def test_invalid_addresses_are_code_210_with_result_data(self, cm, cm_session, newsletter):
        run_import(cm_session, cm, newsletter, subscribers("a@x.com", "b@x.com"))
        response = run_import(
            cm_session, cm, newsletter, subscribers("a@x.com", "b@x.com", "example+1@example")
        )
        assert response.status_code == 400
        assert response.json() == {
            "ResultData": {
                "TotalUniqueEmailsSubmitted": 3,
                "TotalExistingSubscribers": 2,
                "TotalNewSubscribers": 0,
                "DuplicateEmailsInSubmission": [],
                "FailureDetails": [
                    {
                        "EmailAddress": "example+1@example",
                        "Code": 1,
                        "Message": "Invalid Email Address",
                    }
                ],
            },
            "Code": 210,
            "Message": "Subscriber Import had some failures",
        }

    def test_the_valid_part_of_a_partial_failure_is_imported(self, cm, cm_session, newsletter):
        run_import(cm_session, cm, newsletter, subscribers("ok@x.com", "not an email"))
        assert set(members(cm, newsletter)) == {"ok@x.com"}

    def test_without_resubscribe_an_unsubscribed_address_is_code_206(
        self, cm, cm_session, newsletter
    ):
        run_import(cm_session, cm, newsletter, subscribers("gone@x.com"))
        cm_session.post(
            f"{cm.base_url}/subscribers/{newsletter}/unsubscribe.json",
            json={"EmailAddress": "gone@x.com"},
        )
        response = run_import(
            cm_session, cm, newsletter, subscribers("gone@x.com"), resubscribe=False
        )
        assert response.status_code == 400
        result = response.json()["ResultData"]
        assert result["FailureDetails"] == [
            {"EmailAddress": "gone@x.com", "Code": 206, "Message": "Subscriber Is Unsubscribed"}
        ]
        assert members(cm, newsletter)["gone@x.com"]["State"] == "Unsubscribed"

    def test_with_resubscribe_an_unsubscribed_address_is_reactivated(
        self, cm, cm_session, newsletter
    ):
        """On a list whose unsubscribes stay on it: a suppressed address is refused (below)."""
        client_id = cm.state(summary=True)["lists"][newsletter]["ClientID"]
        cm.seed(
            accounts=[
                {
                    "id": "demo",
                    "clients": [
                        {
                            "id": client_id,
                            "lists": [{"id": newsletter, "unsubscribe_setting": "OnlyThisList"}],
                        }
                    ],
                }
            ]
        )
        run_import(cm_session, cm, newsletter, subscribers("gone@x.com"))
        cm_session.post(
            f"{cm.base_url}/subscribers/{newsletter}/unsubscribe.json",
            json={"EmailAddress": "gone@x.com"},
        )
        response = run_import(
            cm_session, cm, newsletter, subscribers("gone@x.com"), resubscribe=True
        )
        assert response.status_code == 201
        assert response.json()["TotalExistingSubscribers"] == 1
        assert members(cm, newsletter)["gone@x.com"]["State"] == "Active"

    @pytest.mark.parametrize(
        ("state", "code"), [("Deleted", 205), ("Bounced", 207), ("Unsubscribed", 206)]
    )
    def test_inactive_states_without_resubscribe(self, cm, cm_session, newsletter, state, code):
        cm.seed(
            accounts=[
                {
                    "id": "demo",
                    "clients": [
                        {
                            "id": cm.state(summary=True)["lists"][newsletter]["ClientID"],
                            "lists": [
                                {
                                    "id": newsletter,
                                    "subscribers": [{"EmailAddress": "s@x.com", "State": state}],
                                }
                            ],
                        }
                    ],
                }
            ]
        )
        response = run_import(cm_session, cm, newsletter, subscribers("s@x.com"))
        assert response.json()["ResultData"]["FailureDetails"][0]["Code"] == code
        assert run_import(cm_session, cm, newsletter, subscribers("s@x.com"), resubscribe=True).ok

    def test_a_suppressed_address_is_code_204_whatever_resubscribe_says(self, cm, cm_session):
        lists = list_ids(cm)
        run_import(cm_session, cm, lists["Newsletter"], subscribers("no@x.com"))
        # The demo lists unsubscribe from all client lists, which suppresses the address.
        cm_session.post(
            f"{cm.base_url}/subscribers/{lists['Newsletter']}/unsubscribe.json",
            json={"EmailAddress": "no@x.com"},
        )
        response = run_import(cm_session, cm, lists["Customers"], subscribers("no@x.com"))
        assert response.json()["ResultData"]["FailureDetails"][0]["Code"] == 204
        assert "no@x.com" not in members(cm, lists["Customers"])
        again = run_import(cm_session, cm, lists["Newsletter"], subscribers("no@x.com"), True)
        assert again.json()["ResultData"]["FailureDetails"][0]["Code"] == 204
        assert members(cm, lists["Newsletter"])["no@x.com"]["State"] == "Unsubscribed"

    def test_duplicates_are_listed_as_strings(self, cm, cm_session, newsletter):
        response = run_import(
            cm_session, cm, newsletter, subscribers("a@x.com", "b@x.com", "A@x.com", "a@x.com")
        )
        assert response.status_code == 201
        body = response.json()
        assert body["DuplicateEmailsInSubmission"] == ["A@x.com", "a@x.com"]
        assert body["TotalUniqueEmailsSubmitted"] == 2
        assert body["TotalNewSubscribers"] == 2

    def test_custom_fields_bare_bracketed_and_clear(self, cm, cm_session, newsletter):
        url = f"{cm.base_url}/lists/{newsletter}/customfields.json"
        cm_session.post(url, json={"FieldName": "website", "DataType": "Text"})
        cm_session.post(url, json={"FieldName": "plan", "DataType": "Text"})
        subscriber = {
            "EmailAddress": "a@x.com",
            "CustomFields": [
                {"Key": "website", "Value": "http://a"},
                {"Key": "[plan]", "Value": "pro"},
            ],
        }
        run_import(cm_session, cm, newsletter, [subscriber])
        assert members(cm, newsletter)["a@x.com"]["CustomFields"] == {
            "[website]": "http://a",
            "[plan]": "pro",
        }
        update = {
            "EmailAddress": "a@x.com",
            "CustomFields": [
                {"Key": "[Website]", "Value": "", "Clear": True},
                {"Key": "plan", "Value": ""},
            ],
        }
        run_import(cm_session, cm, newsletter, [update])
        assert members(cm, newsletter)["a@x.com"]["CustomFields"] == {"[plan]": "pro"}


# -- paging, single subscribers, delete, unsubscribe ----------------------------------------------


class TestSubscribers:
    def test_active_is_a_paged_envelope(self, cm, cm_session, newsletter):
        emails = [f"user{i:02d}@x.com" for i in range(25)]
        run_import(cm_session, cm, newsletter, subscribers(*emails))
        page = cm_session.get(
            f"{cm.base_url}/lists/{newsletter}/active.json",
            params={"page": 3, "pagesize": 10, "orderfield": "email", "orderdirection": "asc"},
        ).json()
        assert {k: v for k, v in page.items() if k != "Results"} == {
            "ResultsOrderedBy": "email",
            "OrderDirection": "asc",
            "PageNumber": 3,
            "PageSize": 10,
            "RecordsOnThisPage": 5,
            "TotalNumberOfRecords": 25,
            "NumberOfPages": 3,
        }
        assert [r["EmailAddress"] for r in page["Results"]] == emails[20:]
        descending = cm_session.get(
            f"{cm.base_url}/lists/{newsletter}/active.json",
            params={"pagesize": 10, "orderdirection": "desc"},
        ).json()
        assert descending["Results"][0]["EmailAddress"] == "user24@x.com"

    @pytest.mark.parametrize("page_size", [9, 1001])
    def test_a_page_size_outside_10_to_1000_is_code_801(
        self, cm, cm_session, newsletter, page_size
    ):
        response = cm_session.get(
            f"{cm.base_url}/lists/{newsletter}/active.json", params={"pagesize": page_size}
        )
        assert (response.status_code, response.json()["Code"]) == (400, 801)

    def test_add_get_and_update_a_subscriber(self, cm, cm_session, newsletter):
        fields = f"{cm.base_url}/lists/{newsletter}/customfields.json"
        cm_session.post(fields, json={"FieldName": "website", "DataType": "Text"})
        url = f"{cm.base_url}/subscribers/{newsletter}.json"
        added = cm_session.post(
            url,
            json={
                "EmailAddress": "one@x.com",
                "Name": "One",
                "CustomFields": [{"Key": "website", "Value": "http://one"}],
                "Resubscribe": True,
                "ConsentToTrack": "Yes",
            },
        )
        assert (added.status_code, added.json()) == (201, "one@x.com")
        details = cm_session.get(url, params={"email": "one@x.com"}).json()
        assert details["EmailAddress"] == "one@x.com"
        assert details["State"] == "Active"
        assert details["CustomFields"] == [{"Key": "website", "Value": "http://one"}]
        assert {"Name", "Date", "ListJoinedDate", "ReadsEmailWith"} <= set(details)
        updated = cm_session.put(
            url, params={"email": "one@x.com"}, json={"EmailAddress": "uno@x.com", "Name": "Uno"}
        )
        assert (updated.status_code, updated.content) == (200, b"")
        assert set(members(cm, newsletter)) == {"uno@x.com"}
        assert members(cm, newsletter)["uno@x.com"]["Name"] == "Uno"

    def test_getting_a_non_member_is_code_203(self, cm, cm_session, newsletter):
        response = cm_session.get(
            f"{cm.base_url}/subscribers/{newsletter}.json", params={"email": "who@x.com"}
        )
        assert (response.status_code, response.json()["Code"]) == (400, 203)

    def test_adding_an_invalid_address_is_code_1(self, cm, cm_session, newsletter):
        response = cm_session.post(
            f"{cm.base_url}/subscribers/{newsletter}.json", json={"EmailAddress": "nope"}
        )
        assert (response.status_code, response.json()["Code"]) == (400, 1)

    def test_delete_sets_state_deleted(self, cm, cm_session, newsletter):
        run_import(cm_session, cm, newsletter, subscribers("a@x.com", "b@x.com"))
        response = cm_session.delete(
            f"{cm.base_url}/subscribers/{newsletter}.json", params={"email": "a@x.com"}
        )
        assert (response.status_code, response.content) == (200, b"")
        assert members(cm, newsletter)["a@x.com"]["State"] == "Deleted"
        assert (
            cm.state(summary=True)["clients"][cm.state()["lists"][newsletter]["ClientID"]][
                "suppressed"
            ]
            == []
        )
        active = cm_session.get(f"{cm.base_url}/lists/{newsletter}/active.json").json()
        assert [r["EmailAddress"] for r in active["Results"]] == ["b@x.com"]

    def test_deleting_a_non_member_is_code_203(self, cm, cm_session, newsletter):
        response = cm_session.delete(
            f"{cm.base_url}/subscribers/{newsletter}.json", params={"email": "who@x.com"}
        )
        assert response.status_code == 400
        assert response.json() == {"Code": 203, "Message": "Subscriber Not In List"}

    def test_unsubscribe_from_all_client_lists(self, cm, cm_session):
        lists = list_ids(cm)
        for list_id in lists.values():
            run_import(cm_session, cm, list_id, subscribers("a@x.com"))
        response = cm_session.post(
            f"{cm.base_url}/subscribers/{lists['Newsletter']}/unsubscribe.json",
            json={"EmailAddress": "a@x.com"},
        )
        assert (response.status_code, response.content) == (200, b"")
        assert members(cm, lists["Newsletter"])["a@x.com"]["State"] == "Unsubscribed"
        assert members(cm, lists["Customers"])["a@x.com"]["State"] == "Unsubscribed"

    def test_unsubscribe_from_only_this_list(self, cm, cm_session):
        seeded = cm.seed(
            accounts=[
                {
                    "id": "demo",
                    "clients": [
                        {
                            "name": "Solo",
                            "lists": [
                                {"title": "One", "unsubscribe_setting": "OnlyThisList"},
                                {"title": "Two"},
                            ],
                        }
                    ],
                }
            ]
        )
        one, two = (entry["id"] for entry in seeded["accounts"][0]["clients"][0]["lists"])
        for list_id in (one, two):
            run_import(cm_session, cm, list_id, subscribers("a@x.com"))
        cm_session.post(
            f"{cm.base_url}/subscribers/{one}/unsubscribe.json", json={"EmailAddress": "a@x.com"}
        )
        assert members(cm, one)["a@x.com"]["State"] == "Unsubscribed"
        assert members(cm, two)["a@x.com"]["State"] == "Active"

    def test_paths_query_names_and_json_keys_ignore_case(self, cm, cm_session, newsletter):
        response = cm_session.post(
            f"{cm.root_url}/API/V3.3/Subscribers/{newsletter.upper()}/Import.JSON",
            json={"subscribers": [{"emailaddress": "a@x.com", "NAME": "A"}], "resubscribe": "True"},
        )
        assert response.status_code == 201
        assert members(cm, newsletter)["a@x.com"]["Name"] == "A"
        page = cm_session.get(
            f"{cm.base_url}/lists/{newsletter}/Active.json", params={"PageSize": 10}
        )
        assert page.json()["PageSize"] == 10

    def test_a_path_without_json_is_404(self, cm, cm_session):
        assert cm_session.get(f"{cm.base_url}/clients").status_code == 404


# -- rate limit -----------------------------------------------------------------------------------


def test_the_rate_limit_answers_429_with_rate_headers():
    with running_fake("campaign_monitor", rate_limit=2) as cm:
        session = requests.Session()
        session.auth = ("demo-cm-api-key", "x")
        first = session.get(f"{cm.base_url}/clients.json")
        assert first.headers["X-RateLimit-Limit"] == "2"
        session.get(f"{cm.base_url}/clients.json")
        third = session.get(f"{cm.base_url}/clients.json")
        assert third.status_code == 429
        assert third.json() == {"Code": 429, "Message": "Rate limit exceeded"}
        assert third.headers["X-RateLimit-Remaining"] == "0"
        assert int(third.headers["X-RateLimit-Reset"]) >= 1
        assert cm.state(summary=True)["stats"]["served_429"] == 1


# -- control endpoints ----------------------------------------------------------------------------


class TestControl:
    def test_state_shows_each_address_in_its_list(self, cm, cm_session, newsletter):
        run_import(cm_session, cm, newsletter, subscribers("A@x.com"))
        state = cm.state()
        entry = state["lists"][newsletter]["subscribers"]["a@x.com"]
        assert entry["EmailAddress"] == "A@x.com" and entry["State"] == "Active"
        assert state["lists"][newsletter]["counts"]["Active"] == 1
        assert state["stats"]["requests_by_endpoint"]["POST /subscribers/{listid}/import.json"] == 1
        assert "subscribers" not in cm.state(summary=True)["lists"][newsletter]
        assert list(cm.state(list=newsletter)["lists"]) == [newsletter]
        assert cm.state(email="a@x.com")["lists"][newsletter]["subscribers"]["a@x.com"]

    def test_a_deleted_list_is_an_invalid_list_id(self, cm, cm_session, newsletter):
        assert cm.delete_list(newsletter) == {"deleted": newsletter}
        response = run_import(cm_session, cm, newsletter, subscribers("a@x.com"))
        assert response.status_code == 400
        assert response.json() == {"Code": 101, "Message": "Invalid ListID"}
        client = next(iter(cm.state(summary=True)["clients"].values()))
        assert newsletter not in client["list_ids"]
        with pytest.raises(Exception, match="no list"):
            cm.delete_list(newsletter)

    def test_reset_goes_back_to_the_demo_data(self, cm, cm_session, newsletter):
        run_import(cm_session, cm, newsletter, subscribers("a@x.com"))
        cm.configure(latency_ms=5)
        cm.reset()
        assert members(cm, newsletter) == {}
        assert cm.state()["config"]["faults"]["latency_ms"] == 0
        cm.reset(demo=False)
        assert cm.state()["lists"] == {}

    def test_config_rejects_unknown_keys_and_startup_only_settings(self, cm):
        with pytest.raises(Exception, match="unknown config key"):
            cm.configure(no_such_fault=1)
        with pytest.raises(Exception, match="start-up"):
            cm.configure(client_secret="x")


# -- custom field values the list refuses (issue 24) -------------------------------------------


class TestCustomFieldValues:
    @pytest.fixture
    def fields(self, cm, cm_session, newsletter):
        url = f"{cm.base_url}/lists/{newsletter}/customfields.json"
        for name, data_type, options in (
            ("plan", "Text", []),
            ("age", "Number", []),
            ("renewal", "Date", []),
            ("tier", "MultiSelectOne", ["Gold", "Silver"]),
            ("likes", "MultiSelectMany", ["Tea", "Cake"]),
            ("country", "Country", []),
        ):
            created = cm_session.post(
                url, json={"FieldName": name, "DataType": data_type, "Options": options}
            )
            assert created.status_code == 201, created.text

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("[unknown]", "x"),
            ("[plan]", "x" * 251),
            ("[age]", "twelve"),
            ("[renewal]", "09/03/2027"),
            ("[renewal]", "2077/01/01"),
            ("[tier]", "Bronze"),
            ("[likes]", "Coffee"),
            ("[country]", "Atlantis"),
        ],
    )
    def test_a_value_the_field_cannot_take_fails_its_subscriber_with_code_253(
        self, cm, cm_session, newsletter, fields, key, value
    ):
        good = {"EmailAddress": "good@x.com", "CustomFields": [{"Key": "[plan]", "Value": "P"}]}
        bad = {"EmailAddress": "bad@x.com", "CustomFields": [{"Key": key, "Value": value}]}
        response = run_import(cm_session, cm, newsletter, [good, bad])
        assert response.status_code == 400
        failures = response.json()["ResultData"]["FailureDetails"]
        assert [(f["EmailAddress"], f["Code"]) for f in failures] == [("bad@x.com", 253)]
        assert set(members(cm, newsletter)) == {"good@x.com"}

    def test_values_in_each_format_are_kept(self, cm, cm_session, newsletter, fields):
        subscriber = {
            "EmailAddress": "a@x.com",
            "CustomFields": [
                {"Key": "[plan]", "Value": "x" * 250},
                {"Key": "[age]", "Value": "-12.5"},
                {"Key": "[renewal]", "Value": "2027/03/09"},
                {"Key": "[tier]", "Value": "gold"},
                {"Key": "[likes]", "Value": "Tea"},
                {"Key": "[likes]", "Value": "Cake"},
                {"Key": "[country]", "Value": "France"},
            ],
        }
        assert run_import(cm_session, cm, newsletter, [subscriber]).status_code == 201
        stored = members(cm, newsletter)["a@x.com"]["CustomFields"]
        assert stored["[likes]"] == ["Tea", "Cake"] and stored["[renewal]"] == "2027/03/09"

    def test_a_new_subscriber_without_consent_to_track_gets_no(self, cm, cm_session, newsletter):
        subscriber = {"EmailAddress": "a@x.com", "ConsentToTrack": "Unchanged"}
        run_import(cm_session, cm, newsletter, [subscriber])
        assert members(cm, newsletter)["a@x.com"]["ConsentToTrack"] == "No"

    def test_multi_valued_fields_need_options_and_others_take_none(
        self, cm, cm_session, newsletter
    ):
        url = f"{cm.base_url}/lists/{newsletter}/customfields.json"
        multi = cm_session.post(url, json={"FieldName": "m", "DataType": "MultiSelectOne"})
        text = cm_session.post(url, json={"FieldName": "t", "DataType": "Text", "Options": ["a"]})
        assert (multi.json()["Code"], text.json()["Code"]) == (257, 256)


# -- consent read-back (§11) and POST /_fake/consent ---------------------------------------------


def client_id(cm: RunningFake) -> str:
    return next(iter(cm.state(summary=True)["clients"]))


class TestConsentReadBack:
    def test_unsubscribed_reads_since_a_date_inclusive_oldest_first_in_pages(
        self, cm, cm_session, newsletter
    ):
        cm.consent(["old@x.com"], "unsubscribed", list_id=newsletter, at="2026-04-30T23:59:00")
        cm.consent(["b@x.com"], "unsubscribed", list_id=newsletter, at="2026-05-02T08:00:00")
        cm.consent(["a@x.com"], "unsubscribed", list_id=newsletter, at="2026-05-01T00:00:00")
        url = f"{cm.base_url}/lists/{newsletter}/unsubscribed.json"
        query = {"date": "2026-05-01", "orderfield": "date", "orderdirection": "asc"}
        page = cm_session.get(url, params={**query, "pagesize": 10}).json()
        assert [(r["EmailAddress"], r["Date"], r["State"]) for r in page["Results"]] == [
            ("a@x.com", "2026-05-01 00:00:00", "Unsubscribed"),
            ("b@x.com", "2026-05-02 08:00:00", "Unsubscribed"),
        ]
        assert (page["TotalNumberOfRecords"], page["NumberOfPages"]) == (2, 1)
        assert "ConsentToTrack" not in page["Results"][0]
        past = cm_session.get(url, params={**query, "page": 2, "pagesize": 10}).json()
        assert (past["Results"], past["PageNumber"], past["TotalNumberOfRecords"]) == ([], 2, 2)
        everything = cm_session.get(url, params={"date": "", "includetrackingpreference": "true"})
        assert len(everything.json()["Results"]) == 3
        assert everything.json()["Results"][0]["ConsentToTrack"] == "Unchanged"

    def test_dates_are_written_and_filtered_in_the_clients_time_zone(
        self, cm, cm_session, newsletter
    ):
        cm.configure(time_zone="(GMT+10:00) Canberra, Melbourne, Sydney")
        cm.consent(["a@x.com"], "bounced", list_id=newsletter, at="2026-05-01T15:30:20Z")
        details = cm_session.get(f"{cm.base_url}/clients/{client_id(cm)}.json").json()
        assert details["BasicDetails"]["TimeZone"] == "(GMT+10:00) Canberra, Melbourne, Sydney"
        url = f"{cm.base_url}/lists/{newsletter}/bounced.json"
        # 15:30:20 UTC is 01:30 the next day in Sydney; list reads show seconds as 00.
        read = cm_session.get(url, params={"date": "2026-05-02"}).json()["Results"]
        assert [(r["EmailAddress"], r["Date"]) for r in read] == [
            ("a@x.com", "2026-05-02 01:30:00")
        ]
        later = cm_session.get(url, params={"date": "2026-05-02 01:31:00"}).json()["Results"]
        assert later == []

    def test_the_suppression_list_is_paged_without_a_date_filter(self, cm, cm_session, newsletter):
        cm.consent(["u@x.com"], "unsubscribed", list_id=newsletter, at="2026-05-01T10:00:00")
        cm.consent(["c@x.com"], "complained", list_id=newsletter, at="2026-05-03T10:00:00")
        cm.consent(["s@x.com"], "suppressed", client_id=client_id(cm), at="2026-05-02T10:00:05")
        url = f"{cm.base_url}/clients/{client_id(cm)}/suppressionlist.json"
        newest = cm_session.get(
            url, params={"orderfield": "date", "orderdirection": "desc", "pagesize": 10}
        ).json()
        assert newest["Results"] == [
            {
                "SuppressionReason": "Spam Complaint",
                "EmailAddress": "c@x.com",
                "Date": "2026-05-03 10:00:00",
                "State": "Suppressed",
            },
            {
                "SuppressionReason": "Manually Added",
                "EmailAddress": "s@x.com",
                "Date": "2026-05-02 10:00:05",
                "State": "Suppressed",
            },
            {
                "SuppressionReason": "Unsubscribed",
                "EmailAddress": "u@x.com",
                "Date": "2026-05-01 10:00:00",
                "State": "Suppressed",
            },
        ]
        assert newest["NumberOfPages"] == 1
        assert members(cm, newsletter)["c@x.com"]["State"] == "Unsubscribed"

    def test_a_bounce_stays_in_its_list_and_deleted_people_are_only_in_deleted(
        self, cm, cm_session, newsletter
    ):
        run_import(cm_session, cm, newsletter, subscribers("gone@x.com"))
        cm_session.delete(
            f"{cm.base_url}/subscribers/{newsletter}.json", params={"email": "gone@x.com"}
        )
        cm.consent(["bad@x.com"], "bounced", list_id=newsletter)
        read = cm_session.get(f"{cm.base_url}/lists/{newsletter}/bounced.json").json()["Results"]
        assert [r["EmailAddress"] for r in read] == ["bad@x.com"]
        unsubscribed = cm_session.get(f"{cm.base_url}/lists/{newsletter}/unsubscribed.json")
        assert unsubscribed.json()["Results"] == []
        assert cm.state(summary=True)["clients"][client_id(cm)]["suppressed"] == []

    def test_the_import_refuses_whoever_opted_out_through_the_control(
        self, cm, cm_session, newsletter
    ):
        run_import(cm_session, cm, newsletter, subscribers("a@x.com"))
        cm.consent(["a@x.com"], "unsubscribed", list_id=newsletter)
        cm.consent(["b@x.com"], "bounced", list_id=newsletter)
        plain = run_import(cm_session, cm, newsletter, subscribers("a@x.com", "b@x.com"))
        refused = plain.json()["ResultData"]["FailureDetails"]
        assert [(f["EmailAddress"], f["Code"]) for f in refused] == [
            ("a@x.com", 206),
            ("b@x.com", 207),
        ]
        again = run_import(cm_session, cm, newsletter, subscribers("a@x.com"), resubscribe=True)
        assert again.json()["ResultData"]["FailureDetails"][0]["Code"] == 204  # suppressed
        assert members(cm, newsletter)["a@x.com"]["State"] == "Unsubscribed"

    def test_the_control_says_what_is_wrong(self, cm, newsletter):
        with pytest.raises(FakeControlError, match="state must be one of"):
            cm.consent(["a@x.com"], "cleaned", list_id=newsletter)
        with pytest.raises(FakeControlError, match="no list holds"):
            cm.consent(["nobody@x.com"], "unsubscribed")
        with pytest.raises(FakeControlError, match="ISO 8601"):
            cm.consent(["a@x.com"], "bounced", list_id=newsletter, at="yesterday")


class TestCampaignComplaints:
    def test_sent_campaigns_are_paged_newest_first_and_filtered_by_sent_day(self, cm, cm_session):
        client = client_id(cm)
        cm.seed(
            accounts=[
                {
                    "id": "demo",
                    "clients": [
                        {
                            "id": client,
                            "campaigns": [
                                {"id": f"c{n:02d}", "name": f"News {n}", "sent_at": sent}
                                for n, sent in enumerate(
                                    [f"2026-05-{day:02d}T09:00:30" for day in range(1, 13)]
                                )
                            ]
                            + [{"id": "tagged", "sent_at": "2026-05-20T10:00:00", "tags": ["VIP"]}],
                        }
                    ],
                }
            ]
        )
        url = f"{cm.base_url}/clients/{client}/campaigns.json"
        newest = cm_session.get(url, params={"pagesize": 10}).json()
        assert [c["CampaignID"] for c in newest["Results"][:2]] == ["tagged", "c11"]
        assert (newest["ResultsOrderedBy"], newest["OrderDirection"]) == ("SentDate", "desc")
        assert (newest["TotalNumberOfRecords"], newest["NumberOfPages"]) == (13, 2)
        first = newest["Results"][1]
        assert (first["Name"], first["SentDate"]) == ("News 11", "2026-05-12 09:00:00")
        assert {"WebVersionURL", "Subject", "FromEmail", "TotalRecipients"} <= set(first)
        window = {"sentfromdate": "2026-05-11", "senttodate": "2026-05-12"}
        oldest = cm_session.get(url, params={**window, "orderdirection": "asc"}).json()
        assert [c["CampaignID"] for c in oldest["Results"]] == ["c10", "c11"]
        tagged = cm_session.get(url, params={"tags": "vip"}).json()["Results"]
        assert [(c["CampaignID"], c["Tags"]) for c in tagged] == [("tagged", ["VIP"])]
        refused = cm_session.get(url, params={"pagesize": 5})
        assert (refused.status_code, refused.json()["Code"]) == (400, 801)

    def test_a_complaint_is_listed_by_its_campaign_with_the_list_oldest_first_in_pages(
        self, cm, cm_session, newsletter
    ):
        emails = [f"s{n:02d}@x.com" for n in range(12)]
        made = cm.consent(
            emails, "complained", list_id=newsletter, campaign_id="Spring", at="2026-05-02T08:00:31"
        )
        cm.consent(
            ["late@x.com"], "complained", list_id=newsletter, campaign_id="spring", at="2026-05-04"
        )
        assert made["campaigns"] == ["spring"]
        url = f"{cm.base_url}/campaigns/spring/spam.json"
        first = cm_session.get(url, params={"pagesize": 10}).json()
        assert (first["ResultsOrderedBy"], first["OrderDirection"]) == ("date", "asc")
        assert (first["TotalNumberOfRecords"], first["NumberOfPages"]) == (13, 2)
        assert first["Results"][0] == {
            "EmailAddress": "s00@x.com",
            "ListID": newsletter,
            "Date": "2026-05-02 08:00:00",
        }
        second = cm_session.get(url, params={"pagesize": 10, "page": 2}).json()
        assert [r["EmailAddress"] for r in second["Results"]] == [
            "s10@x.com",
            "s11@x.com",
            "late@x.com",
        ]
        since = cm_session.get(url, params={"date": "2026-05-03"}).json()["Results"]
        assert [r["EmailAddress"] for r in since] == ["late@x.com"]
        # The complainer is also unsubscribed and suppressed, as before.
        assert members(cm, newsletter)["late@x.com"]["State"] == "Unsubscribed"
        listed = cm_session.get(f"{cm.base_url}/clients/{client_id(cm)}/campaigns.json").json()
        assert [(c["CampaignID"], c["SentDate"]) for c in listed["Results"]] == [
            ("spring", "2026-05-02 08:00:00")
        ]

    def test_complaints_without_a_campaign_make_one_per_call(self, cm, cm_session, newsletter):
        one = cm.consent(["a@x.com", "b@x.com"], "complained", list_id=newsletter)["campaigns"]
        two = cm.consent(["c@x.com"], "complained", list_id=newsletter)["campaigns"]
        assert len(one) == len(two) == 1 and one != two
        spam = cm_session.get(f"{cm.base_url}/campaigns/{one[0]}/spam.json").json()
        assert [r["EmailAddress"] for r in spam["Results"]] == ["a@x.com", "b@x.com"]

    def test_a_campaign_of_another_account_or_none_is_code_301(self, cm, cm_session, newsletter):
        cm.seed(
            accounts=[
                {"id": "other", "clients": [{"id": "elsewhere", "campaigns": [{"id": "theirs"}]}]}
            ]
        )
        for campaign in ("theirs", "nothing"):
            refused = cm_session.get(f"{cm.base_url}/campaigns/{campaign}/spam.json")
            assert refused.status_code == 400
            assert refused.json() == {"Code": 301, "Message": "Invalid CampaignID"}
        with pytest.raises(FakeControlError, match="another client"):
            cm.consent(["a@x.com"], "complained", list_id=newsletter, campaign_id="theirs")

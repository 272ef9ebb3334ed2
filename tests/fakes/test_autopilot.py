"""The Autopilot fake against its contract (/work/shared/spec/autopilot_api.md)."""

from __future__ import annotations

import pytest
import requests

from fakes.testing import FakeControlError, RunningFake, running_fake

KEY = "demo-autopilot-key"


def lists_by_title(session: requests.Session, ap: RunningFake) -> dict[str, str]:
    return {
        entry["title"]: entry["list_id"]
        for entry in session.get(f"{ap.base_url}/lists").json()["lists"]
    }


@pytest.fixture
def newsletter(ap, ap_session) -> str:
    return lists_by_title(ap_session, ap)["Newsletter"]


def demo_account(ap: RunningFake, **query) -> dict:
    return next(a for a in ap.state(**query)["accounts"] if a["id"] == "demo")


def upsert_many(session, ap, contacts) -> requests.Response:
    return session.post(f"{ap.base_url}/contacts", json={"contacts": contacts})


class TestAuthentication:
    def test_a_missing_key_is_400(self, ap):
        response = requests.get(f"{ap.base_url}/lists")
        assert response.status_code == 400
        assert response.json() == {
            "error": "Bad Request",
            "message": "No autopilotapikey header provided.",
        }

    def test_a_wrong_key_is_401(self, ap):
        response = requests.get(f"{ap.base_url}/lists", headers={"autopilotapikey": "nope"})
        assert response.status_code == 401
        assert response.json() == {
            "error": "Unauthorized",
            "message": "Provided autopilotapikey not valid.",
        }

    def test_auth_comes_before_routing(self, ap):
        assert requests.get(f"{ap.base_url}/no/such/path").status_code == 400

    def test_a_revoked_key_is_401(self, ap, ap_session):
        ap.revoke(api_key=KEY)
        assert ap_session.get(f"{ap.base_url}/lists").status_code == 401

    def test_several_keys_can_be_configured(self):
        with running_fake("autopilot", api_keys=["one", "two"], rate_limit=0) as ap:
            for key in ("one", "two"):
                assert requests.get(f"{ap.base_url}/lists", headers={"autopilotapikey": key}).ok


class TestLists:
    def test_the_demo_lists(self, ap, ap_session):
        lists = ap_session.get(f"{ap.base_url}/lists").json()["lists"]
        assert [entry["title"] for entry in lists] == ["Newsletter", "Customers"]
        assert all(entry["list_id"].startswith("contactlist_") for entry in lists)

    def test_creating_a_list(self, ap, ap_session):
        response = ap_session.post(f"{ap.base_url}/list", json={"name": "Segment X"})
        assert response.status_code == 200
        list_id = response.json()["list_id"]
        assert list_id.startswith("contactlist_")
        assert lists_by_title(ap_session, ap)["Segment X"] == list_id

    def test_membership_get_post_delete(self, ap, ap_session, newsletter):
        contact_id = ap_session.post(
            f"{ap.base_url}/contact", json={"contact": {"Email": "a@x.com"}}
        ).json()["contact_id"]
        member_url = f"{ap.base_url}/list/{newsletter}/contact/{contact_id}"
        assert ap_session.get(member_url).status_code == 404
        added = ap_session.post(member_url)
        assert (added.status_code, added.content) == (200, b"")
        assert ap_session.post(member_url).json() == {"not_modified": True}
        assert ap_session.get(member_url).status_code == 200
        assert ap_session.get(f"{ap.base_url}/list/{newsletter}/contact/a@x.com").status_code == 200
        assert ap_session.delete(member_url).status_code == 200
        assert ap_session.delete(member_url).json() == {"not_modified": True}
        assert ap_session.get(member_url).status_code == 404

    def test_membership_of_unknown_list_or_contact_is_404(self, ap, ap_session, newsletter):
        ap_session.post(f"{ap.base_url}/contact", json={"contact": {"Email": "a@x.com"}})
        unknown_list = ap_session.post(f"{ap.base_url}/list/contactlist_NOPE/contact/a@x.com")
        assert unknown_list.status_code == 404
        assert unknown_list.json() == {"error": "Not Found", "message": "List could not be found."}
        unknown_contact = ap_session.post(f"{ap.base_url}/list/{newsletter}/contact/who@x.com")
        assert unknown_contact.json() == {
            "error": "Not Found",
            "message": "Contact could not be found.",
        }


class TestContacts:
    def test_upserting_one_contact(self, ap, ap_session):
        response = ap_session.post(
            f"{ap.base_url}/contact", json={"contact": {"Email": "a@x.com", "FirstName": "Ann"}}
        )
        assert response.status_code == 200
        contact_id = response.json()["contact_id"]
        assert contact_id.startswith("person_")
        again = ap_session.post(
            f"{ap.base_url}/contact", json={"contact": {"Email": "A@X.com", "LastName": "Lee"}}
        )
        assert again.json()["contact_id"] == contact_id
        contact = ap_session.get(f"{ap.base_url}/contact/{contact_id}").json()
        assert (contact["FirstName"], contact["LastName"], contact["Email"]) == (
            "Ann",
            "Lee",
            "A@X.com",
        )
        assert ap_session.get(f"{ap.base_url}/contact/a@x.com").json()["contact_id"] == contact_id

    def test_an_unknown_contact_is_404(self, ap, ap_session):
        response = ap_session.get(f"{ap.base_url}/contact/who@x.com")
        assert response.status_code == 404
        assert response.json() == {"error": "Not Found", "message": "Contact could not be found."}

    def test_bulk_upsert_of_100_contacts(self, ap, ap_session):
        contacts = [{"Email": f"u{i}@x.com"} for i in range(100)]
        response = upsert_many(ap_session, ap, contacts)
        assert response.status_code == 200
        body = response.json()
        assert len(body["contact_ids"]) == 100
        assert set(body["email_contact_map"]) == {c["Email"] for c in contacts}
        assert body["email_contact_map"]["u0@x.com"] == body["contact_ids"][0]

    def test_more_than_100_contacts_is_400_and_writes_nothing(self, ap, ap_session):
        response = upsert_many(ap_session, ap, [{"Email": f"u{i}@x.com"} for i in range(101)])
        assert response.status_code == 400
        assert response.json()["error"] == "Bad Request"
        assert demo_account(ap)["counts"]["contacts"] == 0

    def test_autopilot_list_adds_the_contact_to_the_list(self, ap, ap_session, newsletter):
        upsert_many(
            ap_session,
            ap,
            [{"Email": "a@x.com", "_autopilot_list": newsletter}, {"Email": "b@x.com"}],
        )
        members = demo_account(ap)["lists"][newsletter]["members"]
        assert set(members) == {"a@x.com"}
        assert members["a@x.com"]["lists"] == [newsletter]

    def test_an_unknown_autopilot_list_is_404_and_writes_nothing(self, ap, ap_session):
        response = upsert_many(
            ap_session,
            ap,
            [{"Email": "a@x.com"}, {"Email": "b@x.com", "_autopilot_list": "contactlist_NOPE"}],
        )
        assert response.status_code == 404
        assert response.json() == {"error": "Not Found", "message": "List could not be found."}
        assert demo_account(ap)["counts"]["contacts"] == 0

    def test_custom_fields_use_type_dash_dash_name_keys(self, ap, ap_session):
        ap_session.post(
            f"{ap.base_url}/contact",
            json={
                "contact": {
                    "Email": "a@x.com",
                    "custom": {"string--Test--Field": "hi", "integer--Age": 42},
                }
            },
        )
        contact = ap_session.get(f"{ap.base_url}/contact/a@x.com").json()
        assert contact["custom_fields"] == [
            {"kind": "Test Field", "value": "hi", "fieldType": "string", "deleted": False},
            {"kind": "Age", "value": 42, "fieldType": "integer", "deleted": False},
        ]
        assert demo_account(ap)["contacts"]["a@x.com"]["custom"] == {
            "string--Test--Field": "hi",
            "integer--Age": 42,
        }
        fields = ap_session.get(f"{ap.base_url}/contacts/custom_fields").json()
        assert {"name": "Test Field", "fieldType": "string"} in fields

    def test_a_custom_field_without_a_known_type_is_400(self, ap, ap_session):
        response = ap_session.post(
            f"{ap.base_url}/contact", json={"contact": {"Email": "a@x.com", "custom": {"Age": 3}}}
        )
        assert response.status_code == 400
        assert demo_account(ap)["counts"]["contacts"] == 0

    def test_new_email_changes_the_address(self, ap, ap_session):
        ap_session.post(f"{ap.base_url}/contact", json={"contact": {"Email": "old@x.com"}})
        ap_session.post(
            f"{ap.base_url}/contact",
            json={"contact": {"Email": "old@x.com", "_NewEmail": "new@x.com"}},
        )
        assert ap_session.get(f"{ap.base_url}/contact/new@x.com").ok
        assert ap_session.get(f"{ap.base_url}/contact/old@x.com").status_code == 404

    def test_delete_removes_the_contact_everywhere(self, ap, ap_session, newsletter):
        upsert_many(ap_session, ap, [{"Email": "a@x.com", "_autopilot_list": newsletter}])
        response = ap_session.delete(f"{ap.base_url}/contact/a@x.com")
        assert response.status_code == 200
        assert ap_session.get(f"{ap.base_url}/contact/a@x.com").status_code == 404
        assert demo_account(ap)["lists"][newsletter]["count"] == 0

    def test_unsubscribe_flags_the_contact(self, ap, ap_session):
        ap_session.post(f"{ap.base_url}/contact", json={"contact": {"Email": "a@x.com"}})
        assert ap_session.post(f"{ap.base_url}/contact/a@x.com/unsubscribe").status_code == 200
        assert ap_session.get(f"{ap.base_url}/contact/a@x.com").json()["unsubscribed"] is True
        assert demo_account(ap)["contacts"]["a@x.com"]["unsubscribed"] is True

    def test_a_deleted_list_is_not_found_and_an_upsert_naming_it_writes_nothing(
        self, ap, ap_session, newsletter
    ):
        assert ap.delete_list(newsletter) == {"deleted": newsletter}
        assert "Newsletter" not in lists_by_title(ap_session, ap)
        response = upsert_many(
            ap_session, ap, [{"Email": "a@x.com", "_autopilot_list": newsletter}]
        )
        assert response.status_code == 404
        assert response.json() == {"error": "Not Found", "message": "List could not be found."}
        assert demo_account(ap)["counts"]["contacts"] == 0
        assert ap_session.get(f"{ap.base_url}/list/{newsletter}/contacts").status_code == 404


class TestPaging:
    def test_contacts_come_100_a_page_and_the_last_page_has_no_bookmark(self, ap, ap_session):
        for start in (0, 100, 200):
            upsert_many(
                ap_session,
                ap,
                [{"Email": f"u{i:03d}@x.com"} for i in range(start, min(start + 100, 250))],
            )
        seen, url, pages = [], f"{ap.base_url}/contacts", []
        while True:
            page = ap_session.get(url).json()
            pages.append(page)
            seen += [c["Email"] for c in page["contacts"]]
            if "bookmark" not in page:
                break
            url = f"{ap.base_url}/contacts/{page['bookmark']}"
        assert [len(p["contacts"]) for p in pages] == [100, 100, 50]
        assert all(p["total_contacts"] == 250 for p in pages)
        assert seen == [f"u{i:03d}@x.com" for i in range(250)]

    def test_list_contacts_page_the_same_way(self, ap, ap_session, newsletter):
        for start in (0, 100):
            upsert_many(
                ap_session,
                ap,
                [
                    {"Email": f"u{i}@x.com", "_autopilot_list": newsletter}
                    for i in range(start, start + 100)
                ],
            )
        upsert_many(ap_session, ap, [{"Email": "outsider@x.com"}])
        first = ap_session.get(f"{ap.base_url}/list/{newsletter}/contacts").json()
        assert len(first["contacts"]) == 100 and first["total_contacts"] == 200
        second = ap_session.get(
            f"{ap.base_url}/list/{newsletter}/contacts/{first['bookmark']}"
        ).json()
        assert len(second["contacts"]) == 100
        assert "bookmark" not in second

    def test_an_exact_single_page_has_no_bookmark(self, ap, ap_session):
        upsert_many(ap_session, ap, [{"Email": f"u{i}@x.com"} for i in range(100)])
        assert "bookmark" not in ap_session.get(f"{ap.base_url}/contacts").json()


class TestRateLimit:
    def test_the_default_is_5_requests_a_second_per_key(self):
        with running_fake("autopilot") as ap:
            session = requests.Session()
            session.headers["autopilotapikey"] = KEY
            responses = [session.get(f"{ap.base_url}/lists") for _ in range(10)]
            # A full bucket serves 5 at once; then one request per 200 ms gets through.
            assert [r.status_code for r in responses[:6]] == [200] * 5 + [429]
            assert responses[5].json() == {
                "error": "Too Many Requests",
                "message": "You have exceeded your request rate of 5 r/s.",
            }
            assert "Retry-After" not in responses[5].headers
            served_429 = sum(r.status_code == 429 for r in responses)
            assert ap.state(summary=True)["stats"]["served_429"] == served_429

    def test_the_rate_is_configurable_and_retry_after_optional(self):
        with running_fake("autopilot", rate_limit=2, retry_after=True) as ap:
            session = requests.Session()
            session.headers["autopilotapikey"] = KEY
            responses = [session.get(f"{ap.base_url}/lists") for _ in range(3)]
            assert [r.status_code for r in responses] == [200, 200, 429]
            assert (
                responses[-1].json()["message"] == "You have exceeded your request rate of 2 r/s."
            )
            assert int(responses[-1].headers["Retry-After"]) >= 1


class TestErrorShapes:
    def test_restify_style_errors(self):
        with running_fake("autopilot", error_style="restify", rate_limit=0) as ap:
            response = requests.get(
                f"{ap.base_url}/contact/who@x.com", headers={"autopilotapikey": KEY}
            )
            assert response.json() == {
                "code": "NotFoundError",
                "message": "Contact could not be found.",
            }

    def test_a_wrong_method_is_a_restify_405(self, ap, ap_session):
        response = ap_session.put(f"{ap.base_url}/contact/a@x.com", json={})
        assert response.status_code == 405
        assert response.json() == {"code": "MethodNotAllowedError", "message": "PUT is not allowed"}

    def test_state_can_be_narrowed_to_one_list(self, ap, ap_session, newsletter):
        upsert_many(ap_session, ap, [{"Email": "a@x.com", "_autopilot_list": newsletter}])
        account = demo_account(ap, list=newsletter)
        assert list(account["lists"]) == [newsletter] and "contacts" not in account
        assert "members" not in demo_account(ap, summary=True)["lists"][newsletter]


class TestCustomFieldValues:
    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("string--Plan", 12),
            ("integer--Visits", 1.5),
            ("integer--Visits", True),
            ("float--Score", "1.5"),
            ("boolean--Vip", "yes"),
            ("date--Renewal", "09/03/2027"),
            ("string--" + "N" * 101, "x"),
        ],
    )
    def test_a_value_of_the_wrong_type_refuses_the_request(self, ap, ap_session, key, value):
        contacts = [{"Email": "good@x.com"}, {"Email": "bad@x.com", "custom": {key: value}}]
        assert upsert_many(ap_session, ap, contacts).status_code == 400
        assert demo_account(ap)["counts"]["contacts"] == 0

    def test_typed_values_are_kept_and_null_clears(self, ap, ap_session):
        custom = {
            "string--Plan": "Pro",
            "integer--Visits": 3,
            "float--Score": 2.5,
            "boolean--Vip": True,
            "date--Renewal": "2027-03-09T00:00:00.000Z",
        }
        assert upsert_many(ap_session, ap, [{"Email": "a@x.com", "custom": custom}]).ok
        upsert_many(ap_session, ap, [{"Email": "a@x.com", "custom": {"string--Plan": None}}])
        stored = demo_account(ap)["contacts"]["a@x.com"]["custom"]
        assert stored == {k: v for k, v in custom.items() if k != "string--Plan"}
        names = {f["name"] for f in ap_session.get(f"{ap.base_url}/contacts/custom_fields").json()}
        assert {"Plan", "Visits", "Score", "Vip", "Renewal"} <= names

    def test_an_account_holds_at_most_200_custom_fields(self, ap, ap_session):
        custom = {f"string--F{n}": "x" for n in range(200)}
        assert upsert_many(ap_session, ap, [{"Email": "a@x.com", "custom": custom}]).ok
        more = [{"Email": "a@x.com", "custom": {"string--One--more": "x"}}]
        assert upsert_many(ap_session, ap, more).status_code == 400


class TestConsentReadBack:
    """§8: no "since" endpoint; contacts carry the unsubscribe flag and delivery events."""

    def test_a_contact_is_unsubscribed_only_when_it_says_so(self, ap, ap_session):
        upsert_many(ap_session, ap, [{"Email": "stays@x.com"}])
        ap.consent(["out@x.com"], "unsubscribed", at="2026-05-01T10:00:00Z")
        contacts = {
            c["Email"]: c for c in ap_session.get(f"{ap.base_url}/contacts").json()["contacts"]
        }
        assert "unsubscribed" not in contacts["stays@x.com"]
        assert not any(key.startswith("mail_") for key in contacts["stays@x.com"])
        out = contacts["out@x.com"]
        assert out["unsubscribed"] is True
        assert out["updated_at"] == "2026-05-01T10:00:00.000Z"
        [(delivery, stamp)] = out["mail_unsubscribed"].items()
        assert delivery.startswith("batchdelivery_") and stamp == 1777629600000

    def test_bounces_and_complaints_are_delivery_events_without_the_flag(
        self, ap, ap_session, newsletter
    ):
        ap.consent(["b@x.com"], "bounced", list_id=newsletter, at="2026-05-01T00:00:00")
        ap.consent(["b@x.com"], "complained", at="2026-05-02T00:00:00+02:00")
        contact = ap_session.get(f"{ap.base_url}/contact/b@x.com").json()
        assert "unsubscribed" not in contact
        assert list(contact["mail_hardbounced"].values()) == [1777593600000]
        assert list(contact["mail_complained"].values()) == [1777672800000]
        assert contact["lists"] == [newsletter]

    def test_the_control_says_what_is_wrong(self, ap):
        with pytest.raises(FakeControlError, match="state must be one of"):
            ap.consent(["a@x.com"], "suppressed")
        with pytest.raises(FakeControlError, match="no list"):
            ap.consent(["a@x.com"], "bounced", list_id="contactlist_nope")

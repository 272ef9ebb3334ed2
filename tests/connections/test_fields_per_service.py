"""What each service does with fields, status and consent beyond the shared contract: its own
field types (made at the fake as an administrator would), Mailchimp's double opt-in, Campaign
Monitor's ConsentToTrack and Ortto's email permission, against each type's fake."""

from __future__ import annotations

from datetime import date

import pytest

from connections.types.base import (
    DestinationField,
    FieldType,
    Permanent,
    Record,
    SendOptions,
)
from tests.connections import test_backend_contract as contract

# The contract's classes are used through the module: imported by name they would run again.
BackendContract = contract.BackendContract
CampaignMonitor = contract.TestCampaignMonitorBackend
Mailchimp = contract.TestMailchimpBackendWithAnApiKey
Ortto = contract.TestOrttoBackend
Autopilot = contract.TestAutopilotBackend

pytestmark = pytest.mark.django_db


class TestCampaignMonitor:
    fake = CampaignMonitor.fake
    backend = CampaignMonitor.backend
    destination = BackendContract.destination
    subscriber = staticmethod(CampaignMonitor.subscriber)

    def test_consent_to_track_is_given_to_new_people_only(self, fake, backend, destination):
        backend.prepare(destination, [], SendOptions(consent_to_track=False))
        first = [Record("known@example.com", new_to_list=True), Record("quiet@example.com")]
        backend.push(destination, first)
        backend.prepare(destination, [], SendOptions(consent_to_track=True))
        # known@ was sent before (no longer new); new@ is new; late@ has no sync state but
        # someone else put it in the list meanwhile: the export's consent is what it gets.
        backend.client.import_subscribers(
            destination, [{"EmailAddress": "late@example.com", "ConsentToTrack": "No"}]
        )
        backend.push(
            destination,
            [
                Record("known@example.com"),
                Record("new@example.com", new_to_list=True),
                Record("late@example.com", new_to_list=True),
                Record("no@example.com", consent=False, new_to_list=True),
            ],
        )
        consent = {
            email: self.subscriber(fake, destination, email)["ConsentToTrack"]
            for email in (
                "known@example.com",
                "quiet@example.com",
                "new@example.com",
                "late@example.com",
                "no@example.com",
            )
        }
        assert consent == {
            "known@example.com": "No",  # sent "No" when new, then "Unchanged"
            "quiet@example.com": "No",  # "Unchanged" on a brand-new subscriber: stored as No
            "new@example.com": "Yes",
            "late@example.com": "Yes",
            "no@example.com": "No",
        }
        calls = fake.state(summary=True)["stats"]["requests_by_endpoint"]
        assert "GET /subscribers/{listid}.json" not in calls  # nobody's state was read

    def test_an_existing_subscriber_keeps_the_consent_it_has(self, fake, backend, destination):
        backend.prepare(destination, [], SendOptions(consent_to_track=True))
        backend.push(destination, [Record("kept@example.com", new_to_list=True)])
        backend.client.import_subscribers(
            destination, [{"EmailAddress": "kept@example.com", "ConsentToTrack": "No"}]
        )
        backend.push(destination, [Record("kept@example.com", "Kept", consent=True)])
        subscriber = self.subscriber(fake, destination, "kept@example.com")
        assert (subscriber["Name"], subscriber["ConsentToTrack"]) == ("Kept", "No")

    def test_without_consent_from_the_export_new_people_get_no(self, fake, backend, destination):
        backend.push(destination, [Record("plain@example.com", new_to_list=True)])
        assert self.subscriber(fake, destination, "plain@example.com")["ConsentToTrack"] == "No"

    def test_country_and_us_state_fields_take_the_names_campaign_monitor_lists(
        self, fake, backend, destination
    ):
        country = backend.create_field(destination, "Country", FieldType.COUNTRY)
        backend.client.create_custom_field(destination, "State", data_type="USState")
        state = next(f for f in backend.list_fields(destination) if f.name == "State")
        assert "France" in country.options and "Ohio" in state.options
        backend.prepare(destination, [country, state])
        result = backend.push(
            destination,
            [Record("placed@example.com", fields={country.key: "france", state.key: "OHIO"})],
        )
        assert (result.accepted, result.failures) == (1, [])
        stored = self.subscriber(fake, destination, "placed@example.com")["CustomFields"]
        assert (stored[country.key], stored[state.key]) == ("France", "Ohio")

    def test_a_list_takes_at_most_fifty_custom_fields(self, backend, destination):
        for n in range(50):
            backend.client.create_custom_field(destination, f"Field {n}")
        with pytest.raises(Permanent):
            backend.create_field(destination, "One more", FieldType.TEXT)


class TestMailchimp:
    fake = Mailchimp.fake
    backend = Mailchimp.backend
    destination = BackendContract.destination
    member = staticmethod(Mailchimp.member)

    def test_pending_makes_mailchimp_ask_new_people_and_leaves_members_as_they_are(
        self, fake, backend, destination
    ):
        backend.push(destination, [Record("member@example.com")])  # subscribed
        backend.prepare(destination, [], SendOptions(new_subscriber_status="pending"))
        backend.push(destination, [Record("asked@example.com")])
        result = backend.push(
            destination,
            [
                Record("member@example.com", "Mia"),
                Record("asked@example.com", "Ask"),
                Record("fresh@example.com"),
            ],
        )
        assert (result.accepted, result.failures) == (3, [])
        statuses = {
            email: self.member(fake, destination, email)["status"]
            for email in ("member@example.com", "asked@example.com", "fresh@example.com")
        }
        assert statuses == {
            "member@example.com": "subscribed",
            "asked@example.com": "pending",
            "fresh@example.com": "pending",
        }
        assert self.member(fake, destination, "asked@example.com")["merge_fields"]["FNAME"] == (
            "Ask"
        )

    def test_birthday_and_radio_fields_made_at_mailchimp_take_their_formats(
        self, fake, backend, destination
    ):
        backend.client.create_merge_field(destination, "Birthday", "birthday")
        backend.client.create_merge_field(destination, "Colour", "radio", ["Red", "Blue"])
        fields = {f.name: f for f in backend.list_fields(destination)}
        backend.prepare(destination, [fields["Birthday"], fields["Colour"]])
        values = {fields["Birthday"].key: date(1990, 12, 24), fields["Colour"].key: "blue"}
        result = backend.push(destination, [Record("typed@example.com", fields=values)])
        assert (result.accepted, result.failures) == (1, [])
        stored = self.member(fake, destination, "typed@example.com")["merge_fields"]
        assert (stored[fields["Birthday"].key], stored[fields["Colour"].key]) == ("12/24", "Blue")

    def test_an_audience_takes_at_most_thirty_merge_fields(self, backend, destination):
        for n in range(30 - 4):  # the audience has FNAME, LNAME, ADDRESS and PHONE
            backend.client.create_merge_field(destination, f"Field {n}", "text")
        with pytest.raises(Permanent):
            backend.create_field(destination, "One more", FieldType.TEXT)


class TestOrtto:
    fake = Ortto.fake
    backend = Ortto.backend
    destination = BackendContract.destination
    person = staticmethod(Ortto.person)

    def test_email_permission_is_set_for_new_people_only(self, fake, backend, destination):
        backend.push(destination, [Record("plain@example.com")])
        backend.client.merge([{"str::email": "off@example.com", "bol::p": False}])
        backend.prepare(destination, [], SendOptions(consent_to_track=True))
        backend.push(
            destination,
            [
                Record("off@example.com"),
                Record("yes@example.com"),
                Record("no@x.example", consent=False),
            ],
        )
        permission = {
            email: self.person(fake, email)["fields"].get("bol::p")
            for email in ("plain@example.com", "off@example.com", "yes@example.com", "no@x.example")
        }
        assert permission == {
            "plain@example.com": False,  # the export gave none: not Ortto's default yes
            "off@example.com": False,  # existing: never given by us
            "yes@example.com": True,
            "no@x.example": False,
        }

    def test_integer_and_large_text_fields_made_in_ortto(self, fake, backend, destination):
        backend.client.create_custom_field("Visits", "integer")
        backend.client.create_custom_field("Notes", "large_text")
        fields = {f.name: f for f in backend.list_fields(destination)}
        visits, notes = fields["Visits"], fields["Notes"]
        assert (notes.max_length, visits.type) == (4000, FieldType.NUMBER)
        backend.prepare(destination, [visits, notes])
        result = backend.push(
            destination,
            [
                Record("typed@example.com", fields={visits.key: "7", notes.key: "y" * 300}),
                Record("half@example.com", fields={visits.key: 7.5}),
            ],
        )
        assert [(f.email, f.code) for f in result.failures] == [
            ("half@example.com", "invalid_value")
        ]
        stored = self.person(fake, "typed@example.com")["fields"]
        assert (stored[visits.key], stored[notes.key]) == (7, "y" * 300)


class TestAutopilot:
    fake = Autopilot.fake
    backend = Autopilot.backend
    destination = BackendContract.destination
    contact = staticmethod(Autopilot.contact)

    def test_a_created_field_appears_once_a_value_was_sent(self, fake, backend, destination):
        field = backend.create_field(destination, "Has  app", FieldType.BOOLEAN)
        assert field.key == "boolean--Has--app"
        assert field.key not in {f.key for f in backend.list_fields(destination)}
        backend.prepare(destination, [field])
        backend.push(destination, [Record("app@example.com", fields={field.key: "yes"})])
        assert field.key in {f.key for f in backend.list_fields(destination)}
        assert self.contact(fake, "app@example.com")["custom"] == {field.key: True}

    def test_an_integer_field_takes_whole_numbers(self, fake, backend, destination):
        visits = DestinationField("integer--Visits", "Visits", FieldType.NUMBER)
        backend.prepare(destination, [visits])
        result = backend.push(
            destination,
            [
                Record("whole@example.com", fields={visits.key: "12"}),
                Record("half@example.com", fields={visits.key: 1.5}),
            ],
        )
        assert [(f.email, f.code) for f in result.failures] == [
            ("half@example.com", "invalid_value")
        ]
        assert self.contact(fake, "whole@example.com")["custom"] == {visits.key: 12}

    def test_unsubscribed_false_is_never_sent(self, fake, backend, destination):
        backend.push(destination, [Record("gone@example.com")])
        backend.client._api("POST", "contact/gone@example.com/unsubscribe")
        backend.push(destination, [Record("gone@example.com", "Back")])
        assert self.contact(fake, "gone@example.com")["unsubscribed"] is True

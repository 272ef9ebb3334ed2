"""Messages stored by a worker are read in each reader's language (``config.translation``)."""

from __future__ import annotations

import pytest
from django.utils import translation

from config.translation import LaterText, from_stored, gettext_later, shown, stored
from connections.types.base import Transient
from exports import messages
from exports.selectors import failure_reason

UNREACHABLE = gettext_later(
    "%(service)s could not be reached: %(reason)s. Try again in a few minutes."
)


def test_a_message_is_translated_when_it_is_read_not_when_it_is_made():
    message = UNREACHABLE % {
        "service": "Autopilot",
        "reason": gettext_later("the connection failed"),
    }

    with translation.override("en"):
        assert str(message) == (
            "Autopilot could not be reached: the connection failed. Try again in a few minutes."
        )
    with translation.override("nb"):
        assert str(message) == (
            "Kunne ikke nå Autopilot: tilkoblingen mislyktes. Prøv på nytt om noen minutter."
        )


def test_a_stored_message_keeps_its_nested_parameters():
    message = messages.for_error(
        Transient(UNREACHABLE % {"service": "Autopilot", "reason": gettext_later("x")})
    )

    text = stored(message)

    assert from_stored(text) == message
    with translation.override("nb"):
        assert shown(text).startswith("Tjenesten kunne ikke nås eller feilet gjentatte ganger:")
        assert "Kunne ikke nå Autopilot" in shown(text)


@pytest.mark.parametrize(
    "text",
    ["", "The list was deleted.", '{"msgid": broken', '{"msgid": "Plain", "params": null}'],
)
def test_plain_and_unreadable_text_is_shown_as_it_is(text):
    expected = "Plain" if text.startswith('{"msgid": "Plain"') else text
    assert shown(text) == expected


def test_values_that_are_not_json_are_stored_as_text():
    class When:
        def __str__(self) -> str:
            return "today"

    message = LaterText("%(when)s") % {"when": When()}

    assert from_stored(stored(message)) == LaterText("%(when)s", {"when": "today"})


def test_a_refusal_our_client_put_in_words_reads_in_the_readers_language():
    refused = gettext_later("Campaign Monitor refused the request (code %(code)s): %(message)s")
    reason = stored(refused % {"code": 1, "message": "Invalid Email Address"})

    with translation.override("nb"):
        shown_reason = failure_reason("1", reason, skipped=False)
        service_words = failure_reason("1", "Invalid Email Address", skipped=False)

    assert shown_reason == "Campaign Monitor avviste forespørselen (kode 1): Invalid Email Address"
    assert service_words == "Invalid Email Address"

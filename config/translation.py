"""Messages that are stored now and read later, each time in the reader's language.

``gettext`` translates at once into the active language. A worker's active language is the
server's default, and a run's error is read later by people who chose other languages. A
message made with ``gettext_later`` keeps its message id and parameters instead:

- ``stored(message)`` turns it into text for a database field (a small JSON object);
- ``shown(text)`` (also a template filter) translates such text for whoever reads it. Any other
  text, such as a message stored before this existed, is shown as it is.

Import ``gettext_later`` as ``_``, so that ``makemessages`` finds the strings. ``str()`` of a
message translates it into the active language, so it can go wherever text goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext

_STORED_PREFIX = '{"msgid": '
_SCALARS = (str, int, float, bool, type(None))


class LaterText:
    """A message id and its parameters, translated each time it is turned into text."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, params: Mapping[str, Any] | None = None):
        self.msgid = msgid
        self.params = dict(params) if params is not None else None

    def __mod__(self, params: Mapping[str, Any]) -> LaterText:
        return LaterText(self.msgid, params)

    def __str__(self) -> str:
        text = gettext(self.msgid)
        if self.params is None:
            return text
        return text % {
            name: str(value) if isinstance(value, LaterText) else value
            for name, value in self.params.items()
        }

    def __repr__(self) -> str:
        return f"LaterText({self.msgid!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LaterText):
            return NotImplemented
        return (self.msgid, self.params) == (other.msgid, other.params)

    def __hash__(self) -> int:
        return hash(self.msgid)

    def __contains__(self, text: str) -> bool:
        return text in str(self)

    def as_json(self) -> dict[str, Any]:
        params = None
        if self.params is not None:
            params = {
                name: value.as_json()
                if isinstance(value, LaterText)
                else value
                if isinstance(value, _SCALARS)
                else str(value)
                for name, value in self.params.items()
            }
        return {"msgid": self.msgid, "params": params}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LaterText:
        params = data.get("params")
        if params is not None:
            params = {
                name: cls.from_json(value) if isinstance(value, Mapping) else value
                for name, value in params.items()
            }
        return cls(str(data["msgid"]), params)


def gettext_later(msgid: str) -> LaterText:
    return LaterText(msgid)


def stored(message: LaterText | str) -> str:
    """Text for a database field: a message kept translatable, or text as it is."""
    if isinstance(message, LaterText):
        return json.dumps(message.as_json(), ensure_ascii=False)
    return str(message)


def from_stored(text: str) -> LaterText | str:
    """The message that ``stored`` wrote, or the text itself when it is plain text."""
    if text.startswith(_STORED_PREFIX):
        try:
            return LaterText.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError):
            return text
    return text


def shown(text: str) -> str:
    """Stored text in the active language."""
    return str(from_stored(text or ""))

"""The API's JSON parser: DRF's, refusing with a 400 what would otherwise fail later as a
server error: nesting deeper than any request needs (Python's parser gives up at about a
thousand levels with a RecursionError), and lone surrogates (``\\ud800`` escapes without their
other half), which have no UTF-8 form and can be neither stored nor shown.

NUL characters are left to the fields, which refuse them each with its own message (a bulk
upsert reports them record by record).
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from config.text import Unstorable, lone_surrogate, unstorable_in

#: No request body needs more: a segment's rules nest groups at most 5 deep (about 12 levels).
MAX_DEPTH = 32


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
            found = Unstorable("", None)
        else:
            found = unstorable_in(data, max_depth=MAX_DEPTH, check=lone_surrogate)
        if found is None:
            return data
        if found.problem is None:
            raise ParseError(
                _("The request body nests lists and objects more than %(depth)d deep.")
                % {"depth": MAX_DEPTH}
            )
        raise ParseError(
            _("The request body holds %(problem)s at %(path)s. Send the text as UTF-8.")
            % {"problem": found.problem, "path": found.path or _("its top level")}
        )

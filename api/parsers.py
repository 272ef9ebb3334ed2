"""The API's JSON parser: DRF's, refusing with a 400 what would otherwise fail later as a
server error: nesting deeper than any request needs (Python's parser gives up at about a
thousand levels with a RecursionError), and lone surrogates (``\\ud800`` escapes without their
other half), which have no UTF-8 form and can be neither stored nor shown.

NUL characters are left to the fields, which refuse them each with its own message (a bulk
upsert reports them record by record).
"""

from __future__ import annotations

import io
import re
from itertools import chain, compress, repeat
from operator import is_, not_

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from config.text import Unstorable, lone_surrogate, unstorable_in

#: No request body needs more: a segment's rules nest groups at most 5 deep (about 12 levels).
MAX_DEPTH = 32


#: A JSON escape of half a character (U+D800..U+DFFF): the only way a lone surrogate gets in.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_CONTAINERS = frozenset({dict, list})
_OBJECTS, _ARRAYS = {dict}, {list}


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            data = None
            found = Unstorable("", None)
        else:
            # Looking at every text of a 10,000-record bulk upsert took two thirds of the call:
            # only a body with a surrogate's escape, or nested too deep, is looked through.
            if _SURROGATE_ESCAPE.search(body) or _nests_deeper_than(data, MAX_DEPTH):
                found = unstorable_in(data, max_depth=MAX_DEPTH, check=lone_surrogate)
            else:
                found = None
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


def _nests_deeper_than(data, max_depth: int) -> bool:
    """Whether lists and objects nest in ``data`` deeper than ``unstorable_in`` allows: level
    by level, C-level per level (no Python step, no path, for each value)."""
    level = [data] if type(data) in _CONTAINERS else []
    depth = 0
    while level:
        if depth >= max_depth:
            return True
        kinds = set(map(type, level))
        if kinds == _OBJECTS:  # the usual level: objects only (a bulk upsert's records)
            values = list(chain.from_iterable(map(dict.values, level)))
        elif kinds == _ARRAYS:
            values = list(chain.from_iterable(level))
        else:
            objects = list(map(is_, map(type, level), repeat(dict)))
            values = list(
                chain(
                    chain.from_iterable(map(dict.values, compress(level, objects))),
                    chain.from_iterable(compress(level, map(not_, objects))),
                )
            )
        if set(map(type, values)).isdisjoint(_CONTAINERS):
            return False
        level = list(compress(values, map(_CONTAINERS.__contains__, map(type, values))))
        depth += 1
    return False

"""Files at an https:// address, downloaded for DuckDB to read where it reads any file.

DuckDB's own ``httpfs`` would fetch its extension from the internet at run time, which a
server without outbound access to DuckDB's site cannot do; so the file is fetched here with
``requests`` (one session: the seam the tests replace), streamed to a temporary file no larger
than ``SOURCE_FILE_MAX_BYTES``, each read waiting at most ``SOURCE_FILE_READ_TIMEOUT_SECONDS``.
Only https:// is fetched (plain http:// only from ``SOURCE_FILE_PLAIN_HTTP_HOSTS``, the tests'
local server), and a redirect must stay on https too. Messages name the host, never the full
address (a pre-signed address carries its signature in the query).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from config.translation import LaterText
from config.translation import gettext_later as _
from sources.kinds.base import SourceError, connect_timeout_seconds

CHUNK_BYTES = 1024 * 1024
session = requests.Session()


def is_address(path: str) -> bool:
    """Whether the source's "file" is an address to download rather than a local path."""
    return "://" in path.strip()[:12]


def address_problem(address: str) -> LaterText | None:
    """Why this address cannot be downloaded (None when it can), in words."""
    parts = urlsplit(address.strip())
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return None
    if scheme == "http" and (parts.hostname or "") in settings.SOURCE_FILE_PLAIN_HTTP_HOSTS:
        return None
    if scheme == "http":
        return _(
            "Use an https:// address: a file sent over plain http:// can be read or "
            "changed on the way."
        )
    return _("Only https:// addresses can be downloaded. Give an https:// address or a path.")


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    host: str


@contextmanager
def downloaded(address: str) -> Iterator[Downloaded]:
    """The file at ``address`` in a temporary file (with the address's file extension, so
    that its format can be told from its name), removed afterwards."""
    problem = address_problem(address)
    if problem is not None:
        raise SourceError(problem)
    host = urlsplit(address).hostname or ""
    suffix = PurePosixPath(urlsplit(address).path).suffix[:10]
    limit = int(settings.SOURCE_FILE_MAX_BYTES)
    with tempfile.TemporaryDirectory(prefix="audience-relay-source-") as folder:
        target = Path(folder) / f"download{suffix}"
        size = _fetch(address, host, target, limit)
        yield Downloaded(target, size, host)


def _fetch(address: str, host: str, target: Path, limit: int) -> int:
    timeout = (connect_timeout_seconds(), float(settings.SOURCE_FILE_READ_TIMEOUT_SECONDS))
    try:
        response = session.get(address, stream=True, timeout=timeout)
    except requests.Timeout:
        raise SourceError(
            _("The server at “%(host)s” did not answer within %(seconds)s seconds.")
            % {"host": host, "seconds": f"{timeout[1]:g}"}
        ) from None
    except requests.RequestException as error:
        raise SourceError(
            _("The file at “%(host)s” could not be downloaded: %(error)s")
            % {"host": host, "error": type(error).__name__}
        ) from None
    with response:
        for hop in [*response.history, response]:
            if address_problem(hop.url) is not None:
                raise SourceError(
                    _("The address of the file led to one that is not https://. It is not read.")
                )
        if response.status_code >= 400:
            raise SourceError(
                _("The server at “%(host)s” answered HTTP %(status)s for the file.")
                % {"host": host, "status": response.status_code}
            )
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > limit:
            raise _too_large(limit)
        size = 0
        try:
            with target.open("wb") as file:
                for chunk in response.iter_content(CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    file.write(chunk)
        except requests.RequestException as error:
            raise SourceError(
                _("The download from “%(host)s” broke off: %(error)s")
                % {"host": host, "error": type(error).__name__}
            ) from None
    return size


def _too_large(limit: int) -> SourceError:
    return SourceError(
        _("The file is larger than %(size)s, the most a source downloads (SOURCE_FILE_MAX_BYTES).")
        % {"size": filesizeformat(limit)}
    )

"""Files at an https:// address, downloaded for DuckDB to read where it reads any file.

DuckDB's own ``httpfs`` would fetch its extension from the internet at run time, which a
server without outbound access to DuckDB's site cannot do; so the file is fetched here with
``requests`` (one session: the seam the tests replace), streamed to a temporary file no larger
than ``SOURCE_FILE_MAX_BYTES``, each read waiting at most ``SOURCE_FILE_READ_TIMEOUT_SECONDS``.
Only https:// is fetched (plain http:// only from ``SOURCE_FILE_PLAIN_HTTP_HOSTS``, the tests'
local server), and a redirect must stay on https too. Messages name the host, never the full
address (a pre-signed address carries its signature in the query).

A run remembers the version of the file it read whole (its ``ETag`` and ``Last-Modified``) and
the next run asks for the file only if it changed (``If-None-Match`` / ``If-Modified-Since``):
a server that answers 304 Not Modified is not downloaded from (``SourceUnchanged``).
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
from sources.kinds.base import SourceError, SourceUnchanged, connect_timeout_seconds

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


#: A file's version as its server gave it: ``{"etag": ..., "last_modified": ...}`` (either may
#: be missing; a server that gives neither gives no version).
FileVersion = dict[str, str]


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    host: str
    version: FileVersion | None = None


@contextmanager
def downloaded(address: str, unchanged_since: FileVersion | None = None) -> Iterator[Downloaded]:
    """The file at ``address`` in a temporary file (with the address's file extension, so
    that its format can be told from its name), removed afterwards. With ``unchanged_since``
    (a version an earlier download gave), only if the file changed since: else
    ``SourceUnchanged`` is raised and nothing is downloaded."""
    problem = address_problem(address)
    if problem is not None:
        raise SourceError(problem)
    host = urlsplit(address).hostname or ""
    suffix = PurePosixPath(urlsplit(address).path).suffix[:10]
    limit = int(settings.SOURCE_FILE_MAX_BYTES)
    with tempfile.TemporaryDirectory(prefix="audience-relay-source-") as folder:
        target = Path(folder) / f"download{suffix}"
        size, version = _fetch(address, host, target, limit, unchanged_since or {})
        yield Downloaded(target, size, host, version)


def conditions(version: FileVersion) -> dict[str, str]:
    """The headers that ask for the file only if it is no longer this version."""
    headers = {}
    if version.get("etag"):
        headers["If-None-Match"] = version["etag"]
    if version.get("last_modified"):
        headers["If-Modified-Since"] = version["last_modified"]
    return headers


def version_of(response: requests.Response) -> FileVersion | None:
    version = {
        name: response.headers[header]
        for name, header in (("etag", "ETag"), ("last_modified", "Last-Modified"))
        if response.headers.get(header)
    }
    return version or None


def _fetch(
    address: str, host: str, target: Path, limit: int, unchanged_since: FileVersion
) -> tuple[int, FileVersion | None]:
    timeout = (connect_timeout_seconds(), float(settings.SOURCE_FILE_READ_TIMEOUT_SECONDS))
    headers = conditions(unchanged_since)
    try:
        response = session.get(address, stream=True, timeout=timeout, headers=headers)
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
        if response.status_code == 304 and headers:
            # A 304 may give the validators again, or newer ones: keep what it gives.
            raise SourceUnchanged({**unchanged_since, **(version_of(response) or {})})
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
        return size, version_of(response)


def _too_large(limit: int) -> SourceError:
    return SourceError(
        _("The file is larger than %(size)s, the most a source downloads (SOURCE_FILE_MAX_BYTES).")
        % {"size": filesizeformat(limit)}
    )

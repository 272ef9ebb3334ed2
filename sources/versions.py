"""The version of a source's data that its last complete reading read (a file's ETag and
Last-Modified), kept on the source so that the next run reads only data that changed.

A run takes the version off the source when it starts, and gives it back only when its reading
is complete (or the data had not changed): a run that dies leaves none, and the next run reads
everything. A source edited while a run reads is not given one (what the reading made of the
rows may no longer be what the source's settings say)."""

from __future__ import annotations

from typing import Any

from sources.models import Source


def version_take(source: Source) -> dict[str, Any] | None:
    """The version the last complete reading read, taken off the source (None: read all)."""
    version = source.file_version
    if version is not None:
        Source.objects.filter(pk=source.pk).update(file_version=None)
        source.file_version = None
    return version


def version_keep(source: Source, version: dict[str, Any] | None) -> None:
    """The data at ``version`` was read whole (or had not changed): keep it for the next run,
    unless the source was edited since it was loaded."""
    if version is None:
        return
    kept = Source.objects.filter(pk=source.pk, updated_at=source.updated_at).update(
        file_version=version
    )
    if kept:
        source.file_version = version

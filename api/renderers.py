from __future__ import annotations

from rest_framework.renderers import BaseRenderer


class CsvRenderer(BaseRenderer):
    """Lets a client ask for ``text/csv``; the CSV itself is a streamed response of its own."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else b""

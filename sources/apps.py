from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SourcesConfig(AppConfig):
    name = "sources"
    verbose_name = _("Sources")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The profile page says which source set a value; segments cannot import sources.
        from segments import origins
        from sources.selectors import source_names

        origins.register_namer(source_names)

"""What each segments and profiles action asks for, and what a user without it is told: used by
the pages' decorators and the API's permission class alike (``accounts.roles.ActionPermission``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.permissions import ActionPermission

_CONTRIBUTORS_CHANGE = _(
    "Viewers cannot change segments. Ask an administrator for the contributor role."
)

VIEW_SEGMENT = ActionPermission(
    "segments.view_segment",
    _("Only users with a role can see segments. Ask an administrator for one."),
)
ADD_SEGMENT = ActionPermission("segments.add_segment", _CONTRIBUTORS_CHANGE)
CHANGE_SEGMENT = ActionPermission("segments.change_segment", _CONTRIBUTORS_CHANGE)
DELETE_SEGMENT = ActionPermission("segments.delete_segment", _CONTRIBUTORS_CHANGE)
REFRESH_SEGMENT = ActionPermission(
    "segments.refresh_segment",
    _("Viewers cannot refresh segments. Ask an administrator for the contributor role."),
)
VIEW_PROFILE = ActionPermission(
    "segments.view_profile",
    _("Only users with a role can see profiles. Ask an administrator for one."),
)
IMPORT_PROFILES = ActionPermission(
    "segments.import_profiles", _("Only administrators can import profiles.")
)

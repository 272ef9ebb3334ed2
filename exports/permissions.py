"""What each exports action asks for, and what a user without it is told: used by the pages'
decorators and the API's permission class alike (``accounts.roles.ActionPermission``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.permissions import ActionPermission

_CONTRIBUTORS_EDIT = _(
    "Viewers cannot add or change exports. Ask an administrator for the contributor role."
)

VIEW_EXPORT = ActionPermission(
    "exports.view_export",
    _("Only users with a role can see exports. Ask an administrator for one."),
)
ADD_EXPORT = ActionPermission("exports.add_export", _CONTRIBUTORS_EDIT)
CHANGE_EXPORT = ActionPermission("exports.change_export", _CONTRIBUTORS_EDIT)
DELETE_EXPORT = ActionPermission(
    "exports.delete_export",
    _("Viewers cannot remove exports. Ask an administrator for the contributor role."),
)
RUN_EXPORT = ActionPermission(
    "exports.run_export",
    _("Viewers cannot run exports. Ask an administrator for the contributor role."),
)
VIEW_STATUS = ActionPermission(
    "exports.view_status",
    _("Only users with a role can see the system status. Ask an administrator for one."),
)
CHANGE_GUARD_DEFAULTS = ActionPermission(
    "exports.change_guard_defaults",
    _(
        "Only administrators can change the safety thresholds. Ask an administrator to change "
        "them, or set an export's own on its Edit page."
    ),
)
CHANGE_SCHEDULE = ActionPermission(
    "exports.change_schedule",
    _("Only administrators can change the schedule. Ask an administrator to change it."),
)

#: The refusal when the role allows the action but the export's connection is not one the user
#: may use (``selectors.export_write_refusal``).
NOT_YOUR_CONNECTION = _(
    "This export sends through “%(connection)s”, a connection only administrators may use, so "
    "you can view it but not change, run or remove it. Ask an administrator if it needs a change."
)
MANAGE_EXCLUSION = ActionPermission(
    "exports.manage_exclusion",
    _(
        "Only administrators can see and change exclusions. Ask an administrator to exclude "
        "an address, a domain or a segment from every export."
    ),
)

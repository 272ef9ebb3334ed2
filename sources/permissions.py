"""What each sources action asks for, and what a user without it is told: used by the pages'
decorators and the API's permission class alike."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.permissions import ActionPermission

_ADMINISTRATORS_MANAGE = _(
    "Only administrators can set up and run sources. Contributors and viewers see their names "
    "and status."
)

VIEW_SOURCE = ActionPermission(
    "sources.view_source", _("Ask an administrator for a role to see the sources.")
)
ADD_SOURCE = ActionPermission("sources.add_source", _ADMINISTRATORS_MANAGE)
CHANGE_SOURCE = ActionPermission("sources.change_source", _ADMINISTRATORS_MANAGE)
DELETE_SOURCE = ActionPermission("sources.delete_source", _ADMINISTRATORS_MANAGE)
RUN_SOURCE = ActionPermission("sources.run_source", _ADMINISTRATORS_MANAGE)

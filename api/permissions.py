"""The API's one permission class: the pages' permission strings, and the pages' object checks.

Each view names, per action, the permission the matching page asks for (``permission_required``
in the apps' views) and the reason that page gives; nothing here knows a role. An action a view
does not list is refused, so a new action cannot ship without a permission.

Writes on one object (POST, PUT, PATCH, DELETE) also go through the object check the pages use
for that model: ``exports.selectors.export_writable_by`` for exports and their runs,
``connections.selectors.connections_usable_by`` for connections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from connections.models import Connection
from connections.selectors import connections_usable_by
from exports.models import Export, ExportRun
from exports.selectors import export_writable_by
from exports.views import NOT_YOUR_CONNECTION

NOT_LISTED = _("This action is not available through the API.")
CONNECTION_NOT_USABLE = _("Only administrators may use this connection.")


def _export_check(user, export: Export) -> str | None:
    if export_writable_by(user, export):
        return None
    return NOT_YOUR_CONNECTION % {"connection": export.connection}


def _run_check(user, run: ExportRun) -> str | None:
    return _export_check(user, run.export)


def _connection_check(user, connection: Connection) -> str | None:
    if connections_usable_by(user).filter(pk=connection.pk).exists():
        return None
    return str(CONNECTION_NOT_USABLE)


#: model -> check(user, obj) returning None when allowed, or the reason for refusing.
OBJECT_CHECKS: dict[type, Callable[[Any, Any], str | None]] = {
    Export: _export_check,
    ExportRun: _run_check,
    Connection: _connection_check,
}


def required_permission(view) -> tuple[str, str] | None:
    """(permission, reason) for the view's current action, or None if it lists none."""
    action = getattr(view, "action", None) or (view.request.method or "").lower()
    return getattr(view, "required_permissions", {}).get(action)


class RolePermission(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False  # DRF answers 401 with WWW-Authenticate
        if getattr(view, "action_map", None) is not None and view.action in (None, "metadata"):
            # A method the endpoint does not have (DRF answers 405), or OPTIONS, which only
            # describes the endpoint.
            return True
        rule = required_permission(view)
        if rule is None:
            self.message = str(NOT_LISTED)
            return False
        permission, reason = rule
        if not request.user.has_perm(permission):
            self.message = str(reason)
            return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        check = OBJECT_CHECKS.get(type(obj))
        if check is None:
            return True
        refusal = check(request.user, obj)
        if refusal:
            self.message = refusal
            return False
        return True

"""The API's one permission class: the pages' permissions, and the pages' object checks.

Each view names, per action, the ``ActionPermission`` the matching page asks for (declared in
its app's ``permissions.py``: the permission and the refusal the page gives); nothing here knows
a role or an app. An action a view does not list is refused, so a new action cannot ship
without a permission.

Writes on one object (POST, PUT, PATCH, DELETE) also go through the view's ``object_refusal``
when it has one: the object check the pages use for that model (e.g.
``exports.selectors.export_write_refusal``), returning None when allowed or the reason.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.permissions import ActionPermission

NOT_LISTED = _("This action is not available through the API.")


def required_permission(view) -> ActionPermission | None:
    """The permission the view's current action asks for, or None if it lists none."""
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
        permission = required_permission(view)
        if permission is None:
            self.message = str(NOT_LISTED)
            return False
        if not permission.allows(request.user):
            self.message = str(permission.refusal)
            return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        check = getattr(view, "object_refusal", None)
        if check is None:
            return True
        refusal = check(request.user, obj)
        if refusal:
            self.message = refusal
            return False
        return True

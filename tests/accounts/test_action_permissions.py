"""Each action's permission is one ``ActionPermission`` in its app's ``permissions.py``, which
the pages' decorators and the API's permission class both use."""

from __future__ import annotations

import importlib

import pytest

from accounts.roles import ROLE_PERMISSIONS
from core.permissions import ActionPermission, permission_required

APPS = ["accounts", "audit", "connections", "exports", "segments", "webhooks"]
GRANTED = {name for names in ROLE_PERMISSIONS.values() for name in names}


def declared() -> list[tuple[str, str, ActionPermission]]:
    found = []
    for app in APPS:
        module = importlib.import_module(f"{app}.permissions")
        for name, value in vars(module).items():
            if isinstance(value, ActionPermission):
                found.append((app, name, value))
    return found


@pytest.mark.parametrize(
    ("app", "permission"),
    [pytest.param(app, permission, id=f"{app}.{name}") for app, name, permission in declared()],
)
def test_each_declared_permission_is_one_some_role_holds(app, permission):
    assert permission.name.startswith(f"{app}.")
    assert permission.name in GRANTED
    assert str(permission.refusal)


def test_each_permission_is_declared_once():
    names = [permission.name for _app, _name, permission in declared()]
    assert len(names) == len(set(names))


def test_a_page_refuses_with_the_permissions_own_words(rf, charlie):
    from django.core.exceptions import PermissionDenied

    from exports.permissions import RUN_EXPORT

    view = permission_required(RUN_EXPORT)(lambda request: "ran")
    request = rf.post("/")
    request.user = charlie

    with pytest.raises(PermissionDenied) as refused:
        view(request)
    assert refused.value.args == (RUN_EXPORT.refusal,)

"""Admin > Users: only administrators (``accounts.manage_users``) open these pages.

The set-password page is the exception: whoever holds a valid one-time link opens it without
logging in.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

import audit
from accounts import selectors, services
from accounts.forms import UserAddForm, UserForm
from accounts.invitations import set_password_token
from accounts.permissions import MANAGE_USERS
from accounts.roles import role_of
from audit.actions import AuditAction
from core.listing import search_query
from core.permissions import permission_required


def _user(user_id: int) -> User:
    return get_object_or_404(selectors.user_list(), pk=user_id)


@permission_required(MANAGE_USERS)
def user_list(request: HttpRequest) -> HttpResponse:
    query = search_query(request.GET.get("q"))
    sort = selectors.USER_SORTING.parse(request.GET.get("sort"))
    users = [(user, role_of(user)) for user in selectors.user_search(query=query, sort=sort)]
    context = {"users": users, "query": query, "sort": sort}
    return render(request, "accounts/users/list.html", context)


@permission_required(MANAGE_USERS)
def user_add(request: HttpRequest) -> HttpResponse:
    form = UserAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_invite(**form.cleaned_data)
        messages.success(
            request,
            _("%(name)s was added. An invitation to choose a password went to %(email)s.")
            % {"name": user.get_username(), "email": user.email},
        )
        return redirect("users:list")
    return render(request, "accounts/users/add.html", {"form": form})


@permission_required(MANAGE_USERS)
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _user(user_id)
    initial = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "role": role_of(user),
    }
    form = UserForm(request.POST or None, initial=initial, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update(user=user, **form.cleaned_data)
        except services.LastAdministrator as error:
            form.add_error("role", error.message)
        else:
            messages.success(request, _("%(name)s was saved.") % {"name": user.get_username()})
            return redirect("users:list")
    return render(
        request, "accounts/users/edit.html", {"form": form, "subject": user, "role": role_of(user)}
    )


@require_POST
@permission_required(MANAGE_USERS)
def user_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _user(user_id)
    try:
        services.user_deactivate(user=user)
    except services.LastAdministrator as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("%(name)s was deactivated: they are logged out and their API tokens stop working.")
            % {"name": user.get_username()},
        )
    return redirect("users:edit", user_id=user.pk)


@require_POST
@permission_required(MANAGE_USERS)
def user_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _user(user_id)
    services.user_reactivate(user=user)
    messages.success(request, _("%(name)s can log in again.") % {"name": user.get_username()})
    return redirect("users:edit", user_id=user.pk)


@require_POST
@permission_required(MANAGE_USERS)
def user_reset_password(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _user(user_id)
    if not user.email:
        messages.error(
            request,
            _("%(name)s has no e-mail address. Add one, save, and send the link again.")
            % {"name": user.get_username()},
        )
    else:
        services.user_send_password_reset(user=user)
        messages.success(
            request,
            _("A link to choose a new password went to %(email)s. It works once, for 72 hours.")
            % {"email": user.email},
        )
    return redirect("users:edit", user_id=user.pk)


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The page an invitation or reset link opens; the new password passes every validator."""

    template_name = "accounts/users/set_password.html"
    token_generator = set_password_token
    success_url = reverse_lazy("accounts:login")

    def get_user(self, uidb64: str) -> User | None:
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def form_valid(self, form):
        response = super().form_valid(form)
        audit.record(AuditAction.USER_PASSWORD_SET, form.user, after={}, actor=form.user)
        messages.success(self.request, _("Your password is set. Log in with it now."))
        return response

"""The **API tokens** page: a user's own tokens, made and revoked here (``accounts.tokens``)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.models import ApiToken
from accounts.permissions import HOLD_API_TOKENS
from accounts.tokens import token_create, token_revoke, tokens_of
from core.permissions import permission_required


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("What the token is for, e.g. “nightly profile sync”."),
        error_messages={"required": gettext_lazy("Give the token a name you will recognise.")},
    )


@never_cache
@permission_required(HOLD_API_TOKENS)
def token_list(request: HttpRequest) -> HttpResponse:
    """List the user's tokens; a POST makes one and shows it, on this response only (which no
    cache may store: ``Cache-Control: no-store``)."""
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        token, raw_token = token_create(user=request.user, name=form.cleaned_data["name"])
        created = {"token": token, "raw": raw_token}
        form = TokenForm()
    return render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": tokens_of(request.user), "created": created},
    )


@require_POST
@permission_required(HOLD_API_TOKENS)
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token_revoke(token=token)
    messages.success(
        request, _("Token “%(name)s” revoked: it no longer works.") % {"name": token.name}
    )
    return redirect("accounts:tokens")

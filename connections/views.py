"""Admin > Connections. Only administrators open these pages; everyone else gets the 403 page.

Adding a connection takes two pages: the first (display name, who can use it, the type's secret
fields, I agree, **Connect**) checks an API key with the service; the second (the OAuth redirect
for OAuth types, **Add yourself as export user**, **Save**) saves it. Until **Save**, the setup
lives in the session (``connections.pending``), so nothing half-made reaches the database.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from connections import consent, oauth_state, pending, selectors, services
from connections.forms import ConnectionEditForm, ConnectionFinishForm, ConnectionSetupForm
from connections.models import Connection
from connections.permissions import (
    ADD_CONNECTION,
    CHANGE_CONNECTION,
    DELETE_CONNECTION,
)
from connections.types import registry
from connections.types.base import Backend, BackendError
from core.listing import search_query
from core.permissions import permission_required

PENDING = "pending:"
EXISTING = "connection:"


def _backend_class(kind: str) -> type[Backend]:
    if kind not in registry.TYPES:
        raise Http404("No such connection type.")
    return registry.backend_class(kind)


def _connection(connection_id: int) -> Connection:
    return get_object_or_404(selectors.connection_list(), pk=connection_id)


@permission_required(CHANGE_CONNECTION)
def connection_list(request: HttpRequest) -> HttpResponse:
    query = search_query(request.GET.get("q"))
    sort = selectors.CONNECTION_SORTING.parse(request.GET.get("sort"))
    connections = selectors.connection_search(query=query, sort=sort)
    context = {"connections": connections, "query": query, "sort": sort}
    return render(request, "connections/list.html", context)


@permission_required(ADD_CONNECTION)
def connection_choose_type(request: HttpRequest) -> HttpResponse:
    types = [(kind, registry.backend_class(kind)) for kind in registry.TYPES]
    return render(request, "connections/choose_type.html", {"types": types})


@sensitive_post_parameters("api_key")
@permission_required(ADD_CONNECTION)
def connection_setup(request: HttpRequest, kind: str) -> HttpResponse:
    """The first page: **Connect** checks typed-in credentials and keeps the setup pending."""
    backend = _backend_class(kind)
    data = request.POST if request.method == "POST" else None
    form = ConnectionSetupForm(data, kind=kind)
    credentials_form = backend.credentials_form_class(data)
    if request.method == "POST" and form.is_valid() and credentials_form.is_valid():
        credentials = credentials_form.credentials()
        try:
            if credentials:
                services.credentials_verify(kind=kind, credentials=credentials)
        except BackendError as error:
            credentials_form.add_error(None, error.message)
        else:
            pending_id = pending.pending_start(
                request.session,
                {
                    "kind": kind,
                    "display_name": form.cleaned_data["display_name"],
                    "who_can_use": form.cleaned_data["who_can_use"],
                    "consent_given_by": request.user.pk,
                    "consent_given_at": timezone.now().isoformat(),
                    "encrypted_credentials": (
                        services.credentials_encrypt(credentials) if credentials else ""
                    ),
                },
            )
            return redirect("connections:setup_finish", pending_id=pending_id)
    return render(
        request,
        "connections/setup.html",
        {"kind": kind, "backend": backend, "form": form, "credentials_form": credentials_form},
    )


@permission_required(ADD_CONNECTION)
def connection_setup_finish(request: HttpRequest, pending_id: str) -> HttpResponse:
    """The second page: authenticate (OAuth types), **Add yourself as export user**, **Save**."""
    setup = pending.pending_get(request.session, pending_id)
    if setup is None or setup.get("consent_given_by") != request.user.pk:
        messages.error(
            request, _("This connection setup expired or was already saved. Start it again.")
        )
        return redirect("connections:choose_type")
    backend = _backend_class(setup["kind"])
    authenticated = bool(setup.get("encrypted_credentials"))
    form = ConnectionFinishForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and "cancel" in request.POST:
        pending.pending_discard(request.session, pending_id)
        messages.info(request, _("The connection was not added."))
        return redirect("connections:list")
    if request.method == "POST" and form.is_valid():
        if not authenticated:
            form.add_error(
                None,
                _("Select “%(button)s” and allow access before you save.")
                % {"button": backend.authenticate_label},
            )
        else:
            setup["add_me_as_export_user"] = form.cleaned_data["add_me_as_export_user"]
            return _save_pending(request, pending_id, setup)
    return render(
        request,
        "connections/finish.html",
        {
            "backend": backend,
            "setup": setup,
            "pending_id": pending_id,
            "target": PENDING + pending_id,
            "authenticated": authenticated,
            "who_can_use_label": Connection.Audience(setup["who_can_use"]).label,
            "form": form,
        },
    )


@require_POST
@permission_required(CHANGE_CONNECTION)
def connection_authorize(request: HttpRequest) -> HttpResponse:
    """Send the browser to the service's authorize page with a fresh ``state``. A new
    connection's choices that come with the button (Add yourself as export user) are kept for
    when the service sends the browser back, which saves the connection."""
    target = request.POST.get("target", "")
    kind = _target_kind(request, target)
    if kind is None:
        messages.error(
            request,
            _("There is nothing to authenticate: the setup expired or the connection was removed."),
        )
        return redirect("connections:list")
    if target.startswith(PENDING):
        pending.pending_update(
            request.session,
            target.removeprefix(PENDING),
            add_me_as_export_user=request.POST.get("add_me_as_export_user") == "on",
        )
    redirect_uri = request.build_absolute_uri(reverse("connections:oauth_callback"))
    state = oauth_state.state_issue(request.session, target=target, redirect_uri=redirect_uri)
    try:
        url = services.oauth_authorize_url(kind=kind, redirect_uri=redirect_uri, state=state)
    except BackendError as error:
        messages.error(request, error.message)
        return redirect(_target_page(target))
    return HttpResponseRedirect(url)


@permission_required(CHANGE_CONNECTION)
def connection_oauth_callback(request: HttpRequest) -> HttpResponse:
    """Where the service sends the browser back. Every way out is a page of this site."""
    try:
        state = oauth_state.state_consume(request.session, request.GET.get("state", ""))
    except oauth_state.StateError as error:
        messages.error(request, error.message)
        return redirect("connections:list")
    kind = _target_kind(request, state.target)
    if kind is None:
        messages.error(
            request,
            _("The connection being authenticated no longer exists. Nothing was saved."),
        )
        return redirect("connections:list")
    backend = registry.backend_class(kind)
    page = _target_page(state.target)
    error = request.GET.get("error", "")
    if error:
        if error == "access_denied":
            message = _(
                "%(service)s access was denied, so nothing was saved. Select “%(button)s” again "
                "and choose Allow to connect."
            )
        else:
            message = _(
                "%(service)s could not grant access (%(error)s), so nothing was saved. Select "
                "“%(button)s” to try again."
            )
        messages.error(
            request,
            message
            % {
                "service": backend.label,
                "button": backend.authenticate_label,
                "error": error[:100],
            },
        )
        return redirect(page)
    code = request.GET.get("code", "")
    if not code:
        messages.error(
            request,
            _("%(service)s sent no authorization code, so nothing was saved. Try again.")
            % {"service": backend.label},
        )
        return redirect(page)
    try:
        encrypted = services.oauth_exchange_code(
            kind=kind, code=code, redirect_uri=state.redirect_uri
        )
    except BackendError as failure:
        messages.error(request, failure.message)
        return redirect(page)
    if state.target.startswith(PENDING):
        # The service granted access: that was the last step, so the connection is saved now.
        pending_id = state.target.removeprefix(PENDING)
        setup = pending.pending_get(request.session, pending_id)
        if setup is None:
            messages.error(
                request, _("This connection setup expired or was already saved. Start it again.")
            )
            return redirect("connections:choose_type")
        return _save_pending(request, pending_id, {**setup, "encrypted_credentials": encrypted})
    else:
        connection = _connection(int(state.target.removeprefix(EXISTING)))
        services.connection_set_encrypted_credentials(
            connection=connection, encrypted_credentials=encrypted
        )
        messages.success(
            request,
            _("%(service)s granted access again; the connection is healthy.")
            % {"service": backend.label},
        )
    return redirect(page)


def _target_kind(request: HttpRequest, target: str) -> str | None:
    """The type of what an OAuth round trip authenticates: a pending setup of this user, or an
    existing connection."""
    if target.startswith(PENDING):
        setup = pending.pending_get(request.session, target.removeprefix(PENDING))
        if setup is None or setup.get("consent_given_by") != request.user.pk:
            return None
        kind = setup["kind"]
    elif target.startswith(EXISTING) and target.removeprefix(EXISTING).isdigit():
        kind = (
            Connection.objects.filter(pk=int(target.removeprefix(EXISTING)))
            .values_list("kind", flat=True)
            .first()
        )
    else:
        return None
    if kind not in registry.TYPES or not registry.backend_class(kind).oauth:
        return None
    return kind


def _save_pending(request: HttpRequest, pending_id: str, setup: dict) -> HttpResponse:
    """Add the connection a setup describes (its credentials accepted), and say so."""
    connection = services.connection_create(
        kind=setup["kind"],
        display_name=setup["display_name"],
        who_can_use=setup["who_can_use"],
        encrypted_credentials=setup["encrypted_credentials"],
        consent_given_by=request.user,
        consent_given_at=parse_datetime(setup["consent_given_at"]) or timezone.now(),
        created_by=request.user,
        add_creator_as_export_user=setup.get("add_me_as_export_user", True),
    )
    pending.pending_discard(request.session, pending_id)
    messages.success(request, _("Connection “%(name)s” added.") % {"name": connection.display_name})
    return redirect("connections:list")


def _target_page(target: str) -> str:
    if target.startswith(PENDING):
        return reverse("connections:setup_finish", args=[target.removeprefix(PENDING)])
    if target.startswith(EXISTING) and target.removeprefix(EXISTING).isdigit():
        return reverse("connections:edit", args=[int(target.removeprefix(EXISTING))])
    return reverse("connections:list")


@sensitive_post_parameters("api_key")
@permission_required(CHANGE_CONNECTION)
def connection_edit(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = _connection(connection_id)
    backend = registry.backend_class(connection.kind)
    if request.htmx and request.method == "GET":  # the consent read-back's status, polled
        context = {"connection": connection, "read_back": selectors.consent_read_back(connection)}
        return render(request, "connections/edit.html#consent", context)
    data = request.POST if request.method == "POST" else None
    form = ConnectionEditForm(
        data,
        connection=connection,
        initial={
            "display_name": connection.display_name,
            "who_can_use": connection.who_can_use,
            "i_am_export_user": connection.export_users.filter(pk=request.user.pk).exists(),
        },
    )
    credentials_form = backend.credentials_form_class(data, editing=True)
    if request.method == "POST" and form.is_valid() and credentials_form.is_valid():
        credentials = credentials_form.credentials()
        try:
            if credentials:
                services.credentials_verify(kind=connection.kind, credentials=credentials)
        except BackendError as error:
            credentials_form.add_error(None, error.message)
        else:
            services.connection_update(
                connection=connection,
                display_name=form.cleaned_data["display_name"],
                who_can_use=form.cleaned_data["who_can_use"],
                credentials=credentials or None,
                user=request.user,
                user_is_export_user=form.cleaned_data["i_am_export_user"],
            )
            messages.success(
                request, _("Connection “%(name)s” saved.") % {"name": connection.display_name}
            )
            return redirect("connections:list")
    return render(
        request,
        "connections/edit.html",
        {
            "connection": connection,
            "backend": backend,
            "form": form,
            "credentials_form": credentials_form,
            "target": f"{EXISTING}{connection.pk}",
            "export_users": selectors.connection_export_users(connection),
            "read_back": selectors.consent_read_back(connection),
        },
    )


@require_POST
@permission_required(CHANGE_CONNECTION)
def connection_consent_read(request: HttpRequest, connection_id: int) -> HttpResponse:
    """**Read back now**: queue a read of who opted out at the service."""
    connection = _connection(connection_id)
    try:
        consent.read_back_request(connection=connection, user=request.user)
    except consent.ReadBackNotPossible as refused:
        messages.error(request, str(refused.message))
    except consent.ReadBackAlreadyRunning:
        messages.info(request, _("Consent is being read back from this connection already."))
    else:
        messages.success(
            request,
            _("Reading consent back from “%(name)s”. This page shows the outcome when it is done.")
            % {"name": connection.display_name},
        )
    return redirect("connections:edit", connection_id=connection.pk)


@require_POST
@permission_required(CHANGE_CONNECTION)
def connection_test(request: HttpRequest, connection_id: int) -> HttpResponse:
    """**Test connection**: the type's named steps through the real client."""
    connection = _connection(connection_id)
    steps = services.connection_test(connection_id=connection.pk)
    connection.refresh_from_db(fields=["status", "last_error", "last_checked_at"])
    return render(request, "connections/test.html", {"connection": connection, "steps": steps})


@permission_required(DELETE_CONNECTION)
def connection_delete(request: HttpRequest, connection_id: int) -> HttpResponse:
    """Confirm; when exports use the connection, list them and offer to remove or detach them
    (the exports app carries out the choice, see ``connections.signals``)."""
    connection = _connection(connection_id)
    users = selectors.connection_users(connection)
    if request.method == "POST":
        try:
            services.connection_delete(
                connection=connection, dependants_action=request.POST.get("exports", "")
            )
        except services.ConnectionInUse as in_use:
            users = in_use.users
            messages.error(
                request,
                _(
                    "Exports use this connection, so it was not removed. Choose what happens to "
                    "them below."
                ),
            )
        else:
            messages.success(
                request, _("Connection “%(name)s” removed.") % {"name": connection.display_name}
            )
            return redirect("connections:list")
    return render(request, "connections/delete.html", {"connection": connection, "users": users})

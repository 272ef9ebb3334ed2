"""Admin > Webhooks. Only administrators (``webhooks.manage_webhook``) open these pages.

A secret is in exactly one response: the one to the request that made it (adding the endpoint
or rotating its secret), which is never cached. No page shows it afterwards.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.permissions import permission_required
from webhooks import addresses, selectors, services, signing
from webhooks.forms import EndpointForm, plain_http_allowed
from webhooks.models import Endpoint
from webhooks.permissions import MANAGE_WEBHOOK


def _endpoint(endpoint_id: int) -> Endpoint:
    try:
        return selectors.endpoint_get(endpoint_id)
    except Endpoint.DoesNotExist as missing:
        raise Http404("No such webhook endpoint.") from missing


def _show_secret(
    request: HttpRequest, endpoint: Endpoint, secret: str, *, rotated: bool
) -> HttpResponse:
    response = render(
        request,
        "webhooks/secret.html",
        {"endpoint": endpoint, "secret": secret, "rotated": rotated, **_signature_help()},
    )
    add_never_cache_headers(response)
    return response


def _signature_help() -> dict:
    return {
        "signature_version": signing.SIGNATURE_VERSION,
        "tolerance": signing.DEFAULT_TOLERANCE_SECONDS,
        "timeout": f"{settings.WEBHOOK_TIMEOUT_SECONDS:g}",
    }


def _address_help() -> dict:
    return {
        "http_allowed": plain_http_allowed(),
        "private_addresses_allowed": addresses.private_addresses_allowed(),
    }


@permission_required(MANAGE_WEBHOOK)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    return render(request, "webhooks/list.html", {"endpoints": selectors.endpoint_list()})


@permission_required(MANAGE_WEBHOOK)
def endpoint_create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint, secret = services.endpoint_create(
            url=form.cleaned_data["url"],
            description=form.cleaned_data["description"],
            events=form.cleaned_data["events"],
            user=request.user,
        )
        return _show_secret(request, endpoint, secret, rotated=False)
    return render(
        request,
        "webhooks/edit.html",
        {"form": form, "endpoint": None, **_address_help()},
    )


@permission_required(MANAGE_WEBHOOK)
def endpoint_edit(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    form = EndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        services.endpoint_update(
            endpoint=endpoint,
            url=form.cleaned_data["url"],
            description=form.cleaned_data["description"],
            events=form.cleaned_data["events"],
        )
        messages.success(request, _("Webhook endpoint saved."))
        return redirect(endpoint)
    return render(
        request,
        "webhooks/edit.html",
        {"form": form, "endpoint": endpoint, **_address_help()},
    )


@permission_required(MANAGE_WEBHOOK)
def endpoint_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    return render(
        request,
        "webhooks/detail.html",
        {"endpoint": endpoint, "attempts": selectors.endpoint_log(endpoint), **_signature_help()},
    )


@require_POST
@permission_required(MANAGE_WEBHOOK)
def endpoint_enable(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    services.endpoint_enable(endpoint=endpoint)
    messages.success(request, _("Endpoint enabled: it receives events again."))
    return redirect(endpoint)


@require_POST
@permission_required(MANAGE_WEBHOOK)
def endpoint_disable(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    services.endpoint_disable(endpoint=endpoint)
    messages.success(request, _("Endpoint disabled: no events are sent to it until it is enabled."))
    return redirect(endpoint)


@require_POST
@permission_required(MANAGE_WEBHOOK)
def endpoint_rotate_secret(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    secret = services.endpoint_rotate_secret(endpoint=endpoint)
    return _show_secret(request, endpoint, secret, rotated=True)


@require_POST
@permission_required(MANAGE_WEBHOOK)
def endpoint_send_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    services.endpoint_send_test(endpoint=endpoint)
    messages.success(
        request, _("Test event queued. Its attempt appears in the delivery log below in a moment.")
    )
    return redirect(endpoint)


@permission_required(MANAGE_WEBHOOK)
def endpoint_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    if request.method == "POST":
        services.endpoint_delete(endpoint=endpoint)
        messages.success(request, _("Webhook endpoint %(url)s removed.") % {"url": endpoint.url})
        return redirect("webhooks:list")
    return render(request, "webhooks/delete.html", {"endpoint": endpoint})

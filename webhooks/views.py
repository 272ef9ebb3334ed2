"""Admin > Webhooks: endpoints, their signing secret (shown once) and their delivery log."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.roles import permission_required
from webhooks import services
from webhooks.forms import EndpointForm
from webhooks.models import EVENTS, WebhookEndpoint

CAN_MANAGE = gettext_lazy("Only administrators can manage webhooks.")
LOG_SIZE = 100


@permission_required("webhooks.manage_webhooks", CAN_MANAGE)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        endpoint, secret = services.endpoint_create(user=request.user, **form.cleaned_data)
        created = {"endpoint": endpoint, "secret": secret}
        form = EndpointForm()
    return render(
        request,
        "webhooks/list.html",
        {
            "form": form,
            "created": created,
            "endpoints": WebhookEndpoint.objects.all(),
            "event_labels": EVENTS,
        },
    )


@permission_required("webhooks.manage_webhooks", CAN_MANAGE)
def endpoint_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    return render(
        request,
        "webhooks/detail.html",
        {"endpoint": endpoint, "deliveries": endpoint.deliveries.all()[:LOG_SIZE]},
    )


@require_POST
@permission_required("webhooks.manage_webhooks", CAN_MANAGE)
def endpoint_enable(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    services.endpoint_enable(endpoint=endpoint)
    messages.success(request, _("The endpoint receives events again."))
    return redirect("webhooks:detail", endpoint_id=endpoint.pk)


@require_POST
@permission_required("webhooks.manage_webhooks", CAN_MANAGE)
def endpoint_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, _("Webhook endpoint removed."))
    return redirect("webhooks:list")

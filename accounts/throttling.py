"""Login throttling: which failures count against a login, and what a locked-out login sees.

django-axes records each failed login with its username and address; this handler decides
from those records whether a login may try its password (settings: ``AXES_*``, ``LOGIN_*``):

- failures for this username from this address: ``AXES_FAILURE_LIMIT`` of them lock the pair;
- at an address the user has not logged in from in ``LOGIN_KNOWN_ADDRESS_DAYS`` (an address is
  known once a login from it succeeded), also the failures for the username from anywhere
  (``LOGIN_FAILURE_LIMIT_PER_USERNAME``: guessing spread over many addresses) and the failures
  from the address for any username (``LOGIN_FAILURE_LIMIT_PER_ADDRESS``: one address trying
  many accounts).

So a stranger without the password cannot lock a user out of an address the user logs in from,
and a successful login clears only its own username's failures from its own address: logging in
as yourself does not lift the count against someone else's account.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailureCounts:
    """Recent failures that count against one login (username and address)."""

    pair: int
    username: int
    address: int
    known_address: bool

    def exceeded(self) -> list[str]:
        """The limits reached, described for the log; empty while the login may try."""
        reached = []
        if self.pair >= settings.AXES_FAILURE_LIMIT:
            reached.append(f"{self.pair} failures for this username from this address")
        if not self.known_address:
            if self.username >= settings.LOGIN_FAILURE_LIMIT_PER_USERNAME:
                reached.append(f"{self.username} failures for this username from new addresses")
            if self.address >= settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS:
                reached.append(f"{self.address} failures from this address, new to this username")
        return reached


def is_known_address(username: str | None, address: str | None) -> bool:
    """Whether ``username`` logged in successfully from ``address`` within the window."""
    if not username or not address:
        return False
    since = timezone.now() - timedelta(days=settings.LOGIN_KNOWN_ADDRESS_DAYS)
    return AccessLog.objects.filter(
        username=username, ip_address=address, attempt_time__gte=since
    ).exists()


def failure_counts(request: HttpRequest, credentials: dict | None) -> FailureCounts:
    username = get_client_username(request, credentials)
    address = request.axes_ip_address
    same_username, same_address = Q(username=username), Q(ip_address=address)
    totals = AccessAttempt.objects.filter(
        same_username | same_address, attempt_time__gte=get_cool_off_threshold(request)
    ).aggregate(
        pair=Sum("failures_since_start", filter=same_username & same_address),
        username=Sum("failures_since_start", filter=same_username),
        address=Sum("failures_since_start", filter=same_address),
    )
    return FailureCounts(
        pair=totals["pair"] or 0,
        username=totals["username"] or 0,
        address=totals["address"] or 0,
        known_address=is_known_address(username, address),
    )


class LoginThrottleHandler(AxesDatabaseHandler):
    """axes's database handler, counting failures as the module docstring says."""

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """``AXES_FAILURE_LIMIT`` once any limit is reached, the pair's failures before.

        axes compares this one number with ``AXES_FAILURE_LIMIT`` to decide on a lockout.
        """
        counts = failure_counts(request, credentials)
        if counts.exceeded():
            return max(counts.pair, settings.AXES_FAILURE_LIMIT)
        return counts.pair

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """After a successful login: that username's failures from that address, nothing else."""
        count, _ = AccessAttempt.objects.filter(
            username=get_client_username(request, credentials),
            ip_address=request.axes_ip_address,
        ).delete()
        return count

    def user_logged_in(self, sender, request, user, **kwargs) -> None:
        """Record the login (the address becomes known) and forget this user's old ones."""
        super().user_logged_in(sender, request, user, **kwargs)
        since = timezone.now() - timedelta(days=settings.LOGIN_KNOWN_ADDRESS_DAYS)
        AccessLog.objects.filter(username=user.get_username(), attempt_time__lt=since).delete()


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The login page, status 429, saying that logging in is paused and for how long."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    logger.warning(
        "Login locked out: username=%r address=%s (%s)",
        username,
        getattr(request, "axes_ip_address", request.META.get("REMOTE_ADDR")),
        "; ".join(failure_counts(request, credentials).exceeded()),
    )
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "locked_out_minutes": minutes, "next": request.POST.get("next", "")}
    return render(request, "accounts/login.html", context, status=429)

"""The states of consent and deliverability that forbid sending to a person again.

Shared by the destinations that read them back (``connections.types.base.Backend.read_consent``)
and the profiles that keep them (``segments.ConsentRecord``), which sit side by side.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ConsentState(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    #: A hard bounce (a soft bounce is not read back: the address may work tomorrow).
    BOUNCED = "bounced", _("Bounced")
    COMPLAINED = "complained", _("Complained of spam")
    #: Mailchimp's word for an address it stopped mailing after hard or repeated soft bounces.
    CLEANED = "cleaned", _("Cleaned")
    #: On the service's suppression list, for a reason the service does not say.
    SUPPRESSED = "suppressed", _("Suppressed")
    #: The service holds no permission to email the person, and does not say why: Ortto's
    #: ``bol::p`` is off both for a person who unsubscribed and for one our exports created
    #: without consent (its contract's rule for new people). So it keeps the person out of
    #: other connections' exports, never out of the exports of the connection that reported
    #: it: that service keeps the permission itself, and no export ever turns it back on.
    PERMISSION_OFF = "permission_off", _("Email permission off")


#: The states that say nothing about the exports of the connection that reported them.
OTHER_CONNECTIONS_ONLY = frozenset({ConsentState.PERMISSION_OFF})


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")

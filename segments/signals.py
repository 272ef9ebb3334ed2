"""What segments announce, so that apps built on them (webhooks) can act without segments
knowing them.

``segment_refreshed`` is sent with ``segment_id``, ``joined`` and ``left`` (how many profiles
became members and how many stopped being members) when a refresh has just materialised the
segment's members (not when it failed). Receivers that fail are logged (``send_robust``) and
never fail the refresh.
"""

from __future__ import annotations

from django.dispatch import Signal

segment_refreshed = Signal()

"""What exports announce, so that other apps (the API's erasures, webhooks) can act on it
without the engine knowing them.

``run_finished`` is sent once a run has ended (any final status), with ``run``.
"""

from __future__ import annotations

from django.dispatch import Signal

run_finished = Signal()

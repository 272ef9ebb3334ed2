"""What exports announce, so that apps built on them (webhooks, the API's erasures) can act
without exports knowing them.

``export_run_awaiting_approval`` is sent with ``run_id`` once a run stopped at the pre-flight
guard (``exports.guard``) to await approval.

``export_run_discarded`` is sent with ``run_id`` once someone discarded a run that awaited
approval (``services.run_discard``), after that is committed. An approved run announces
nothing of its own: it ends like any run, with ``export_run_finished``.

``export_run_finished`` is sent with ``run_id`` once per run that ended, after the schedule
and the alerts were seen to (``services.run_after_finish``). Receivers that fail are logged
(``send_robust``) and never change the run.
"""

from __future__ import annotations

from django.dispatch import Signal

export_run_finished = Signal()
export_run_awaiting_approval = Signal()
export_run_discarded = Signal()

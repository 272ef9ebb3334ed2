"""What segments announce: ``segment_refreshed`` (with ``segment``) after each refresh, whether
it succeeded (status active) or failed (status failed)."""

from __future__ import annotations

from django.dispatch import Signal

segment_refreshed = Signal()

"""The event ledger's retention: events older than the window are deleted by a daily pulse.

At least 7 days, whatever the setting says: Standard Webhooks senders retry for
about 75 hours and GitHub redelivers for 3 days, and a retry that arrives after
its event was purged would be stored (and routed) again as new. Routes go with
their event (``CASCADE``); the runs they started stay in the run ledger.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from ..models import InboundEvent

MIN_KEEP_DAYS = 7
BATCH = 5000  # rows per statement: a large backlog is deleted without one long lock


class RetentionTooShort(ValueError):
    pass


def events_purge(*, now: datetime, keep_days: int) -> int:
    """Delete events received more than ``keep_days`` ago; returns how many."""
    if keep_days < MIN_KEEP_DAYS:
        raise RetentionTooShort(f"event retention must be at least {MIN_KEEP_DAYS} days (senders retry for "
                                f"days; a purged event would be accepted again as new), got {keep_days}")
    cutoff = now - timedelta(days=keep_days)
    deleted = 0
    while True:
        ids = list(InboundEvent.objects.filter(received_at__lt=cutoff).order_by("received_at")
                   .values_list("id", flat=True)[:BATCH])
        if not ids:
            return deleted
        deleted += InboundEvent.objects.filter(id__in=ids).delete()[1].get(InboundEvent._meta.label, 0)

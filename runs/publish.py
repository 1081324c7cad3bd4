"""Send ``runs.execute`` messages for committed runs.

Every path publishes after commit; a run committed but never published (the
process died in between) is found by the outbox sweeper through
``published_at IS NULL``.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now

from scheduler_project.celery import app
from scheduler_project.faults import fault_point

from .models import Run, RunState

EXECUTE_TASK = "runs.execute"
HARD_LIMIT_GRACE = 10  # seconds between the soft and the hard time limit


def publish_runs_now(run_ids: Sequence[int]) -> None:
    """Publish immediately (callers outside a transaction, or the sweeper)."""
    if not run_ids:
        return
    fault_point("publish.before_send")  # committed, not yet published: the outbox case
    timeouts = dict(Run.objects.filter(id__in=list(run_ids)).values_list("id", "schedule__timeout_seconds"))
    for run_id in run_ids:
        # Soft limit: the attempt is recorded failed (timeout). Hard limit: the
        # pool child is killed, and the reaper settles the run after its lease.
        timeout = timeouts.get(run_id) or settings.CELERY_TASK_SOFT_TIME_LIMIT
        app.send_task(EXECUTE_TASK, args=[run_id], soft_time_limit=timeout, time_limit=timeout + HARD_LIMIT_GRACE)
    Run.objects.filter(id__in=list(run_ids), state=RunState.PENDING).update(published_at=Now())


def publish_runs_on_commit(run_ids: Sequence[int]) -> None:
    ids = list(run_ids)
    if ids:
        transaction.on_commit(lambda: publish_runs_now(ids))

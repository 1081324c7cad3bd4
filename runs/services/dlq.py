"""The dead-letter queue: runs that ended ``dead`` (retries exhausted) or
``unknown`` (the agent may have acted, no outcome recorded).

A replay puts the same row back to ``pending``: the same tick, the same
idempotency key, fresh attempts. A run that already succeeded is never replayed.
"""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F

from workspaces.audit import Actor, audit_record

from ..models import Run, RunState
from ..publish import publish_runs_on_commit
from .dispatch import RunPolicy

REPLAYABLE = (RunState.DEAD, RunState.UNKNOWN, RunState.FAILED)


class ReplayRefused(ValueError):
    pass


def dead_letters():
    return Run.objects.filter(state__in=[RunState.DEAD, RunState.UNKNOWN]).select_related("schedule__agent")


def run_replay(run_id: int, *, now: datetime, actor: Actor | None = None) -> Run:
    """Replay one run under its original identity; ReplayRefused says why not."""
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).select_related("schedule").filter(id=run_id).first()
        if run is None:
            raise ReplayRefused(f"no run {run_id}")
        if run.state not in REPLAYABLE:
            raise ReplayRefused(f"run {run_id} is {run.state}; only dead, unknown or failed runs are replayed")
        Run.objects.filter(id=run.id, state=run.state).update(
            state=RunState.PENDING, max_attempts=F("attempt") + _fresh_attempts(run),
            not_before=None, published_at=None, finished_at=None, buffered=False,
            error_message=f"replayed at {now.isoformat()} after {run.state}: {run.error_message}"[:2000],
        )
        publish_runs_on_commit([run.id])
        audit_record(actor, obj=run, action="replay", now=now, workspace_id=run.agent.workspace_id,
                     detail=f"after {run.state}")
    run.refresh_from_db()
    return run


def _fresh_attempts(run: Run) -> int:
    """A replay grants the schedule's attempts anew; a run without a schedule, its dispatch default."""
    return run.schedule.max_attempts if run.schedule is not None else RunPolicy().max_attempts


def schedule_replay_dead(schedule_id: int, *, now: datetime) -> list[Run]:
    ids = dead_letters().filter(schedule_id=schedule_id).values_list("id", flat=True)
    return [run_replay(run_id, now=now) for run_id in list(ids)]

"""Cancel a run on request (the API): a pending run ends at once; a running one is asked to stop.

Cancellation is cooperative, as the overlap policy's: the running attempt's
heartbeat sees ``cancel_requested_at`` at its next renewal and the adapter
stops if it can; the outcome is then recorded ``cancelled``. Nothing is
killed (``revoke(terminate=True)`` is never used).
"""
from __future__ import annotations

from datetime import datetime

from workspaces.audit import Actor, audit_record

from ..models import Run, RunState
from .ended import run_end_unclaimed


def run_cancel(run: Run, *, now: datetime, actor: Actor | None = None) -> bool:
    """False when the run had already ended (or ended meanwhile)."""
    if run.state == RunState.PENDING:
        done = run_end_unclaimed(run, state=RunState.CANCELLED, now=now, message="cancelled on request")
    elif run.state == RunState.RUNNING:
        done = bool(Run.objects.fenced(run.id, run.fencing_token).filter(cancel_requested_at__isnull=True)
                    .update(cancel_requested_at=now)) or run.cancel_requested_at is not None
    else:
        done = False
    if done:
        audit_record(actor, obj=run, action="cancel", now=now, workspace_id=run.agent.workspace_id)
    return done

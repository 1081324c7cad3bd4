"""Process-linked schedules: a watch schedule ends when the process it watches ends.

A schedule's ``process_handle`` names a process: a background run
(``run:<id>``), or any handle an outside system reports ended with
``POST /api/v1/processes/{handle}/exited``. When the process ends, every live
schedule linked to it in that workspace is soft-deleted with the reason,
audited; for a run this happens in the transaction of its end, before its
completion is reported (``runs.services.ended``).
"""
from __future__ import annotations

from datetime import datetime

from schedules.models import Schedule
from schedules.services import schedule_delete
from workspaces.audit import Actor


def run_handle(run_id: int) -> str:
    return f"run:{run_id}"


def process_exited(workspace_id: int, handle: str, *, reason: str, now: datetime,
                   actor: Actor | None = None) -> list[int]:
    """Cancel every live schedule linked to ``handle`` in the workspace; their ids."""
    linked = list(Schedule.objects.live().filter(process_handle=handle, agent__workspace_id=workspace_id))
    for schedule in linked:
        schedule_delete(schedule, now=now, actor=actor or Actor.system(),
                        reason=f"process {handle} {reason}"[:500])
    return [schedule.pk for schedule in linked]


def processes_ended(workspace_id: int, run_ids: list[int], *, reason: str, now: datetime) -> None:
    """These runs ended (a run, and the parked runs it continues): the schedules watching any of them stop."""
    for run_id in run_ids:
        process_exited(workspace_id, run_handle(run_id), reason=reason, now=now)

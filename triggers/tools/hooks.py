"""Plugs the tools into the ledger's execute path (``runs.services.hooks``), called once at startup.

The ledger cannot import ``triggers``; this registers, from above, the
function tools offered to a run's model, the executor of their calls, the
directives of an HTTP agent's answer and what follows a run's end.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from adapters.base import ToolExecutor
from runs.models import Run
from runs.services.ended import parked_run_ended
from runs.services.hooks import run_hooks

from ..waits import continued, waitpoints_complete_for_run
from .directives import directives_apply
from .processes import processes_ended
from .registry import ToolContext, function_definitions, tool_answer


def tools_for(run: Run) -> tuple[dict[str, Any], ...]:
    return function_definitions()


def executor_for(run: Run) -> ToolExecutor:
    def execute(name: str, arguments: dict[str, Any]) -> str:
        # Read when the model asks: a conversation can take minutes, and a
        # delay measured from the attempt's start would land early.
        return tool_answer(ToolContext(run=run), name, arguments, now=timezone.now())
    return execute


def tools_install() -> None:
    hooks = run_hooks()
    hooks.tools = tools_for
    hooks.tool_executor = executor_for
    hooks.output = directives_apply
    if on_run_ended not in hooks.ended:
        hooks.ended.append(on_run_ended)


def on_run_ended(run: Run, now: datetime | None) -> None:
    """A run outside any schedule ended: its watchers stop, its waits complete, a parked tick's schedule plans.

    Only such a run can be a linked process or be waited for, so a scheduled
    tick's end costs no query here. A run that parked did not end: its work
    ends with its last resume, whose end is also the end of the runs it
    continues (``continued``, read once for both). ``now`` is None on the
    success path, whose end the database's clock stamped.
    """
    workspace_id = run.agent.workspace_id
    if run.schedule_id is not None or workspace_id is None:
        return
    ended, when = continued(run), now or timezone.now()
    # Watchers first: a resume never sees its watch schedule fire again.
    processes_ended(workspace_id, ended, reason=f"ended ({run.trigger} run {run.pk})", now=when)
    waitpoints_complete_for_run(run, ended, now=when)
    if len(ended) > 1:  # a resume: the run that first parked may be a scheduled tick awaiting its end
        parked_run_ended(ended[-1], ended=run, now=when)

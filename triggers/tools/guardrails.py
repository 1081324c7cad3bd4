"""The guardrails on what agents schedule (docs/autonomy.md, "Guardrails").

Each limit is a setting of the workspace (``workspaces.Workspace``, defaults
from the design). Every refusal is a ``ToolRefused`` whose message tells the
model what to change; over the API it is a ``quota-exceeded`` problem.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from runs.models import Run, Trigger
from schedules.models import Agent, CreatorKind, Schedule
from workspaces.models import Workspace

from .registry import ToolRefused

# A run started by one of these is unattended: it may ask for one-shot wakeups, never a recurring schedule.
# So is a run an agent's action started (its ``actor``): a background run an agent started, say.
UNATTENDED = (Trigger.SCHEDULE, Trigger.CATCHUP, Trigger.EVENT, Trigger.WAKEUP, Trigger.RESUME, Trigger.REPLAY)


def workspace_locked(run: Run) -> Workspace:
    """The run's workspace, its agent's row locked until the transaction ends.

    One tool call at a time per agent: the quotas count what the others
    committed, and a retried call that raced its first attempt finds that
    attempt's schedule or run once it gets the lock.
    """
    return Workspace.objects.get(agents=Agent.objects.select_for_update().get(pk=run.agent_id))


def check_delay(space: Workspace, delay: timedelta) -> None:
    seconds = delay.total_seconds()
    if seconds < space.agent_min_delay_seconds:
        raise ToolRefused(f"a one-shot schedule must be at least {space.agent_min_delay_seconds}s away (asked "
                          f"{seconds:.0f}s): pick a delay matched to how fast what you watch changes, or wait on "
                          f"an event instead of polling")
    if seconds > space.agent_max_delay_seconds:
        raise ToolRefused(f"a one-shot schedule may be at most {space.agent_max_delay_seconds}s "
                          f"({space.agent_max_delay_seconds // 86400} days) away (asked {seconds:.0f}s)")


def check_recurring(space: Workspace, run: Run, *, interval: timedelta | None) -> None:
    """A recurring schedule: only from an attended run, and no more often than the workspace allows."""
    if run.trigger in UNATTENDED or run.actor_id is not None:
        started_by = "an agent's run" if run.trigger not in UNATTENDED else f"a {run.trigger}"
        raise ToolRefused(f"this run was started by {started_by}, not by a person: it may create one-shot "
                          f"wakeups (at or in_seconds) only, never a recurring schedule")
    if interval is not None and interval.total_seconds() < space.agent_min_interval_seconds:
        raise ToolRefused(f"a recurring schedule may fire at most every {space.agent_min_interval_seconds}s "
                          f"(asked every {interval.total_seconds():.0f}s): poll less often, or wait on an event")


def check_quotas(space: Workspace, run: Run) -> None:
    """At most N active schedules made in this session, and M made by this agent."""
    active = Schedule.objects.live().filter(creator_kind=CreatorKind.AGENT_RUN, finished_reason="")
    if active.filter(origin_session_id=run.session_id).count() >= space.agent_max_per_session:
        raise ToolRefused(f"this session already has {space.agent_max_per_session} active schedules, the most "
                          f"allowed: cancel one you no longer need (action cancel) before creating another")
    if active.filter(origin_agent_id=run.agent_id).count() >= space.agent_max_per_agent:
        raise ToolRefused(f"this agent already has {space.agent_max_per_agent} active schedules, the most "
                          f"allowed: cancel one you no longer need before creating another")


def chain_over_budget(space: Workspace, *, wakeups: int, started_at: datetime | None, now: datetime) -> str:
    """Why a chain may not wake itself once more (``wakeups`` already spent), or ''."""
    if wakeups >= space.chain_max_wakeups:
        return f"the chain has woken itself {wakeups} times, the most allowed ({space.chain_max_wakeups})"
    if started_at is not None and now - started_at >= timedelta(seconds=space.chain_max_age_seconds):
        return f"the chain started at {started_at:%Y-%m-%dT%H:%M:%SZ}, longer ago than its " \
               f"{space.chain_max_age_seconds}s budget"
    return ""


def wakeups_over_budget(schedules: Sequence[Schedule], *, now: datetime) -> set[int]:
    """The wakeups among ``schedules`` whose chain has spent its budget: their tick is recorded skipped.

    One query for the batch's workspaces, only when a wakeup is due at all.
    """
    wakeups = [schedule for schedule in schedules if schedule.is_wakeup]
    if not wakeups:
        return set()
    spaces = Workspace.objects.filter(agents__schedules__in=[s.pk for s in wakeups]).distinct()
    by_agent = {agent_id: space for space in spaces for agent_id in space.agents.values_list("id", flat=True)}
    return {s.pk for s in wakeups if s.agent_id in by_agent and chain_over_budget(
        by_agent[s.agent_id], wakeups=s.origin_wakeup_count, started_at=s.origin_chain_started_at, now=now)}

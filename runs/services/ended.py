"""The one "run ended" hook: every terminal transition of a run goes through ``run_ended``.

A run can end in many places: the worker's outcome (succeeded, cancelled,
failed, dead, unknown), the claim (skipped by the overlap policy), the worker
before the claim (an inactive agent, an input that cannot be rendered, an
unknown adapter kind), the lease reaper and the housekeeping's fallback for a
row it cannot settle. Each of those is a fenced compare-and-set, so exactly one
writer wins it, and only the winner calls this hook: what follows a run's end
(the failure streak, an after-completion schedule's next tick, the completion
webhook's delivery row) happens once. Callers run the hook in the transaction of
the transition, so a crash cannot commit the end without what follows it.
"""
from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now

from alerts.models import AlertKind
from alerts.services import alert_raise
from core import metrics
from schedules.models import Schedule
from schedules.services import schedule_after_run, schedule_pause

from ..models import FAILURE_STATES, TIMELINE_TRIGGERS, Run, RunState
from ..publish import Send, publish_runs_on_commit
from .hooks import run_hooks
from .outbound import destination, outbound_on_run_end
from .scope import scope_filter

log = logging.getLogger("tickwise.outcome")


def ending(run: Run) -> AbstractContextManager[object]:
    """The transaction a terminal transition and ``run_ended`` share, when the end must write more.

    A run with a completion webhook gets its delivery row in the same commit
    as its end (both or neither). Without one, a success stays a single
    statement on the worker's hot path: what follows it is idempotent
    (a streak reset, a next tick the beat would plan anyway).
    """
    # A run outside any schedule may be a process that schedules watch (docs/autonomy.md): they are
    # cancelled by the ``ended`` hooks in the same commit as its end, never after it.
    return transaction.atomic() if destination(run) or run.schedule_id is None else nullcontext()


def run_ended(run: Run, *, now: datetime | None, failed: bool) -> None:
    """After a terminal transition: the completion webhook, the failure streak (``failed``), the next tick.

    A success resets the streak in its own statement (``sql.SUCCESS``); only a
    failure needs ``now`` (an auto-pause is stamped with it). The hooks a
    higher layer registered (``hooks.RunHooks.ended``: schedules watching the
    run as a process are cancelled) run first, before the completion is reported.
    """
    for hook in run_hooks().ended:
        hook(run, now)
    outbound_on_run_end(run)
    _wake_buffered(run)
    if run.schedule_id is None:
        return
    if failed:
        if now is None:
            raise TypeError("a failed run's end needs now=")
        count_failure(run.schedule_id, now=now)
    _plan_next_tick(run)


BUFFERING = ("buffer_one", "buffer")


def _wake_buffered(run: Run) -> None:
    """Offer the scope's oldest buffered run now, rather than at its recheck.

    Only a speed-up: the woken run's claim decides under the scope's lock as
    always, and the sweeper still offers it at ``not_before`` if this message
    is lost. Without it, a chat session's buffered events start seconds apart.
    """
    if run.overlap_policy not in BUFFERING:
        return
    waiting = (Run.objects.filter(scope_filter(run), state=RunState.PENDING, buffered=True)
               .exclude(id=run.id).order_by("id").values_list("id", "trigger", "timeout_seconds").first())
    if waiting is not None:
        pk, trigger, timeout = waiting
        publish_runs_on_commit([pk], sends={pk: Send.of(trigger, timeout)})


def _plan_next_tick(run: Run, *, ended_id: int | None = None) -> None:
    """An after-completion schedule plans its next tick from the end of its latest tick's run.

    Only a timeline run (``schedule``, ``catchup``) and only the schedule's
    latest one plans: a manual run that ends while the beat's run is in flight,
    or a replayed old run that ends after newer ticks, would otherwise plan a
    second tick beside the one in flight. ``ended_id``: the run whose end is
    ``run``'s, when ``run`` parked and its last resume ended (``parked_run_ended``).
    """
    schedule = run.schedule
    if schedule is None or not schedule.awaits_completion or run.trigger not in TIMELINE_TRIGGERS:
        return
    newer = Run.objects.filter(schedule_id=schedule.id, trigger__in=TIMELINE_TRIGGERS, tick_at__gt=run.tick_at)
    if newer.exists():
        return
    finished_at = Run.objects.filter(id=ended_id or run.id).values_list("finished_at", flat=True).first()
    if finished_at is not None:
        schedule_after_run(schedule.id, finished_at=finished_at)


def parked_run_ended(parked_id: int, *, ended: Run, now: datetime) -> None:
    """A scheduled run that parked ended with ``ended``, its last resume: what follows a tick's end follows.

    A parked run is not ended (docs/autonomy.md): an after-completion
    schedule waits through the park and plans from the resume's end, and a
    resume that fails extends the schedule's failure streak (auto-pause) as
    the tick's own failure would. Called by the ``ended`` hook that walks a
    resume back to the runs it continues; the resume has no schedule of its own.
    """
    parked = Run.objects.select_related("schedule").filter(id=parked_id).first()
    if parked is None or parked.schedule_id is None:
        return
    if Run.objects.filter(id=ended.pk, state__in=FAILURE_STATES).exists():
        count_failure(parked.schedule_id, now=now)
    _plan_next_tick(parked, ended_id=ended.pk)


def count_failure(schedule_id: int, *, now: datetime) -> None:
    """One more failure in a row; auto-pause (with an alert) at the schedule's limit."""
    Schedule.objects.filter(id=schedule_id).update(consecutive_failures=F("consecutive_failures") + 1)
    schedule = Schedule.objects.get(id=schedule_id)
    if schedule.failure_limit and schedule.consecutive_failures >= schedule.failure_limit and not schedule.paused:
        reason = f"auto-paused after {schedule.consecutive_failures} consecutive failures"
        schedule_pause(schedule, reason=reason, now=now)
        alert_raise(AlertKind.AUTO_PAUSE, key=f"schedule:{schedule.id}", title=f"{schedule} {reason}",
                    detail=_last_error(schedule_id), workspace_id=schedule.agent.workspace_id, now=now)


def _last_error(schedule_id: int) -> str:
    """The latest failure's category and message, for the alert's detail."""
    # Newest tick first: the run history index (schedule, -tick_at), not a walk of the primary key.
    last = (Run.objects.filter(schedule_id=schedule_id).exclude(error_message="").order_by("-tick_at")
            .values_list("error_category", "error_message").first())
    return f"last error ({last[0] or 'uncategorised'}): {last[1]}" if last else ""


def run_end_unclaimed(run: Run, *, state: str, now: datetime, skip_reason: str = "", category: str = "",
                      message: str = "") -> bool:
    """End a ``pending`` run that this delivery read, without running it (fenced by its token).

    A failure here counts as the run's attempt (it was the attempt that
    could not start); a skip takes none, as a tick skipped by the beat does.
    False when another delivery moved the run first.
    """
    fields: dict[str, object] = {"state": state, "skip_reason": skip_reason, "error_category": category,
                                 "error_message": message[:2000], "finished_at": Now(), "buffered": False,
                                 "lease_expires_at": None, "fencing_token": F("fencing_token") + 1}
    failed = state not in (RunState.SKIPPED, RunState.CANCELLED)  # a cancel on request is no failure
    if failed:
        fields.update(attempt=F("attempt") + 1, started_at=Now())
    with transaction.atomic():
        if not Run.objects.fenced(run.id, run.fencing_token, RunState.PENDING).update(**fields):
            return False
        metrics.run_finished(run.trigger, state, category, skip_reason=skip_reason)
        run_ended(run, now=now, failed=failed)
    return True


def one_line(error: BaseException) -> str:
    """``ValueError: could not convert …``: an exception as one line for the ledger."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

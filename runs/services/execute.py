"""Execute one run: claim, call the agent outside any transaction, record the outcome.

The claim is a compare-and-set on ``(state=pending, fencing_token=T)`` that
moves the row to ``running`` with token ``T+1``; every later write of this
attempt is conditional on ``T+1``. A second delivery of the same message, or
a stale worker whose lease was taken over, finds nothing to update.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Now

from schedules.inputs import render_template
from schedules.models import Schedule

from ..adapters import AdapterError, AgentRequest, adapter_for
from ..models import ErrorCategory, Run, RunState

log = logging.getLogger("tickwise.execute")


@dataclass(frozen=True)
class Claim:
    run: Run
    token: int


def run_claim(run_id: int, *, owner: str) -> Claim | None:
    run = Run.objects.select_related("schedule", "agent").filter(id=run_id).first()
    if run is None or run.state != RunState.PENDING:
        return None
    lease = timedelta(seconds=run.schedule.timeout_seconds + settings.TICKWISE["LEASE_MARGIN"])
    won = Run.objects.filter(
        Q(not_before__isnull=True) | Q(not_before__lte=Now()),
        id=run_id, state=RunState.PENDING, fencing_token=run.fencing_token,
    ).update(
        state=RunState.RUNNING, attempt=F("attempt") + 1, fencing_token=F("fencing_token") + 1,
        lease_owner=owner, lease_expires_at=Now() + lease, started_at=Now(),
    )
    if not won:
        log.info("run %s: claimed elsewhere or not yet due", run_id)
        return None
    run.refresh_from_db()
    return Claim(run=run, token=run.fencing_token)


def run_execute(run_id: int, *, owner: str, now: datetime) -> str | None:
    """Run one attempt; returns the state recorded, or None when there was nothing to do."""
    claim = run_claim(run_id, owner=owner)
    if claim is None:
        return None
    run = claim.run
    run_input = _render_input(run)
    Run.objects.filter(id=run.id, fencing_token=claim.token).update(input=run_input)
    try:
        output = adapter_for(run.agent.adapter).call(_request(run, run_input))
    except AdapterError as error:
        return _record_failure(claim, error, now=now)
    return _record_success(claim, output)


def _render_input(run: Run) -> str:
    schedule = run.schedule
    tick = run.tick_at
    values = {
        "date": tick.date().isoformat(), "day_of_week": tick.strftime("%A"),
        "timestamp": int(tick.timestamp()), "run_number": run.run_number,
        "tick_at": tick.isoformat(), "period_start": run.period_start.isoformat() if run.period_start else "",
        "period_end": run.period_end.isoformat() if run.period_end else "", "schedule": str(schedule),
    }
    return render_template(schedule.input_template, values)


def _request(run: Run, run_input: str) -> AgentRequest:
    return AgentRequest(
        run_id=run.id, agent=run.agent.name, config=run.agent.config, input=run_input,
        session_id=run.session_id, tick_at=run.tick_at, trigger=run.trigger,
        idempotency_key=run.idempotency_key, attempt=run.attempt,
        timeout_seconds=run.schedule.timeout_seconds,
    )


def _record_success(claim: Claim, output: Any) -> str | None:
    done = _fenced(claim).update(state=RunState.SUCCEEDED, output=output, finished_at=Now(),
                                 lease_expires_at=None, error_category="", error_message="")
    if not done:
        log.warning("run %s: outcome rejected, attempt token %s is stale", claim.run.id, claim.token)
        return None
    Schedule.objects.filter(id=claim.run.schedule_id).update(consecutive_failures=0)
    return RunState.SUCCEEDED


def _record_failure(claim: Claim, error: AdapterError, *, now: datetime) -> str | None:
    run = claim.run
    retry = error.transient and run.attempt < run.max_attempts
    fields: dict[str, Any] = {"error_category": error.category or ErrorCategory.AGENT_ERROR,
                              "error_message": str(error)[:2000], "lease_expires_at": None}
    if retry:
        fields.update(state=RunState.PENDING, published_at=None, not_before=now + _backoff(run))
    else:
        fields.update(state=RunState.DEAD if error.transient else RunState.FAILED, finished_at=Now())
    if not _fenced(claim).update(**fields):
        log.warning("run %s: failure rejected, attempt token %s is stale", run.id, claim.token)
        return None
    if not retry:
        _count_failure(run.schedule, now=now)
    return fields["state"]


def _backoff(run: Run) -> timedelta:
    """Exponential backoff with full jitter, capped."""
    schedule = run.schedule
    ceiling = min(schedule.retry_backoff_max_seconds, schedule.retry_backoff_seconds * 2 ** (run.attempt - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _count_failure(schedule: Schedule, *, now: datetime) -> None:
    Schedule.objects.filter(id=schedule.id).update(consecutive_failures=F("consecutive_failures") + 1)
    schedule.refresh_from_db(fields=["consecutive_failures", "failure_limit", "paused"])
    if schedule.failure_limit and schedule.consecutive_failures >= schedule.failure_limit and not schedule.paused:
        from schedules.services import schedule_pause

        schedule_pause(schedule, reason=f"auto-paused after {schedule.consecutive_failures} consecutive failures",
                       now=now)
        log.error("schedule %s auto-paused after %s consecutive failures", schedule, schedule.consecutive_failures)


def _fenced(claim: Claim):
    return Run.objects.filter(id=claim.run.id, state=RunState.RUNNING, fencing_token=claim.token)

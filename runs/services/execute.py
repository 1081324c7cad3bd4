"""Execute one attempt of a run: claim, intent, call, outcome.

No transaction is held across the agent call. The claim (``claim.py``) fences
the attempt; the intent row is written before the call and completed after it
(``outcome.py``); a heartbeat keeps the lease while the agent works.
"""
from __future__ import annotations

import logging
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded

from adapters import AdapterError, AgentRequest, adapter_for
from core.inputs import render_template

from ..models import ErrorCategory, Run, RunState
from . import outcome
from .claim import Claim, lease_for, run_claim, run_load
from .heartbeat import Heartbeat

log = logging.getLogger("tickwise.execute")

HISTORY_LIMIT = 20


def run_execute(run_id: int, *, owner: str, now: datetime) -> str | None:
    """Run one attempt; returns the state recorded, or None when there was nothing to do."""
    run = run_load(run_id)
    if run is None or run.state != RunState.PENDING:
        return None  # a duplicate delivery: another attempt owns (or finished) the run
    run_input = render_input(run)
    claim = run_claim(run, owner=owner, now=now, intent=run_input)
    if claim is None:
        return None
    watch_cancel = claim.run.overlap_policy == "cancel_previous"
    adapter = adapter_for(claim.run.agent.adapter)
    with Heartbeat(claim.run.id, claim.token, lease_for(claim.run), watch_cancel=watch_cancel) as heartbeat:
        try:
            output = adapter.call(_request(claim.run, run_input, heartbeat))
        except AdapterError as error:
            if _may_have_acted(error) and not adapter.idempotent:
                # The request went out and no usable answer came back: the agent
                # may have acted, and it does not dedupe by key. Surface, don't retry.
                return outcome.record_unknown(claim, message=str(error), category=error.category, now=now)
            return outcome.record_failure(claim, message=str(error), category=error.category,
                                          transient=error.transient, now=now, retry_after=error.retry_after)
        except SoftTimeLimitExceeded:
            return _timed_out(claim, now=now)
    return outcome.record_success(claim, output, cancelled=heartbeat.cancelled.is_set())


def _may_have_acted(error: AdapterError) -> bool:
    """Whether retrying could repeat an effect (only a retry is at stake: permanent errors end ``failed``).

    Adapters say so (``AdapterError.reached``); one that cannot tell is taken
    at its word only for timeouts, where the request is known to have left.
    """
    if not error.transient:
        return False
    return error.reached if error.reached is not None else error.category == ErrorCategory.TIMEOUT


def _timed_out(claim: Claim, *, now: datetime) -> str | None:
    timeout = claim.run.timeout_seconds
    return outcome.record_failure(claim, message=f"no answer within {timeout}s", category=ErrorCategory.TIMEOUT,
                                  transient=False, now=now)


def render_input(run: Run) -> str:
    """The schedule's template for this tick; a run without a schedule carries its input."""
    if run.schedule is None:
        return run.input
    tick = run.tick_at
    values = {
        "date": tick.date().isoformat(), "day_of_week": tick.strftime("%A"),
        "timestamp": int(tick.timestamp()), "run_number": run.run_number,
        "tick_at": tick.isoformat(), "schedule": str(run.schedule),
        "period_start": run.period_start.isoformat() if run.period_start else "",
        "period_end": run.period_end.isoformat() if run.period_end else "",
    }
    return render_template(run.schedule.input_template, values)


def _request(run: Run, run_input: str, heartbeat: Heartbeat) -> AgentRequest:
    return AgentRequest(
        run_id=run.id, agent=run.agent.name, config=run.agent.config, input=run_input,
        session_id=run.session_id, tick_at=run.tick_at, trigger=run.trigger,
        idempotency_key=run.idempotency_key, attempt=run.attempt,
        timeout_seconds=run.timeout_seconds,
        extra={"history": session_history(run)}, cancel=heartbeat.cancelled,
    )


def session_history(run: Run) -> list[dict[str, str]]:
    """Earlier exchanges of a persistent session, oldest first (for chat adapters)."""
    if run.session_mode != "persistent":
        return []
    earlier = (Run.objects.filter(session_id=run.session_id, state=RunState.SUCCEEDED, id__lt=run.id)
               .order_by("-id").values_list("input", "output")[:HISTORY_LIMIT])
    history: list[dict[str, str]] = []
    for run_input, output in reversed(earlier):
        reply = output.get("message") if isinstance(output, dict) else None
        history.append({"role": "user", "content": run_input})
        if isinstance(reply, dict) and "content" in reply:
            history.append({"role": "assistant", "content": str(reply["content"])})
    return history

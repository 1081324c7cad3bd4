"""Execute one attempt of a run: claim, intent, call, outcome.

No transaction is held across the agent call. The claim (``claim.py``) fences
the attempt; the intent row is written before the call and completed after it
(``outcome.py``); a heartbeat keeps the lease while the agent works.

Every way an attempt can go wrong ends the run at once, under the same
fencing, instead of leaving it for the reaper: an inactive agent
(``skipped: inactive_agent``), an input that cannot be rendered or an adapter
kind that does not exist (``failed: config``, before any claim), and an
adapter that raises something other than ``AdapterError`` (see
``_unexpected``).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, transaction

from adapters import Adapter, AdapterError, AgentRequest, adapter_for
from core import logcontext, metrics
from core.inputs import render_template

from ..models import ErrorCategory, Run, RunState, SkipReason
from . import outcome
from .claim import Claim, lease_for, run_claim, run_load
from .ended import one_line, run_end_unclaimed
from .heartbeat import Heartbeat
from .hooks import run_hooks
from .tokens import run_token_mint

log = logging.getLogger("tickwise.execute")

HISTORY_LIMIT = 20
# A ``message`` payload (a reminder an agent scheduled) is delivered as it is: no agent call, no LLM.
MESSAGE = "message"


class Unstartable(Exception):
    """This attempt cannot start: the run ends with ``state`` and the message, without a claim."""

    def __init__(self, message: str, *, state: str = RunState.FAILED, skip_reason: str = "") -> None:
        super().__init__(message)
        self.state, self.skip_reason = state, skip_reason


def run_execute(run_id: int, *, owner: str, now: datetime) -> str | None:
    """Run one attempt; returns the state recorded, or None when there was nothing to do."""
    run = run_load(run_id)
    if run is None or run.state != RunState.PENDING or (run.not_before and run.not_before > now):
        return None  # a duplicate delivery (another attempt owns or finished the run), or a retry not due
    with logcontext.run_bound(run.id, schedule_id=run.schedule_id, trigger=run.trigger, chain_id=run.chain_id):
        return _execute(run, owner=owner, now=now)


def _execute(run: Run, *, owner: str, now: datetime) -> str | None:
    try:
        adapter, run_input = _prepare(run)
    except Unstartable as reason:
        return _end_unstarted(run, reason, now=now)
    claim = run_claim(run, owner=owner, now=now, intent=run_input)
    if claim is None:
        return None
    started = time.monotonic()
    state = _attempt(claim, adapter, run_input, now=now)
    metrics.RUN_DURATION.labels(run.trigger, state or "rejected").observe(time.monotonic() - started)
    return state


def _prepare(run: Run) -> tuple[Adapter, str]:
    """The adapter and the rendered input; ``Unstartable`` when the run cannot start.

    Checked before the claim: none of these can be helped by a retry, and a
    run that cannot start must end now, not wait for a lease to expire.
    """
    if not run.agent.is_active:
        if run.attempt == 0:
            raise Unstartable(f"agent {run.agent.name} is inactive", state=RunState.SKIPPED,
                              skip_reason=SkipReason.INACTIVE_AGENT)
        # An earlier attempt ran: "skipped" would say the tick never ran.
        raise Unstartable(f"agent {run.agent.name} became inactive before attempt {run.attempt + 1}")
    try:
        adapter = adapter_for(MESSAGE if run.payload_type == MESSAGE else run.agent.adapter)
    except AdapterError as error:
        raise Unstartable(str(error)) from error
    try:
        return adapter, render_input(run)
    except DatabaseError:
        raise
    except Exception as error:  # the template, the zone: a saved definition the worker cannot use
        raise Unstartable(f"input could not be rendered: {one_line(error)}") from error


def _end_unstarted(run: Run, reason: Unstartable, *, now: datetime) -> str | None:
    message = str(reason)
    category = "" if reason.state == RunState.SKIPPED else ErrorCategory.CONFIG
    if not run_end_unclaimed(run, state=reason.state, skip_reason=reason.skip_reason, category=category,
                             message=message, now=now):
        return None  # another delivery moved the run first
    log.warning("run %s: %s: %s", run.id, reason.skip_reason or "failed before the call", message)
    return reason.state


def _attempt(claim: Claim, adapter: Adapter, run_input: str, *, now: datetime) -> str | None:
    watch_cancel = claim.run.overlap_policy == "cancel_previous"
    started = time.monotonic()
    token = run_token_mint(claim.run, now=now)
    with Heartbeat(claim.run.id, claim.token, lease_for(claim.run), watch_cancel=watch_cancel) as heartbeat:
        try:
            output = adapter.call(_request(claim.run, run_input, heartbeat, token=token))
        except AdapterError as error:
            return _failed(claim, adapter, error, now=_after(now, started))
        except SoftTimeLimitExceeded:
            return _timed_out(claim, now=_after(now, started))
        except Exception as error:
            return _unexpected(claim, adapter, error, now=_after(now, started))
    return _succeeded(claim, output, cancelled=heartbeat.cancelled.is_set(), now=_after(now, started))


def _succeeded(claim: Claim, output: object, *, cancelled: bool, now: datetime) -> str | None:
    """Record the answer; what it asks of Tickwise (``{"tickwise": …}``) is applied in the same transaction.

    The directives (a wakeup, schedules, a wait) are ``triggers``' to apply,
    through the hook it registers (``hooks.RunHooks.output``): both commit or
    neither, and a stale attempt's directives roll back with its refused write.
    """
    apply = run_hooks().output
    if apply is None or cancelled or not (isinstance(output, dict) and "tickwise" in output):
        state = outcome.record_success(claim, output, cancelled=cancelled)
        if state is None and _parked(claim, output):
            return RunState.WAITING  # the agent parked through the wait tool while it answered
        return state
    with transaction.atomic():
        stored = apply(claim.run, output, now)
        if _parked(claim, stored):
            return RunState.WAITING  # a ``wait`` directive parked the attempt: the park is its outcome
        state = outcome.record_success(claim, stored, cancelled=cancelled)
        if state is None:
            transaction.set_rollback(True)
    return state


def _parked(claim: Claim, output: object) -> bool:
    """Whether this attempt parked on a waitpoint (a directive, or the tool API); if so, the answer is stored on it.

    The park (``triggers.waits``) moved the run from ``running`` to
    ``waiting`` under the same token, in this transaction: not a success
    to record, and not a stale attempt to roll back.
    """
    parked = Run.objects.fenced(claim.run.id, claim.token, RunState.WAITING)
    return bool(parked.update(output=outcome.storable(output)))


def _after(now: datetime, started: float) -> datetime:
    """When the call ended: the attempt's ``now`` plus the call's duration.

    A failure's backoff and ``Retry-After`` count from here: from the
    attempt's start, a slow failure would be retried sooner than promised.
    """
    return now + timedelta(seconds=time.monotonic() - started)


def _failed(claim: Claim, adapter: Adapter, error: AdapterError, *, now: datetime) -> str | None:
    if _may_have_acted(error) and not adapter.idempotent:
        # The request went out and no usable answer came back: the agent
        # may have acted, and it does not dedupe by key. Surface, don't retry.
        return outcome.record_unknown(claim, message=str(error), category=error.category, now=now)
    return outcome.record_failure(claim, message=str(error), category=error.category,
                                  transient=error.transient, now=now, retry_after=error.retry_after)


def _unexpected(claim: Claim, adapter: Adapter, error: Exception, *, now: datetime) -> str | None:
    """An adapter raised something other than ``AdapterError``: a bug, or a config it did not check.

    Settled at once, never retried (the same code fails the same way). It may
    have raised after the agent acted (while reading the answer, say), so for
    an adapter that does not dedupe by key the run is ``unknown``, as a worker
    that died mid-call would leave it; for one that does, ``failed``.
    """
    log.warning("run %s: adapter %s raised", claim.run.id, adapter.kind, exc_info=True)
    message = f"adapter {adapter.kind} raised {one_line(error)}"
    if not adapter.idempotent:
        return outcome.record_unknown(claim, message=message, category=ErrorCategory.AGENT_ERROR, now=now)
    return outcome.record_failure(claim, message=message, category=ErrorCategory.AGENT_ERROR, transient=False,
                                  now=now)


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
    """The schedule's template for this tick; a run that already has its input keeps it.

    ``date`` and ``day_of_week`` are the tick's calendar day in the schedule's
    own zone (08:00 Wednesday in Tokyo is Tuesday in UTC); ``tick_at``,
    ``period_start`` and ``period_end`` are UTC instants, ``timestamp`` Unix
    seconds.
    """
    if run.schedule is None or run.input:
        return run.input  # a run without a schedule, a manual run's own input, or an earlier attempt's
    tick = run.tick_at
    local = tick.astimezone(ZoneInfo(run.schedule.timezone))
    values = {
        "date": local.date().isoformat(), "day_of_week": local.strftime("%A"),
        "timestamp": int(tick.timestamp()), "run_number": run.run_number,
        "tick_at": tick.isoformat(), "schedule": str(run.schedule),
        "period_start": run.period_start.isoformat() if run.period_start else "",
        "period_end": run.period_end.isoformat() if run.period_end else "",
    }
    return render_template(run.schedule.input_template, values)


def _request(run: Run, run_input: str, heartbeat: Heartbeat, *, token: str = "") -> AgentRequest:
    hooks = run_hooks()
    return AgentRequest(
        run_id=run.id, agent=run.agent.name, config={} if run.payload_type == MESSAGE else run.agent.config,
        input=run_input,
        session_id=run.session_id, tick_at=run.tick_at, trigger=run.trigger,
        idempotency_key=run.idempotency_key, attempt=run.attempt,
        timeout_seconds=run.timeout_seconds,
        extra={"history": session_history(run)}, cancel=heartbeat.cancelled,
        workspace_id=run.agent.workspace_id, run_token=token, tools_url=tools_url(run),
        tools=hooks.tools(run) if hooks.tools else (),
        tool_executor=hooks.tool_executor(run) if hooks.tool_executor else None,
    )


def tools_url(run: Run) -> str:
    """Where this run's tools answer, from ``TICKWISE_PUBLIC_URL``; empty when the server's address is unknown."""
    base = settings.TICKWISE["PUBLIC_URL"].rstrip("/")
    return f"{base}/api/v1/runs/{run.id}/tools" if base else ""


def session_history(run: Run) -> list[dict[str, str]]:
    """Earlier exchanges of a persistent session, oldest first (for chat adapters).

    A run parked on a waitpoint (``waiting``) is part of the conversation: its
    resume, the next run of the session, carries the completion as its input.
    """
    if run.session_mode != "persistent":
        return []
    answered = (RunState.SUCCEEDED, RunState.WAITING)
    earlier = (Run.objects.filter(session_id=run.session_id, state__in=answered, id__lt=run.id)
               .order_by("-id").values_list("input", "output")[:HISTORY_LIMIT])
    history: list[dict[str, str]] = []
    for run_input, output in reversed(earlier):
        reply = output.get("message") if isinstance(output, dict) else None
        history.append({"role": "user", "content": run_input})
        if isinstance(reply, dict) and "content" in reply:
            history.append({"role": "assistant", "content": str(reply["content"])})
    return history

"""Waitpoints: a run parks until a token is completed, an event arrives or a timer fires, then resumes.

Parking is one transaction: the waitpoint row and the run's fenced move from
``running`` to ``waiting`` commit together or not at all, so a worker killed
mid-park leaves a running run for the lease reaper, never a waiting run
without a waitpoint. Completing is a conditional update (``waiting`` to
``completed`` or ``timed_out``) whose one winner dispatches the resume: a
new run, trigger ``resume``, identity ``waitpoint:<id>`` (one per waitpoint
in the ledger), in the parked run's session, agent and chain, whose input is
``{"ok": true, "payload": …}`` or ``{"ok": false, "reason": "timeout"}``.

Event waits and the event router meet under one advisory lock per
workspace: parking takes it before it reads the event ledger (an event
received since the run started completes the wait at once), the router
takes it before it reads the open waits. Whichever comes second sees the
other's commit, so no wake-up is lost between them. See docs/autonomy.md.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils.crypto import constant_time_compare, salted_hmac
from pydantic import BaseModel, Field, model_validator

from core import metrics
from core.faults import fault_point
from events.matching import (
    SubscriptionInvalid,
    event_type_check,
    event_view,
    match_check,
    payload_matches,
    type_matches,
)
from events.models import InboundEvent
from runs.models import TERMINAL_STATES, AgentCall, CallState, Run, RunState, SkipReason, Trigger
from runs.services.dispatch import Causation, RunPolicy, UnscheduledRequest, run_dispatch_unscheduled, unscheduled_key
from runs.services.ended import run_ended
from schedules.authz import creator_may_run
from triggers.tools.registry import Tool, ToolContext, ToolRefused, tool_register
from waitpoints.models import MAX_WAIT_SECONDS, WaitKind, Waitpoint, WaitState
from workspaces.audit import Actor, audit_record

log = logging.getLogger("tickwise.waits")

# pg_advisory_xact_lock(class, workspace): parks and the router's reads of open event waits.
EVENT_LOCK_CLASS = 0x77616974  # "wait"
# Events scanned at park time for one received since the run started (newest runs see few).
EARLY_EVENT_SCAN = 500
SWEEP_BATCH = 500
# How many parks a run wait follows from a run to its latest resume (and back).
CONTINUATION_LIMIT = 100
_SALT = "tickwise.waitpoint.callback"


class WaitRefused(ValueError):
    """The wait cannot be made (the run is not running under this attempt, a bad spec); says why."""


class WaitIn(BaseModel):
    """The ``wait`` tool: park this run until a token, an event or a timer; always with a timeout."""

    kind: Literal["token", "event", "timer", "run"] = Field(
        description="token: resume when someone completes the waitpoint (API or callback URL); event: when an "
                    "event of this workspace matches; timer: after `seconds`; run: when run `run_id` ends.")
    timeout_seconds: int = Field(ge=1, le=MAX_WAIT_SECONDS, description=(
        "Required. Give up after this many seconds (at most 30 days) and resume with "
        '{"ok": false, "reason": "timeout"}.'))
    event_type: str = Field("", description="event: the event type, or a prefix ending in .* (deploy.*).")
    match: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description='event: payload equalities on dotted paths, e.g. {"data.repo": "web"}.')
    seconds: int | None = Field(None, ge=1, le=MAX_WAIT_SECONDS, description="timer: resume after this many seconds.")
    run_id: int | None = Field(None, ge=1, description="run: the run whose end you wait for (a background run, "
                                                      "or any run of this workspace outside a schedule).")
    reason: str = Field("", max_length=500, description="Why the run waits, shown to people.")

    @model_validator(mode="after")
    def _kind_fields(self) -> WaitIn:
        if self.kind == "event":
            try:
                event_type_check(self.event_type)
                match_check(self.match)
            except SubscriptionInvalid as invalid:
                raise ValueError(str(invalid)) from None
        elif self.event_type or self.match:
            raise ValueError(f"event_type and match: only for kind event, not {self.kind}")
        if self.kind == "timer" and self.seconds is None:
            raise ValueError("seconds: required for kind timer")
        if self.kind != "timer" and self.seconds is not None:
            raise ValueError(f"seconds: only for kind timer, not {self.kind}")
        if (self.kind == "run") != (self.run_id is not None):
            raise ValueError("run_id: required for kind run" if self.kind == "run"
                             else f"run_id: only for kind run, not {self.kind}")
        if self.seconds is not None and self.seconds > self.timeout_seconds:
            raise ValueError("seconds: must not exceed timeout_seconds")
        return self


@dataclass(frozen=True)
class Parked:
    """A new waitpoint, and where it is completed."""

    waitpoint: Waitpoint
    complete_url: str
    callback_url: str

    def as_dict(self) -> dict[str, Any]:
        wait = self.waitpoint
        return {"waitpoint": str(wait.id), "kind": wait.kind, "state": wait.state,
                "timeout_at": wait.timeout_at.isoformat(), "complete_url": self.complete_url,
                "callback_url": self.callback_url}


@dataclass(frozen=True)
class Completion:
    """A waitpoint after a completion attempt; ``fresh`` when this call was the one that ended it."""

    waitpoint: Waitpoint
    fresh: bool


# --- signing and URLs ---------------------------------------------------------------------------

def callback_signature(waitpoint_id: uuid.UUID | str) -> str:
    """HMAC of the server secret over the waitpoint's id: the callback URL's only credential."""
    return salted_hmac(_SALT, str(waitpoint_id), algorithm="sha256").hexdigest()


def callback_signature_valid(waitpoint_id: uuid.UUID | str, signature: str) -> bool:
    return constant_time_compare(callback_signature(waitpoint_id), signature or "")


def waitpoint_urls(waitpoint: Waitpoint, *, base_url: str = "") -> tuple[str, str]:
    """The API completion route and the pre-signed callback URL (absolute when a base is known)."""
    base = (settings.TICKWISE["PUBLIC_URL"] or base_url).rstrip("/")
    path = f"{base}/api/v1/waitpoints/{waitpoint.id}"
    return f"{path}/complete", f"{path}/callback?sig={callback_signature(waitpoint.id)}"


# --- parking ------------------------------------------------------------------------------------

def waitpoint_create(run_id: int, spec: WaitIn, *, now: datetime, attempt: int | None = None,
                     output: Any = None, base_url: str = "") -> Parked:
    """Park ``run_id`` (running, under ``attempt`` when given) on a new waitpoint; ``WaitRefused`` otherwise.

    ``output`` is stored as the parked attempt's output (an HTTP agent's
    answer carrying a ``wait`` directive); without one, the waitpoint's id.
    """
    with transaction.atomic():
        run = _running(run_id, attempt)
        workspace_id = _workspace_of(run)
        if spec.kind == "event":
            _lock_events(workspace_id)
        watched = _watchable(run, spec.run_id, workspace_id) if spec.run_id is not None else None
        waitpoint = Waitpoint.objects.create(
            run=run, agent_id=run.agent_id, workspace_id=workspace_id, session_id=run.session_id,
            kind=spec.kind, event_type=spec.event_type, match=spec.match, reason=spec.reason, created_at=now,
            resume_at=now + timedelta(seconds=spec.seconds) if spec.seconds is not None else None,
            timeout_at=now + timedelta(seconds=spec.timeout_seconds), watched_run=watched)
        _park(run, waitpoint, output=output, now=now)
        fault_point("waitpoint.park")  # crash tests: the park must roll back whole
        if spec.kind == "event":
            _complete_if_already_arrived(run, waitpoint, now=now)
        if watched is not None:
            _complete_if_already_ended(waitpoint, watched, now=now)
    waitpoint.refresh_from_db()
    complete_url, callback_url = waitpoint_urls(waitpoint, base_url=base_url)
    return Parked(waitpoint=waitpoint, complete_url=complete_url, callback_url=callback_url)


def waitpoint_reply(owner: Run, watched: Run, *, timeout_seconds: int, now: datetime, reason: str = "") -> Waitpoint:
    """A background run's reply: ``owner``'s session gets ``watched``'s outcome as a resume when it ends.

    A run wait that does not park ``owner`` (``parks_run`` false): the run
    that asked may have finished long before. Made in the transaction that
    dispatched ``watched``, so no end of it can come first unseen; a run the
    dispatch already recorded as skipped completes it at once.
    """
    workspace_id = _workspace_of(owner)
    waitpoint = Waitpoint.objects.create(
        run=owner, agent_id=owner.agent_id, workspace_id=workspace_id, session_id=owner.session_id,
        kind=WaitKind.RUN, watched_run=watched, parks_run=False, reason=reason[:500], created_at=now,
        timeout_at=now + timedelta(seconds=timeout_seconds))
    _complete_if_already_ended(waitpoint, watched, now=now)
    return waitpoint


def _running(run_id: int, attempt: int | None) -> Run:
    """The run, locked, while its attempt is running: a wait from a stale attempt is refused."""
    runs = Run.objects.select_for_update(of=("self",)).select_related("agent").filter(id=run_id)
    run = runs.first()
    if run is None:
        raise WaitRefused(f"run {run_id} does not exist")
    if run.state != RunState.RUNNING:
        raise WaitRefused(f"run {run_id} is {run.state}, not running: only a running attempt can wait")
    if attempt is not None and run.attempt != attempt:
        raise WaitRefused(f"attempt {attempt} of run {run_id} is over (the run is on attempt {run.attempt})")
    return run


def _watchable(waiter: Run, run_id: int, workspace_id: int) -> Run:
    """The run to wait for, locked: its end and this wait serialize on its row (no lost wake-up).

    Its end takes the same row lock (the fenced update), so either it ended
    before this read (the wait completes at once) or its ``ended`` hook runs
    after this park commits and sees the new waitpoint. A run that parked has
    not ended: its work goes on in its resume, whose end ends it
    (``continuation``).
    """
    watched = Run.objects.select_for_update(of=("self",)).filter(id=run_id, agent__workspace_id=workspace_id).first()
    if watched is None:
        raise WaitRefused(f"run {run_id} does not exist in this workspace")
    if watched.pk == waiter.pk:
        raise WaitRefused("a run cannot wait for its own end")
    if watched.schedule_id is not None:
        raise WaitRefused(f"run {run_id} belongs to a schedule: only a run outside any schedule (a background, "
                          f"event or resume run) can be waited for; wait on an event or a timer instead")
    return watched


def continuation(run: Run) -> Run:
    """The run that carries ``run``'s work now: itself, or (if it parked) its latest resume, row-locked.

    Each resume along the way is locked as it is read, so an end racing
    this read either committed before it or waits for the caller's commit.
    """
    current = run
    for _ in range(CONTINUATION_LIMIT):
        if current.state != RunState.WAITING:
            return current
        resumed = (Waitpoint.objects.filter(run_id=current.pk, parks_run=True, resume_run__isnull=False)
                   .order_by("-completed_at").values_list("resume_run_id", flat=True).first())
        following = Run.objects.select_for_update(of=("self",)).filter(id=resumed).first() if resumed else None
        if following is None:
            return current  # still parked
        current = following
    return current


def continued(run: Run) -> list[int]:
    """``run`` and the parked runs it continues (a resume's parent, its parent's, …): whose end its end is."""
    ids, current, trigger = [run.pk], run.pk, run.trigger
    while trigger == Trigger.RESUME and len(ids) < CONTINUATION_LIMIT:
        parked = (Waitpoint.objects.filter(resume_run_id=current, parks_run=True)
                  .values_list("run_id", "run__trigger").first())
        if parked is None:
            break
        current, trigger = parked
        ids.append(current)
    return ids


def run_outcome(watched_id: int, ended: Run) -> dict[str, Any]:
    """What a run wait resumes with: how the watched run (through ``ended``, its last continuation) ended."""
    state, output, category, message = (Run.objects.filter(id=ended.pk)
                                        .values_list("state", "output", "error_category", "error_message").get())
    outcome: dict[str, Any] = {"run": watched_id, "ended_run": ended.pk, "state": state, "output": output}
    if message:
        outcome["error"] = {"category": category, "message": message}
    return outcome


def _complete_if_already_ended(waitpoint: Waitpoint, watched: Run, *, now: datetime) -> None:
    """No lost wake-up: a run (or its last resume) that ended before the wait completes it at once."""
    current = continuation(watched)
    if current.state in TERMINAL_STATES:
        waitpoint_complete(waitpoint.id, payload=run_outcome(watched.pk, current), by=f"run {current.pk}", now=now)


def _workspace_of(run: Run) -> int:
    if run.agent.workspace_id is None:
        raise WaitRefused(f"agent {run.agent.name} belongs to no workspace")
    return run.agent.workspace_id


def _park(run: Run, waitpoint: Waitpoint, *, output: Any, now: datetime) -> None:
    """The fenced move to ``waiting``; the attempt's call is closed as answered. Not a failure, not an end."""
    stored = output if output is not None else _parked_output(waitpoint)
    parked = Run.objects.fenced(run.id, run.fencing_token).update(
        state=RunState.WAITING, finished_at=now, lease_expires_at=None, output=stored,
        error_category="", error_message="")
    if not parked:
        raise WaitRefused(f"run {run.id} moved on while parking")
    AgentCall.objects.filter(run_id=run.id, attempt=run.attempt, state=CallState.INTENT).update(
        state=CallState.SUCCEEDED, finished_at=now)
    metrics.run_finished(run.trigger, RunState.WAITING)


def _parked_output(waitpoint: Waitpoint) -> dict[str, Any]:
    """The parked attempt's output; its ``message`` is the assistant's turn in the session's history.

    A chat agent's resume gets the session's history (``session_history``):
    this turn says what the conversation waited for, and the resume's input,
    the completion, follows it as the next message.
    """
    said = f"Waiting on {waitpoint.kind} waitpoint {waitpoint.id}" + (f": {waitpoint.reason}" if waitpoint.reason
                                                                      else "")
    return {"waitpoint": str(waitpoint.id), "kind": waitpoint.kind,
            "message": {"role": "assistant", "content": said}}


def _lock_events(workspace_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [EVENT_LOCK_CLASS, workspace_id])


def _complete_if_already_arrived(run: Run, waitpoint: Waitpoint, *, now: datetime) -> None:
    """No lost wake-up: an event received since the run started completes the wait at once."""
    since = run.started_at or run.created_at
    candidates = (InboundEvent.objects.filter(workspace_id=waitpoint.workspace_id, received_at__gte=since)
                  .filter(_type_filter(waitpoint.event_type)).select_related("source")
                  .order_by("received_at", "id")[:EARLY_EVENT_SCAN])
    for event in candidates:
        view = event_view(event)
        if type_matches(waitpoint.event_type, event.type) and payload_matches(waitpoint.match, view):
            waitpoint_complete(waitpoint.id, payload=view, by=f"event {event.id}", now=now)
            return


def _type_filter(pattern: str) -> Q:
    if pattern.endswith(".*"):
        return Q(type__startswith=pattern[:-1])
    return Q(type=pattern)


# --- completing ---------------------------------------------------------------------------------

def waitpoint_complete(waitpoint_id: uuid.UUID | str, *, payload: Any, by: str, now: datetime) -> Completion:
    """``waiting → completed`` once, and its resume with ``{"ok": true, "payload": …}``; a repeat changes nothing."""
    return _settle(waitpoint_id, WaitState.COMPLETED, {"ok": True, "payload": payload}, payload=payload, by=by,
                   now=now)


def waitpoint_time_out(waitpoint_id: uuid.UUID | str, *, now: datetime) -> Completion:
    return _settle(waitpoint_id, WaitState.TIMED_OUT, {"ok": False, "reason": "timeout"}, payload=None,
                   by="timeout", now=now)


def _settle(waitpoint_id: uuid.UUID | str, state: str, resume_input: dict[str, Any], *, payload: Any, by: str,
            now: datetime) -> Completion:
    with transaction.atomic():
        won = Waitpoint.objects.filter(id=waitpoint_id, state=WaitState.WAITING).update(
            state=state, payload=payload, completed_at=now, completed_by=by[:200])
        waitpoint = Waitpoint.objects.select_related("run", "run__schedule", "agent").get(id=waitpoint_id)
        if won:
            resume = _resume(waitpoint, {**resume_input, "waitpoint": str(waitpoint.id), "kind": waitpoint.kind},
                             now=now)
            Waitpoint.objects.filter(id=waitpoint.id).update(resume_run=resume)
            waitpoint.resume_run = resume
    return Completion(waitpoint=waitpoint, fresh=bool(won))


def _resume(waitpoint: Waitpoint, resume_input: dict[str, Any], *, now: datetime) -> Run:
    """The resume run: same agent, session and chain, the parked run as parent; one per waitpoint."""
    parked = waitpoint.run
    request = UnscheduledRequest(
        trigger=Trigger.RESUME, identity=f"waitpoint:{waitpoint.id}", input=json.dumps(resume_input),
        policy=_resume_policy(parked), session_id=parked.session_id, completion_url=parked.completion_url,
        causation=Causation(chain_id=parked.chain_id, parent_run_id=_resumed_by(waitpoint),
                            event_depth=parked.event_depth,
                            wakeup_count=parked.wakeup_count, actor_id=parked.actor_id),
        started_by_id=parked.started_by_id)
    if not creator_may_run(_creator(parked), waitpoint.workspace_id):
        # A row that says why, as a scheduled fire of a revoked creator is recorded.
        request = replace(request, state=RunState.SKIPPED, skip_reason=SkipReason.UNAUTHORIZED)
    run = run_dispatch_unscheduled(waitpoint.agent, request, now=now)
    if run is None:  # the identity's one row exists already: the same waitpoint resumed before
        run = Run.objects.get(idempotency_key=unscheduled_key(Trigger.RESUME, request.identity))
    return run


def _resumed_by(waitpoint: Waitpoint) -> int:
    """The resume's parent: the parked run it continues, or, for a reply, the background run that ended."""
    if not waitpoint.parks_run and waitpoint.watched_run_id is not None:
        return waitpoint.watched_run_id
    return waitpoint.run_id


def _resume_policy(parked: Run) -> RunPolicy:
    # The resume continues the parked conversation: its session's history goes to chat agents.
    return RunPolicy(timeout_seconds=parked.timeout_seconds, max_attempts=parked.max_attempts,
                     retry_backoff_seconds=parked.retry_backoff_seconds,
                     retry_backoff_max_seconds=parked.retry_backoff_max_seconds,
                     overlap_policy=parked.overlap_policy, max_concurrent=parked.max_concurrent,
                     concurrency_scope=parked.concurrency_scope, session_mode="persistent")


def _creator(run: Run) -> int | None:
    """Whose standing the run started on: the person who asked, else the schedule's creator."""
    if run.started_by_id is not None:
        return run.started_by_id
    return run.schedule.created_by_id if run.schedule is not None else None


def waitpoint_cancel(waitpoint_id: uuid.UUID | str, *, now: datetime, actor: Actor | None = None) -> Completion:
    """``waiting → cancelled`` once, and the parked run with it (``cancelled``, its end reported); no resume.

    A parked run is no longer running, so the run's own cancel (a stop
    request to its attempt) cannot reach it: this is how a wait nobody will
    complete is ended before its timeout.
    """
    with transaction.atomic():
        won = Waitpoint.objects.filter(id=waitpoint_id, state=WaitState.WAITING).update(
            state=WaitState.CANCELLED, completed_at=now, completed_by=_who(actor))
        waitpoint = Waitpoint.objects.select_related("run", "run__agent").get(id=waitpoint_id)
        # A reply's run never parked on it: cancelling the reply leaves that run as it is.
        if won and waitpoint.parks_run and Run.objects.filter(id=waitpoint.run_id, state=RunState.WAITING).update(
                state=RunState.CANCELLED, error_message=f"its wait {waitpoint.id} was cancelled"):
            metrics.run_finished(waitpoint.run.trigger, RunState.CANCELLED)
            run_ended(waitpoint.run, now=now, failed=False)
            audit_record(actor, obj=waitpoint.run, action="cancel", now=now, workspace_id=waitpoint.workspace_id,
                         detail=f"cancelled its wait {waitpoint.id}")
    return Completion(waitpoint=waitpoint, fresh=bool(won))


def _who(actor: Actor | None) -> str:
    if actor is None:
        return "tickwise"
    if actor.api_key_id is not None:
        return f"api key {actor.api_key_id} (user {actor.user_id})"
    return f"{actor.source} (user {actor.user_id})"


# --- events and the clock -----------------------------------------------------------------------

def waitpoints_complete_for_event(event: InboundEvent, view: dict[str, Any], *, now: datetime) -> int:
    """Complete the open event waits of the event's workspace that it matches; returns how many.

    Called by the router for every new event. One waitpoint that cannot be
    completed is logged and the others go on.
    """
    with transaction.atomic():
        _lock_events(event.workspace_id)
        open_waits = list(Waitpoint.objects.filter(workspace_id=event.workspace_id, state=WaitState.WAITING,
                                                   kind=WaitKind.EVENT)
                          .filter(Q(event_type=event.type) | Q(event_type__in=_prefixes(event.type)))
                          .values_list("id", "event_type", "match"))
    done = 0
    for waitpoint_id, pattern, match in open_waits:
        if type_matches(pattern, event.type) and payload_matches(match, view):
            done += _isolated(lambda w=waitpoint_id: waitpoint_complete(w, payload=view, by=f"event {event.id}",
                                                                         now=now), waitpoint_id)
    return done


def waitpoints_complete_for_run(run: Run, ended: list[int], *, now: datetime) -> None:
    """``run`` ended, and with it the runs in ``ended`` (``continued``): complete the waits on any of them.

    Called in the transaction of its end, after its fenced update took the
    row lock that parking takes too.
    """
    waits = list(Waitpoint.objects.filter(kind=WaitKind.RUN, state=WaitState.WAITING, watched_run_id__in=ended)
                 .values_list("id", "watched_run_id"))
    for waitpoint_id, watched_id in waits:
        _isolated(lambda w=waitpoint_id, r=watched_id: waitpoint_complete(
            w, payload=run_outcome(r, run), by=f"run {run.pk}", now=now), waitpoint_id)


def _prefixes(event_type: str) -> list[str]:
    parts = event_type.split(".")
    return [".".join(parts[:i]) + ".*" for i in range(1, len(parts))]


def waitpoints_sweep(*, now: datetime) -> int:
    """Resume due timers (ok true) and expired waits (ok false, timeout); returns how many settled."""
    open_waits = Waitpoint.objects.filter(state=WaitState.WAITING)
    # Timers first: a timer due at its timeout resumes ok (the timeout pass then finds it settled).
    timers = list(open_waits.filter(kind=WaitKind.TIMER, resume_at__lte=now)
                  .order_by("resume_at").values_list("id", "resume_at")[:SWEEP_BATCH])
    expired = list(open_waits.filter(timeout_at__lte=now).order_by("timeout_at")
                   .values_list("id", flat=True)[:SWEEP_BATCH])
    done = sum(_isolated(lambda w=w, at=at: waitpoint_complete(w, payload={"resume_at": at.isoformat()},
                                                              by="timer", now=now), w) for w, at in timers)
    done += sum(_isolated(lambda w=w: waitpoint_time_out(w, now=now), w) for w in expired)
    if done:
        log.info("waitpoints: %s timer(s) and timeout(s) settled", done)
    return done


def _isolated(settle: Any, waitpoint_id: uuid.UUID | str) -> int:
    """One waitpoint's settling; its failure is logged and never stops the pass."""
    try:
        return int(settle().fresh)
    except Exception:
        log.exception("waitpoint %s could not be settled", waitpoint_id)
        return 0


# --- the ``wait`` tool ----------------------------------------------------------------------------

WAIT_DESCRIPTION = (
    "Park this run until something happens, then resume in this session with the result. kind token: you get a "
    "waitpoint id, an API completion URL and a pre-signed callback URL to hand to a person or a system (an "
    "approval, a job's completion hook); event: resume when an event of this workspace matches event_type (and "
    "match); timer: resume after `seconds`. timeout_seconds is required (at most 30 days): when it passes, you "
    'resume with {"ok": false, "reason": "timeout"}, else with {"ok": true, "payload": …}. This attempt ends '
    "when you wait: finish your answer after calling it. Prefer a wait on a token or an event over polling.")


def wait_tool(context: ToolContext, spec: WaitIn, *, now: datetime) -> dict[str, Any]:
    """The tool's function: park the calling run's attempt; a refusal the agent can read."""
    try:
        parked = waitpoint_create(context.run.id, spec, now=now, attempt=context.run.attempt)
    except WaitRefused as refused:
        raise ToolRefused(str(refused), slug="conflict", status=409) from None
    return parked.as_dict()


WAIT_TOOL = tool_register(Tool(name="wait", description=WAIT_DESCRIPTION, model=WaitIn, function=wait_tool))

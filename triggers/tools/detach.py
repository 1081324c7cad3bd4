"""The ``background`` tool: long work detached from the conversation, whose result comes back to it.

An agent in a chat starts a run of itself in a new session ("build release
42 and tell me when it is done") and finishes its turn; when that run ends,
this session gets a resume whose input is the outcome (a run waitpoint that
does not park, ``triggers.background.ReplyTo``). The guardrails of wakeups
apply: each background run spends one of the chain's self-wakes, and a
session holds at most the workspace's per-session quota of open ones.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from pydantic import Field

from runs.models import Run
from waitpoints.models import MAX_WAIT_SECONDS, WaitKind, Waitpoint, WaitState
from workspaces.models import Workspace

from ..background import BackgroundRefused, ReplyTo, background_run_of, background_run_start
from . import guardrails
from .registry import Tool, ToolContext, ToolRefused, tool_register
from .schedule import agent_actor, chain_started, origin_key
from .schemas import Strict


class BackgroundArgs(Strict):
    """The ``background`` tool: start a run of yourself in a new session; its outcome resumes this session."""

    prompt: str = Field(min_length=1, max_length=100_000, description="What the background run should do.")
    timeout_seconds: int = Field(ge=1, le=MAX_WAIT_SECONDS, description=(
        "Required. If the background run has not ended by then (at most 30 days), this session resumes with "
        '{"ok": false, "reason": "timeout"}.'))
    reason: str = Field(min_length=1, max_length=500, description="Why, shown to people.")


DESCRIPTION = (
    "Start long work in the background: a run of yourself, in a new session, with `prompt` as its input. Finish "
    "your answer after calling it; when the background run ends, this conversation resumes with "
    '{"ok": true, "payload": {"run", "state", "output"}} (or {"ok": false, "reason": "timeout"} after '
    "timeout_seconds). Use it for work that takes minutes or hours, not to poll.")


def background_tool(context: ToolContext, args: BackgroundArgs, *, now: datetime) -> dict[str, Any]:
    run = context.run
    identity = origin_key(run, args, context.idempotency_key)
    with transaction.atomic():
        space = guardrails.workspace_locked(run)
        existing = background_run_of(identity)
        if existing is not None:
            return {"created": False, **_view(existing)}
        _check(space, run, now=now)
        try:
            started = background_run_start(run.agent, input=args.prompt, now=now, actor=agent_actor(run),
                                           identity=identity, reply_to=ReplyTo(run, args.timeout_seconds,
                                                                               by_agent=True, reason=args.reason))
        except BackgroundRefused as refused:
            raise ToolRefused(str(refused), slug="conflict", status=409) from None
    return {"created": True, **_view(started)}


def _check(space: Workspace, run: Run, *, now: datetime) -> None:
    """The chain's self-wake budget, and the session's quota of open background runs."""
    over = guardrails.chain_over_budget(space, wakeups=run.wakeup_count, started_at=chain_started(run), now=now)
    if over:
        raise ToolRefused(f"no more background runs for this chain: {over}; finish the work, or ask a person")
    open_replies = Waitpoint.objects.filter(session_id=run.session_id, agent_id=run.agent_id, kind=WaitKind.RUN,
                                            parks_run=False, state=WaitState.WAITING)
    if open_replies.count() >= space.agent_max_per_session:
        raise ToolRefused(f"this session already waits on {space.agent_max_per_session} background runs, the "
                          f"most allowed: wait for one to report back before starting another")


def _view(run: Run) -> dict[str, Any]:
    reply = Waitpoint.objects.filter(watched_run_id=run.pk, parks_run=False).first()
    return {"run": run.pk, "session_id": run.session_id, "state": run.state,
            "reply_waitpoint": str(reply.id) if reply else None,
            "timeout_at": reply.timeout_at.isoformat() if reply else None}


BACKGROUND_TOOL = tool_register(Tool(name="background", description=DESCRIPTION, model=BackgroundArgs,
                                     function=background_tool))

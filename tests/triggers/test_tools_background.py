"""The ``background`` tool's service: a detached run that reports back, within the chain's budget and quota.

Service tests: the tool called as the API and the openai adapter call it
(``tool_call``), with the calling run built in the state it would be in.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from runs.models import Run, RunState, Trigger
from schedules.models import Agent
from triggers.tools import ToolContext, ToolRefused, tool_call
from waitpoints.models import WaitKind, Waitpoint
from workspaces.models import AuditEntry, Workspace

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BUILD = {"prompt": "build release 42", "timeout_seconds": 3600, "reason": "the build takes an hour"}


@pytest.fixture
def chat() -> Run:
    space = Workspace.objects.create(slug="acme", name="Acme", agent_max_per_session=2, chain_max_wakeups=3)
    agent = Agent.objects.create(name="assistant", adapter="echo", workspace=space)
    return Run.objects.create(agent=agent, trigger=Trigger.MANUAL, tick_at=NOW, state=RunState.RUNNING, attempt=1,
                              fencing_token=1, idempotency_key="chat", session_id="chat-1", chain_id="c1",
                              started_at=NOW)


def call(run: Run, arguments: dict[str, object], key: str = "") -> dict[str, object]:
    return tool_call(ToolContext(run=run, idempotency_key=key), "background", arguments, now=NOW)


def test_a_background_run_starts_detached_in_the_chain_and_replies_to_this_session(chat):
    answer = call(chat, BUILD)
    started = Run.objects.get(id=answer["run"])
    assert answer["created"] is True and answer["session_id"] == started.session_id != chat.session_id
    assert (started.input, started.parent_run_id, started.chain_id) == ("build release 42", chat.pk, "c1")
    assert (started.wakeup_count, started.actor_id, started.started_by_id) == (1, chat.agent_id, None)
    reply = Waitpoint.objects.get(id=answer["reply_waitpoint"])
    assert (reply.kind, reply.parks_run, reply.run_id, reply.session_id) == (WaitKind.RUN, False, chat.pk, "chat-1")
    assert reply.timeout_at == NOW + timedelta(hours=1) and reply.reason == "the build takes an hour"
    assert Run.objects.get(id=chat.id).state == RunState.RUNNING  # the caller does not park: it answers on
    assert AuditEntry.objects.filter(action="background_run", source="agent").count() == 1


def test_a_retried_call_finds_its_first_run(chat):
    first, again = call(chat, BUILD), call(chat, BUILD)
    assert again == {**first, "created": False}
    keyed = call(chat, BUILD, key="attempt-2")
    assert keyed["created"] is True and keyed["run"] != first["run"]
    assert call(chat, {**BUILD, "prompt": "something else"}, key="attempt-2")["run"] == keyed["run"]


def test_a_session_holds_the_quota_of_open_background_runs_and_no_more(chat):
    call(chat, BUILD, key="1")
    call(chat, BUILD, key="2")  # two: the workspace's agent_max_per_session
    with pytest.raises(ToolRefused, match="already waits on 2 background runs"):
        call(chat, BUILD, key="3")
    Waitpoint.objects.filter(run=chat).update(state="completed")  # one reported back: room again
    assert call(chat, BUILD, key="3")["created"] is True


def test_the_chain_budget_counts_background_runs_as_self_wakes(chat):
    Run.objects.filter(id=chat.id).update(wakeup_count=2)
    chat.refresh_from_db()
    inside = Run.objects.get(id=call(chat, BUILD)["run"])
    assert inside.wakeup_count == 3
    with pytest.raises(ToolRefused, match="no more background runs for this chain"):
        call(inside, BUILD)


def test_a_background_run_an_agent_started_cannot_make_a_recurring_schedule(chat):
    started = Run.objects.get(id=call(chat, BUILD)["run"])
    recurring = {"action": "create", "every_seconds": 3600, "reason": "check hourly",
                 "payload": {"type": "task", "prompt": "look"}}
    with pytest.raises(ToolRefused, match="started by an agent's run"):
        tool_call(ToolContext(run=started), "schedule", recurring, now=NOW)


@pytest.mark.parametrize(("arguments", "names"), [
    ({"prompt": "x", "reason": "y"}, "timeout_seconds"),
    ({"prompt": "x", "timeout_seconds": 60}, "reason"),
    ({"prompt": "", "timeout_seconds": 60, "reason": "y"}, "prompt"),
    ({**BUILD, "timeout_seconds": 31 * 86400}, "timeout_seconds"),
    ({**BUILD, "session": "current"}, "session"),
])
def test_bad_arguments_are_refused_naming_what_is_wrong(chat, arguments, names):
    with pytest.raises(ValidationError, match=names):
        call(chat, arguments)
    assert not Run.objects.exclude(id=chat.id).exists()

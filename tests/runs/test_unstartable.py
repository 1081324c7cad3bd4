"""A run that cannot run normally ends at once, with the reason: never ``pending`` or ``running`` for good.

An input template that does not render, an adapter kind that does not exist,
an adapter that raises something other than ``AdapterError``, an inactive
agent: each was seen leaving a run behind (republished every few minutes, or
``running`` until its lease expired). Here real workers meet them.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

import adapters
from adapters import Adapter, AgentRequest
from runs.models import AgentCall, CallState, ErrorCategory, Run, RunState, SkipReason, Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.execute import run_execute
from runs.services.manual import RunRefused, run_now
from schedules.models import Agent, Schedule

pytestmark = pytest.mark.django_db(transaction=True)

YEARLY = "0 0 1 1 *"  # no beat serves these: every run below is fired by the test


def fire(schedule: Schedule, *, publish: bool = True) -> Run:
    """A tick as the beat dispatches it (published at once: no transaction is open)."""
    now = timezone.now()
    run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=now), now=now, publish=publish)
    assert run is not None
    return run


def settled(run: Run) -> bool:
    run.refresh_from_db()
    return run.state not in (RunState.PENDING, RunState.RUNNING)


def test_runs_that_cannot_run_end_at_once_on_a_real_worker(stack, waiter):
    echo = Agent.objects.create(name="echo", adapter="echo")
    # Saved through the ORM, as a migration or a shell could: nothing validated them.
    bogus = Agent.objects.create(name="bogus", adapter="bogus")
    sleepy = Agent.objects.create(name="sleepy", adapter="echo", config={"sleep": "abc"})
    idle = Agent.objects.create(name="idle", adapter="echo", is_active=False)
    make = Schedule.objects.create
    runs = {
        "template": fire(make(agent=echo, name="bad-template", cron=YEARLY, input_template="day {{weekday}}")),
        "adapter": fire(make(agent=bogus, name="no-adapter", cron=YEARLY)),
        "raises": fire(make(agent=sleepy, name="raises", cron=YEARLY)),
        "inactive": fire(make(agent=idle, name="idle", cron=YEARLY)),
        "fine": fire(make(agent=echo, name="fine", cron=YEARLY, input_template="hello")),
    }
    stack.worker()
    for name, run in runs.items():
        waiter(lambda run=run: settled(run), timeout=60, what=f"the {name} run to end")

    def outcome(name: str) -> tuple[str, str, str]:
        run = runs[name]
        return run.state, run.skip_reason or run.error_category, run.error_message

    state, category, message = outcome("template")
    assert (state, category) == (RunState.FAILED, ErrorCategory.CONFIG) and "weekday" in message, message
    assert runs["template"].attempt == 1
    state, category, message = outcome("adapter")
    assert (state, category) == (RunState.FAILED, ErrorCategory.CONFIG), message
    assert "no adapter for kind 'bogus'" in message
    state, category, message = outcome("raises")
    assert (state, category) == (RunState.FAILED, ErrorCategory.AGENT_ERROR), message
    assert "ValueError" in message and "\n" not in message
    assert list(AgentCall.objects.filter(run=runs["raises"]).values_list("state", flat=True)) == [CallState.FAILED]
    assert outcome("inactive")[:2] == (RunState.SKIPPED, SkipReason.INACTIVE_AGENT)
    assert outcome("fine")[:2] == (RunState.SUCCEEDED, "")
    # None of the unstartable ones reached for an agent.
    assert not AgentCall.objects.filter(run__in=[runs[n] for n in ("template", "adapter", "inactive")]).exists()
    for run in runs.values():
        assert run.finished_at is not None and run.lease_expires_at is None, run


def test_a_retry_of_a_run_whose_agent_became_inactive_is_not_recorded_skipped():
    agent = Agent.objects.create(name="flaky", adapter="echo", config={"fail": "transient"})
    schedule = Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *", max_attempts=3)
    run = fire(schedule, publish=False)
    now = timezone.now()
    assert run_execute(run.id, owner="w", now=now) == RunState.PENDING  # attempt 1 reached the agent
    Agent.objects.filter(id=agent.id).update(is_active=False)
    later = Run.objects.get(id=run.id).not_before + timedelta(seconds=1)
    assert run_execute(run.id, owner="w", now=later) == RunState.FAILED
    run.refresh_from_db()
    assert (run.state, run.error_category, run.attempt) == (RunState.FAILED, ErrorCategory.CONFIG, 2)
    assert "inactive" in run.error_message


def test_run_now_refuses_an_inactive_agent_and_dispatches_nothing():
    agent = Agent.objects.create(name="retired", adapter="echo", is_active=False)
    schedule = Schedule.objects.create(agent=agent, name="daily", cron="0 9 * * *")
    with pytest.raises(RunRefused, match="'retired' is inactive"):
        run_now(schedule, now=timezone.now())
    assert not Run.objects.exists()


class _BrokenAfterTheCall(Adapter):
    """Acts, then fails to read the answer with a plain exception (an adapter bug)."""

    kind = "broken-webhook"
    idempotent = False
    calls = 0

    def call(self, request: AgentRequest) -> Any:
        type(self).calls += 1
        return {"status": int("twelve")}


@pytest.fixture
def broken_webhook() -> Iterator[type[Adapter]]:
    adapters._ADAPTERS[_BrokenAfterTheCall.kind] = _BrokenAfterTheCall
    yield _BrokenAfterTheCall
    del adapters._ADAPTERS[_BrokenAfterTheCall.kind]


def test_an_unexpected_exception_from_a_non_idempotent_adapter_ends_unknown(broken_webhook):
    agent = Agent.objects.create(name="hook", adapter=broken_webhook.kind)
    schedule = Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *", max_attempts=3)
    run = fire(schedule, publish=False)
    assert run_execute(run.id, owner="w", now=timezone.now()) == RunState.UNKNOWN
    run.refresh_from_db()
    assert (run.state, run.error_category) == (RunState.UNKNOWN, ErrorCategory.AGENT_ERROR)
    assert "ValueError" in run.error_message and broken_webhook.calls == 1
    assert run_execute(run.id, owner="w", now=timezone.now()) is None  # not retried: it may have acted

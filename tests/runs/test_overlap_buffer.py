"""The ``buffer`` overlap policy: every run of a scope waits its turn and they start in dispatch order."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from core.policies import Overlap, overlap_decide
from runs.models import Run, RunState, Trigger
from runs.services.claim import run_claim
from runs.services.dispatch import RunPolicy, UnscheduledRequest, run_dispatch_unscheduled
from schedules.models import Agent

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("active, ahead, retry, expected", [
    (0, 0, False, Overlap.RUN),
    (1, 0, False, Overlap.WAIT),
    (0, 2, False, Overlap.WAIT),   # an earlier run of the scope has not started yet
    (3, 5, False, Overlap.WAIT),   # never skipped, however many wait
    (1, 0, True, Overlap.WAIT),
])
def test_buffer_decision_table(active, ahead, retry, expected):
    assert overlap_decide("buffer", active=active, buffered=9, max_concurrent=1, retry=retry,
                          ahead=ahead) is expected


def dispatch(agent: Agent, identity: str, session: str) -> Run:
    policy = RunPolicy(overlap_policy="buffer", concurrency_scope="session", session_mode="persistent")
    request = UnscheduledRequest(trigger=Trigger.EVENT, identity=identity, input=identity, policy=policy,
                                 session_id=session)
    with transaction.atomic():
        run = run_dispatch_unscheduled(agent, request, now=NOW, publish=False)
    assert run is not None
    return run


@pytest.mark.django_db
def test_buffered_runs_of_a_session_start_one_after_another_in_dispatch_order():
    agent = Agent.objects.create(name="buffered", adapter="echo")
    first, second, third = (dispatch(agent, f"e{i}", "chat-42") for i in range(3))
    other = dispatch(agent, "e9", "chat-7")
    # The third asks first: the second, dispatched before it, has not started.
    assert run_claim(third.id, owner="w3", now=NOW, intent="e2") is None
    assert run_claim(first.id, owner="w1", now=NOW, intent="e0") is not None
    assert run_claim(second.id, owner="w2", now=NOW, intent="e1") is None  # the first is running
    assert run_claim(other.id, owner="w9", now=NOW, intent="e9") is not None  # another session is free
    for run in (second, third):
        run.refresh_from_db()
        assert (run.state, run.buffered, run.skip_reason) == (RunState.PENDING, True, "")
    Run.objects.filter(id=first.id).update(state=RunState.SUCCEEDED)
    later = NOW + timedelta(seconds=5)
    assert run_claim(third.id, owner="w3", now=later, intent="e2") is None  # still behind the second
    assert run_claim(second.id, owner="w2", now=later, intent="e1") is not None
    Run.objects.filter(id=second.id).update(state=RunState.SUCCEEDED)
    assert run_claim(third.id, owner="w3", now=later + timedelta(seconds=5), intent="e2") is not None

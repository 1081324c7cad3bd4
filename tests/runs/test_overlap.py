"""Overlap policies at claim time, per concurrency scope."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone as dj_timezone

from core.policies import Overlap, overlap_decide
from runs.models import Run, RunState, SkipReason, Trigger
from runs.services.claim import run_claim
from runs.services.dispatch import DispatchRequest, run_dispatch
from schedules.models import Agent, Schedule
from schedules.services import schedule_save

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("policy, active, buffered, limit, expected", [
    ("skip", 0, 0, 1, Overlap.RUN),
    ("skip", 1, 0, 1, Overlap.SKIP),
    ("buffer_one", 1, 0, 1, Overlap.WAIT),
    ("buffer_one", 1, 1, 1, Overlap.SKIP),
    ("allow", 1, 0, 2, Overlap.RUN),
    ("allow", 2, 0, 2, Overlap.SKIP),
    ("cancel_previous", 1, 0, 1, Overlap.CANCEL_PREVIOUS),
    ("cancel_previous", 0, 0, 1, Overlap.RUN),
])
def test_overlap_decision_table(policy, active, buffered, limit, expected):
    assert overlap_decide(policy, active=active, buffered=buffered, max_concurrent=limit) is expected


def dispatch(schedule, minute: int) -> Run:
    tick = NOW + timedelta(minutes=minute)
    return run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=tick), now=tick)


@pytest.fixture
def make_schedule(db):
    agent = Agent.objects.create(name="busy")

    def make(policy: str, **fields) -> Schedule:
        return Schedule.objects.create(agent=agent, name=policy.replace("_", "-"), cron="* * * * *",
                                       overlap_policy=policy, **fields)
    return make


def test_skip_records_the_second_run_as_skipped(make_schedule):
    schedule = make_schedule("skip")
    first, second = dispatch(schedule, 0), dispatch(schedule, 1)
    assert run_claim(first.id, owner="w1", now=NOW) is not None
    assert run_claim(second.id, owner="w2", now=NOW) is None
    second.refresh_from_db()
    assert (second.state, second.skip_reason) == (RunState.SKIPPED, SkipReason.OVERLAP)


def test_buffer_one_keeps_one_waiting_and_skips_the_rest(make_schedule):
    schedule = make_schedule("buffer_one")
    first, second, third = dispatch(schedule, 0), dispatch(schedule, 1), dispatch(schedule, 2)
    run_claim(first.id, owner="w1", now=NOW)
    assert run_claim(second.id, owner="w2", now=NOW) is None
    assert run_claim(third.id, owner="w3", now=NOW) is None
    second.refresh_from_db(), third.refresh_from_db()
    assert (second.state, second.buffered, second.published_at) == (RunState.PENDING, True, None)
    assert second.not_before > NOW
    assert (third.state, third.skip_reason) == (RunState.SKIPPED, SkipReason.OVERLAP)
    # The scope frees up: the buffered run is claimed once it is due again.
    Run.objects.filter(id=first.id).update(state=RunState.SUCCEEDED)
    assert run_claim(second.id, owner="w2", now=second.not_before) is not None


def test_allow_runs_up_to_max_concurrent(make_schedule):
    schedule = make_schedule("allow", max_concurrent=2)
    runs = [dispatch(schedule, minute) for minute in range(3)]
    claims = [run_claim(run.id, owner=f"w{i}", now=NOW) for i, run in enumerate(runs)]
    assert [claim is not None for claim in claims] == [True, True, False]
    assert Run.objects.get(id=runs[2].id).skip_reason == SkipReason.OVERLAP


def test_cancel_previous_asks_the_running_one_to_stop(make_schedule):
    schedule = make_schedule("cancel_previous")
    first, second = dispatch(schedule, 0), dispatch(schedule, 1)
    run_claim(first.id, owner="w1", now=NOW)
    assert run_claim(second.id, owner="w2", now=NOW) is not None
    assert Run.objects.get(id=first.id).cancel_requested_at == NOW


def test_agent_scope_spans_schedules(make_schedule):
    one = make_schedule("skip", concurrency_scope="agent")
    other = Schedule.objects.create(agent=one.agent, name="other", cron="* * * * *", concurrency_scope="agent")
    run_claim(dispatch(one, 0).id, owner="w1", now=NOW)
    blocked = dispatch(other, 0)
    assert run_claim(blocked.id, owner="w2", now=NOW) is None
    assert Run.objects.get(id=blocked.id).skip_reason == SkipReason.OVERLAP


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("policy", ["skip", "buffer_one", "allow", "cancel_previous"])
def test_policies_with_real_workers_and_runs_longer_than_the_interval(stack, waiter, policy):
    agent = Agent.objects.create(name=f"slow-{policy}".replace("_", "-"), config={"sleep": 2.5})
    schedule = schedule_save(Schedule(agent=agent, name="every-second", kind="interval", interval_seconds=1,
                                      overlap_policy=policy, max_concurrent=2), now=dj_timezone.now())
    stack.worker(concurrency=3)
    stack.beat()
    waiter(lambda: Run.objects.filter(schedule=schedule).count() >= 8, timeout=60, what="eight ticks")
    Schedule.objects.filter(pk=schedule.pk).update(paused=True)
    # Some run must have finished too: on a slow machine the beat may dispatch every tick
    # at once, before any worker has claimed one, and "nothing running" is then true at once.
    mine = Run.objects.filter(schedule=schedule)
    waiter(lambda: (not mine.filter(state=RunState.RUNNING).exists()
                    and mine.filter(state__in=[RunState.SUCCEEDED, RunState.CANCELLED]).exists()),
           timeout=60, what="running runs to finish")
    time.sleep(1)
    runs = list(Run.objects.filter(schedule=schedule).exclude(started_at=None))
    states = set(Run.objects.filter(schedule=schedule).values_list("state", flat=True))
    if policy == "cancel_previous":
        # Cooperative: a replaced run stops at its next check, well before its 2.5 s of work.
        cancelled = [r for r in runs if r.state == RunState.CANCELLED]
        assert cancelled
        assert all(r.finished_at - r.cancel_requested_at < timedelta(seconds=1.5) for r in cancelled)
    else:
        assert max_overlap(runs) <= (2 if policy == "allow" else 1)
        assert RunState.SKIPPED in states and RunState.SUCCEEDED in states


def max_overlap(runs: list[Run]) -> int:
    """The most runs of the list ever running at the same instant."""
    edges = sorted([(r.started_at, 1) for r in runs] + [(r.finished_at or r.started_at, -1) for r in runs],
                   key=lambda edge: (edge[0], edge[1]))
    active = peak = 0
    for _, step in edges:
        active += step
        peak = max(peak, active)
    return peak


@pytest.mark.parametrize("policy", ["skip", "buffer_one", "allow", "cancel_previous"])
def test_a_retry_waits_instead_of_being_skipped(policy):
    assert overlap_decide(policy, active=3, buffered=1, max_concurrent=2, retry=True) is Overlap.WAIT

"""Retries wait in the database, exhausted runs are dead-lettered, replay keeps the identity."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone as dj_timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from runs.models import AgentCall, CallState, ErrorCategory, Run, RunState, Trigger
from runs.pulses import ensure_pulses
from runs.services.claim import run_claim
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.execute import run_execute
from runs.services.housekeeping import runs_reap_expired_leases, runs_sweep_outbox
from runs.services.outcome import record_success
from schedules.models import Agent, Schedule
from schedules.services import schedule_save

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def schedule(db):
    agent = Agent.objects.create(name="flaky", config={"fail": "transient"})
    return Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *", max_attempts=3,
                                   retry_backoff_seconds=10, retry_backoff_max_seconds=15, failure_limit=2)


def dispatch(schedule, tick=NOW) -> Run:
    return run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=tick), now=tick)


def test_transient_failure_waits_in_the_database_with_backoff(schedule):
    run = dispatch(schedule)
    assert run_execute(run.id, owner="w", now=NOW) == RunState.PENDING
    run.refresh_from_db()
    assert run.attempt == 1 and run.published_at is None
    assert NOW + timedelta(seconds=5) <= run.not_before <= NOW + timedelta(seconds=10)
    assert run_execute(run.id, owner="w", now=NOW) is None  # not due yet: a redelivery does nothing
    assert list(AgentCall.objects.filter(run=run).values_list("attempt", "state")) == [(1, CallState.FAILED)]


def test_a_retry_waits_at_least_as_long_as_the_agent_asked(schedule):
    from runs.services.outcome import RETRY_AFTER_CAP, record_failure

    for retry_after, low, high in ((120, 120, 120), (3, 5, 10), (10 ** 6, RETRY_AFTER_CAP, RETRY_AFTER_CAP)):
        run = dispatch(schedule, NOW + timedelta(hours=low))
        claim = run_claim(run.id, owner="w", now=NOW, intent="x")
        assert record_failure(claim, message="HTTP 429", category="capacity", transient=True, now=NOW,
                              retry_after=retry_after) == RunState.PENDING
        not_before = Run.objects.get(id=run.id).not_before
        assert NOW + timedelta(seconds=low) <= not_before <= NOW + timedelta(seconds=high), retry_after


def test_exhausted_retries_dead_letter_the_run_and_count_toward_auto_pause(schedule):
    run = dispatch(schedule)
    for _attempt in range(3):
        Run.objects.filter(id=run.id).update(not_before=None)
        run_execute(run.id, owner="w", now=NOW)
    run.refresh_from_db()
    assert (run.state, run.attempt, run.error_category) == (RunState.DEAD, 3, ErrorCategory.AGENT_ERROR)
    second = dispatch(schedule, NOW + timedelta(hours=1))
    Schedule.objects.filter(id=schedule.id).update(max_attempts=1)
    Run.objects.filter(id=second.id).update(max_attempts=1)
    run_execute(second.id, owner="w", now=NOW)
    schedule.refresh_from_db()
    assert schedule.paused and "2 consecutive failures" in schedule.paused_reason


def test_permanent_failure_is_not_retried(schedule):
    schedule.agent.config = {"fail": "permanent"}
    schedule.agent.save()
    run = dispatch(schedule)
    assert run_execute(run.id, owner="w", now=NOW) == RunState.FAILED


def test_dlq_replay_keeps_identity_and_refuses_succeeded_runs(schedule, django_capture_on_commit_callbacks):
    run = dispatch(schedule)
    Run.objects.filter(id=run.id).update(state=RunState.DEAD, attempt=3)
    out = io.StringIO()
    call_command("dlq", "list", stdout=out)
    assert str(run.id) in out.getvalue()
    with django_capture_on_commit_callbacks() as published:
        call_command("dlq", "replay", str(run.id), stdout=out)
    assert len(published) == 1
    replayed = Run.objects.get(id=run.id)
    assert (replayed.state, replayed.idempotency_key, replayed.tick_at) == (RunState.PENDING, run.idempotency_key, NOW)
    assert replayed.max_attempts == 6
    Run.objects.filter(id=run.id).update(state=RunState.SUCCEEDED)
    with pytest.raises(CommandError, match="succeeded"):
        call_command("dlq", "replay", str(run.id))


def test_reaper_retries_an_attempt_that_never_reached_the_agent(schedule):
    run = dispatch(schedule)
    claim = run_claim(run.id, owner="gone", now=NOW)
    Run.objects.filter(id=run.id).update(lease_expires_at=NOW - timedelta(seconds=1))
    assert runs_reap_expired_leases(now=NOW) == 1
    run.refresh_from_db()
    assert (run.state, run.error_category) == (RunState.PENDING, ErrorCategory.CRASHED)
    assert run.fencing_token == claim.token + 1
    # The vanished worker comes back with its old token: its outcome is rejected.
    assert record_success(claim, {"late": True}, cancelled=False) is None
    assert Run.objects.get(id=run.id).state == RunState.PENDING


def test_reaper_marks_unknown_when_a_non_idempotent_agent_may_have_acted(db):
    agent = Agent.objects.create(name="poster", adapter="message", config={})
    schedule = Schedule.objects.create(agent=agent, name="post", cron="0 * * * *")
    run = dispatch(schedule)
    claim = run_claim(run.id, owner="gone", now=NOW)
    AgentCall.objects.create(run=run, attempt=1, fencing_token=claim.token, idempotency_key=run.idempotency_key)
    Run.objects.filter(id=run.id).update(lease_expires_at=NOW - timedelta(seconds=1))
    runs_reap_expired_leases(now=NOW)
    assert Run.objects.get(id=run.id).state == RunState.UNKNOWN


def test_crashes_that_end_runs_count_toward_auto_pause(schedule):
    # failure_limit=2: two runs reaped to ``dead`` in a row pause the schedule.
    for hour in (0, 1):
        run = dispatch(schedule, NOW + timedelta(hours=hour))
        Run.objects.filter(id=run.id).update(attempt=schedule.max_attempts - 1)
        run_claim(run.id, owner="gone", now=NOW)  # the last attempt
        Run.objects.filter(id=run.id).update(lease_expires_at=NOW - timedelta(seconds=1))
        assert runs_reap_expired_leases(now=NOW) == 1
        assert Run.objects.get(id=run.id).state == RunState.DEAD
    schedule.refresh_from_db()
    assert schedule.consecutive_failures == 2
    assert schedule.paused and "2 consecutive failures" in schedule.paused_reason


def test_an_attempt_reaped_for_retry_is_not_a_failure_yet(schedule):
    run = dispatch(schedule)
    run_claim(run.id, owner="gone", now=NOW)
    Run.objects.filter(id=run.id).update(lease_expires_at=NOW - timedelta(seconds=1))
    assert runs_reap_expired_leases(now=NOW) == 1
    assert Schedule.objects.get(id=schedule.id).consecutive_failures == 0


def test_sweeper_publishes_only_due_unpublished_runs(schedule, django_capture_on_commit_callbacks):
    old, waiting, fresh = dispatch(schedule), dispatch(schedule, NOW + timedelta(hours=1)), None
    Run.objects.filter(id=old.id).update(created_at=dj_timezone.now() - timedelta(minutes=1))
    Run.objects.filter(id=waiting.id).update(created_at=dj_timezone.now() - timedelta(minutes=1),
                                             not_before=dj_timezone.now() + timedelta(hours=1))
    fresh = dispatch(schedule, NOW + timedelta(hours=2))
    assert runs_sweep_outbox(now=dj_timezone.now()) == 1
    assert Run.objects.get(id=old.id).published_at is not None
    assert Run.objects.get(id=waiting.id).published_at is None
    assert Run.objects.get(id=fresh.id).published_at is None


@pytest.mark.django_db(transaction=True)
def test_retry_dead_letter_and_replay_round_trip_with_real_workers(stack, waiter):
    ensure_pulses(IntervalSchedule, PeriodicTask)
    agent = Agent.objects.create(name="flaky-live", config={"fail": "transient"})
    schedule = schedule_save(Schedule(agent=agent, name="once", kind="once", max_attempts=2,
                                      run_at=dj_timezone.now() + timedelta(seconds=1),
                                      retry_backoff_seconds=1, retry_backoff_max_seconds=1), now=dj_timezone.now())
    stack.worker()
    stack.beat()
    run = waiter(lambda: Run.objects.filter(schedule=schedule, state=RunState.DEAD).first(), timeout=90,
                 what="the run to be dead-lettered after two attempts")
    assert run.attempt == 2
    Agent.objects.filter(pk=agent.pk).update(config={})  # the agent is fixed
    call_command("dlq", "replay", str(run.id), stdout=io.StringIO())
    waiter(lambda: Run.objects.filter(pk=run.pk, state=RunState.SUCCEEDED).exists(), timeout=60,
           what="the replayed run to succeed")
    done = Run.objects.get(pk=run.pk)
    assert (done.attempt, done.idempotency_key) == (3, run.idempotency_key)
    assert Run.objects.filter(schedule=schedule).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_run_past_its_timeout_is_recorded_failed_timeout(stack, waiter):
    agent = Agent.objects.create(name="slowpoke", config={"sleep": 30})
    schedule = schedule_save(Schedule(agent=agent, name="once", kind="once", timeout_seconds=2,
                                      run_at=dj_timezone.now() + timedelta(seconds=1)), now=dj_timezone.now())
    stack.worker()
    stack.beat()
    run = waiter(lambda: Run.objects.filter(schedule=schedule, state=RunState.FAILED).first(), timeout=60,
                 what="the run to time out")
    assert run.error_category == ErrorCategory.TIMEOUT
    assert run.finished_at - run.started_at < timedelta(seconds=10)


@pytest.mark.django_db(transaction=True)
def test_a_slow_failure_is_retried_no_sooner_than_the_agent_asked_after_it_failed(stack, waiter):
    """Retry-After (and the backoff) count from the failure, not from when the attempt began."""
    import time

    from tests.adapters.conftest import AgentServer, Delivery, Reply

    answer_after, retry_after = 2.0, 3
    arrivals: list[float] = []

    def agent(delivery: Delivery) -> Reply:
        arrivals.append(time.time())
        if len(arrivals) == 1:  # a slow 500 that asks for a pause
            return Reply(status=500, body={"error": "busy"}, headers={"Retry-After": str(retry_after)},
                         delay=answer_after)
        return Reply(body={"ok": True})

    server = AgentServer(agent).start()
    try:
        agent_row = Agent.objects.create(name="slow-500", adapter="http", config={"url": f"{server.url}/run"})
        schedule = schedule_save(Schedule(agent=agent_row, name="yearly", cron="0 0 1 1 *", max_attempts=2,
                                          retry_backoff_seconds=1, retry_backoff_max_seconds=1),
                                 now=dj_timezone.now())
        stack.worker()
        run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=dj_timezone.now()),
                           now=dj_timezone.now())

        def retried() -> bool:
            runs_sweep_outbox(now=dj_timezone.now())  # the pulse, as often as the test can
            return Run.objects.filter(pk=run.pk, state=RunState.SUCCEEDED).exists()

        waiter(retried, timeout=60, what="the retry to succeed", interval=0.2)
    finally:
        server.stop()
    failed_at = arrivals[0] + answer_after  # the 500 was not answered before this
    assert len(arrivals) == 2
    assert arrivals[1] >= failed_at + retry_after, (
        f"retried {arrivals[1] - failed_at:.2f}s after the failure; the agent asked for {retry_after}s")

"""The worker's hot path: load, claim and outcome, and the heartbeat beside them.

A successful run is three statements (load; lock + claim + intent; outcome +
intent + streak). These tests pin what each one must still guarantee.
"""
from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.policies import Overlap, overlap_decide, overlap_run_limit
from runs.models import AgentCall, CallState, Run, RunState, Trigger
from runs.services.claim import lease_for, run_claim, run_load
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.execute import run_execute
from runs.services.heartbeat import Heartbeat
from runs.services.housekeeping import runs_reap_expired_leases
from schedules.models import Agent, Schedule


@pytest.mark.parametrize("policy", ["skip", "buffer_one", "allow", "cancel_previous"])
def test_the_claims_shortcut_agrees_with_the_overlap_table(policy):
    for active, buffered, limit, retry in itertools.product(range(5), range(3), range(1, 4), (False, True)):
        decided = overlap_decide(policy, active=active, buffered=buffered, max_concurrent=limit, retry=retry)
        if active < overlap_run_limit(policy, max_concurrent=limit):
            assert decided is Overlap.RUN, (policy, active, buffered, limit, retry)


@pytest.fixture
def schedule(db) -> Schedule:
    agent = Agent.objects.create(name="fast", adapter="echo", config={"greeting": "hi"})
    return Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *", failure_limit=5,
                                   consecutive_failures=2, input_template="run {{run_number}} of {{schedule}}")


def dispatch(schedule: Schedule, minutes: int = 0) -> Run:
    tick = timezone.now().replace(microsecond=0) + timedelta(minutes=minutes)
    return run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=tick), now=tick,
                        publish=False)


def test_run_load_reads_run_schedule_and_agent_as_the_orm_would(schedule):
    run = dispatch(schedule)
    with CaptureQueriesContext(connection) as queries:
        loaded = run_load(run.id)
        described = str(loaded.schedule)  # uses the schedule's agent: already loaded
    assert len(queries.captured_queries) == 1
    assert loaded.agent.config == {"greeting": "hi"}  # JSON decoded, not text
    assert described == str(Schedule.objects.select_related("agent").get(id=schedule.id))
    orm = Run.objects.get(id=run.id)
    for field in Run._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(orm, field.attname), field.name
    assert run_load(run.id + 1000) is None


def test_a_successful_run_is_three_statements_and_ends_the_failure_streak(schedule):
    run = dispatch(schedule)
    with CaptureQueriesContext(connection) as queries:
        state = run_execute(run.id, owner="test:1", now=timezone.now())
    assert state == RunState.SUCCEEDED
    assert len(queries.captured_queries) == 3, [q["sql"][:80] for q in queries.captured_queries]
    run.refresh_from_db()
    assert (run.attempt, run.fencing_token, run.lease_expires_at) == (1, 1, None)
    assert run.output["echo"] == "run 1 of fast/hourly"
    assert run.input == "run 1 of fast/hourly"
    call = AgentCall.objects.get(run=run)
    assert (call.state, call.attempt, call.fencing_token) == (CallState.SUCCEEDED, 1, 1)
    assert Schedule.objects.get(id=schedule.id).consecutive_failures == 0


def test_an_answer_with_nul_characters_is_stored_with_them_replaced(schedule):
    from runs.services.outcome import record_failure, record_success

    run = dispatch(schedule)
    claim = run_claim(run.id, owner="test:1", now=timezone.now(), intent="x")
    answer = {"text": "a\x00b", "nested": [{"k\x00": "\x00"}], "n": 1}
    assert record_success(claim, answer, cancelled=False) == RunState.SUCCEEDED
    assert Run.objects.get(id=run.id).output == {"text": "a\ufffdb", "nested": [{"k\ufffd": "\ufffd"}], "n": 1}
    second = run_claim(dispatch(schedule, minutes=60).id, owner="test:1", now=timezone.now(), intent="x")
    assert record_failure(second, message="bad\x00byte", category="agent_error", transient=False,
                          now=timezone.now()) == RunState.FAILED
    assert Run.objects.get(id=second.run.id).error_message == "bad\ufffdbyte"


def test_the_claim_records_its_intent_before_the_agent_is_called(schedule):
    run = dispatch(schedule)
    claim = run_claim(run.id, owner="test:1", now=timezone.now(), intent="the input")
    stored = Run.objects.get(id=run.id)
    assert (stored.state, stored.input, stored.fencing_token) == (RunState.RUNNING, "the input", claim.token)
    assert stored.lease_expires_at > timezone.now() + lease_for(claim.run) - timedelta(seconds=5)
    assert AgentCall.objects.get(run=run).state == CallState.INTENT
    # A second delivery finds nothing to claim and writes nothing.
    assert run_claim(run.id, owner="test:2", now=timezone.now(), intent="again") is None
    assert AgentCall.objects.filter(run=run).count() == 1


def test_a_busy_scope_still_goes_through_the_overlap_policy(schedule):
    first, second = dispatch(schedule), dispatch(schedule, minutes=60)
    assert run_claim(first.id, owner="test:1", now=timezone.now(), intent="one") is not None
    assert run_claim(second.id, owner="test:2", now=timezone.now(), intent="two") is None
    second.refresh_from_db()
    assert (second.state, second.skip_reason) == (RunState.SKIPPED, "overlap")
    assert not AgentCall.objects.filter(run=second).exists()


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_each_lease_and_stops_with_its_attempt():
    agent = Agent.objects.create(name="beating", adapter="echo")
    schedule = Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *", timeout_seconds=1,
                                       overlap_policy="allow", max_concurrent=2)
    runs = [dispatch(schedule, minutes=60 * i) for i in range(2)]
    claims = [run_claim(run.id, owner="test", now=timezone.now(), intent="x") for run in runs]
    lease = timedelta(seconds=1.2)  # renewed every 0.4 s
    with Heartbeat(claims[0].run.id, claims[0].token, lease), Heartbeat(claims[1].run.id, claims[1].token, lease):
        time.sleep(2.5)  # twice the lease: only renewals keep it alive
        assert runs_reap_expired_leases(now=timezone.now()) == 0
    time.sleep(1.5)  # the heartbeats ended with their attempts
    assert runs_reap_expired_leases(now=timezone.now()) == 2


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_notices_a_cancel_request_and_a_lost_lease():
    agent = Agent.objects.create(name="watched", adapter="echo")
    schedule = Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *")
    claim = run_claim(dispatch(schedule).id, owner="test", now=timezone.now(), intent="x")
    with Heartbeat(claim.run.id, claim.token, timedelta(seconds=0.9), watch_cancel=True) as heartbeat:
        Run.objects.filter(id=claim.run.id).update(cancel_requested_at=timezone.now())
        assert heartbeat.cancelled.wait(3)
        Run.objects.filter(id=claim.run.id).update(fencing_token=claim.token + 1)  # taken over
        assert heartbeat.lost.wait(3)


@pytest.mark.django_db(transaction=True)
def test_a_broken_kept_connection_is_replaced_on_the_first_read(caplog):
    agent = Agent.objects.create(name="reconnect", adapter="echo")
    run = dispatch(Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *"))
    connection.health_check_enabled = False  # as in a worker: no ping before a task's first read
    old = connection.connection.info.backend_pid
    with _other_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [old])
    loaded = run_load(run.id)
    assert loaded.id == run.id
    assert connection.connection.info.backend_pid != old
    assert "database connection lost; reconnecting" in caplog.text


def _other_connection():
    import psycopg

    settings = connection.settings_dict
    return psycopg.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
                           password=settings["PASSWORD"], dbname=settings["NAME"], autocommit=True)


@pytest.mark.django_db(transaction=True)
def test_a_prepared_statement_the_server_lost_or_kept_is_handled():
    from core import prepared

    statement = prepared.Prepared("tickwise_test_sum", "SELECT %(a)s::int + %(b)s::int, %(a)s::int")

    def run(a: int, b: int) -> tuple:
        with connection.cursor() as cursor:
            statement.execute(cursor, {"a": a, "b": b})
            return cursor.fetchone()

    assert run(1, 2) == (3, 1)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler resetting the session does
    assert run(2, 3) == (5, 2)  # prepared again
    prepared._prepared.clear()  # forgotten here, still known to the server
    assert run(3, 4) == (7, 3)
    connection.close()
    assert run(4, 5) == (9, 4)  # a new connection prepares its own


def test_calendar_values_are_the_ticks_date_in_the_schedules_zone(db):
    from datetime import UTC, datetime

    agent = Agent.objects.create(name="tokyo", adapter="echo")
    schedule = Schedule.objects.create(agent=agent, name="morning", cron="0 8 * * *", timezone="Asia/Tokyo",
                                       input_template="{{date}} {{day_of_week}} at {{tick_at}}")
    tick = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # Wednesday 2026-12-02, 08:00 in Tokyo
    run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=tick), now=tick, publish=False)
    assert run_execute(run.id, owner="w", now=tick) == RunState.SUCCEEDED
    run.refresh_from_db()
    assert run.output["echo"] == "2026-12-02 Wednesday at 2026-12-01T23:00:00+00:00"  # the instant stays UTC

"""A lease that expires under a live but stalled worker: the stale attempt's writes are rejected.

A worker can outlive its lease without crashing: a long GC pause, a frozen VM,
a process stopped by its supervisor. Its heartbeat stops with it, the reaper
returns the run to ``pending`` with a bumped fencing token, and another worker
claims it. When the stalled worker wakes up, every write it makes is
conditional on its old token and changes nothing.
"""
from __future__ import annotations

import os
import re
import signal
from datetime import timedelta

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from runs.models import AgentCall, CallState, ErrorCategory, Run, RunState, Trigger
from runs.services.claim import lease_for, run_claim
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.heartbeat import Heartbeat
from runs.services.housekeeping import runs_reap_expired_leases, runs_sweep_outbox
from runs.services.manual import run_now as schedule_run_now
from runs.services.outcome import record_failure, record_intent, record_success
from schedules.models import Agent, Schedule
from schedules.services import schedule_save

# Lease = timeout_seconds + TICKWISE_LEASE_MARGIN = 2 + 1 seconds.
WORKER_ENV = {"TICKWISE_LEASE_MARGIN": "1"}
TASK_DONE = re.compile(r"Task runs\.execute\[[0-9a-f-]+\] succeeded in [0-9.]+s: (.*)")


def slow_schedule(name: str) -> Schedule:
    agent = Agent.objects.create(name=name, adapter="echo", config={"sleep": 30, "fail": "permanent"})
    return schedule_save(Schedule(agent=agent, name="yearly", cron="0 0 1 1 *", timeout_seconds=2,
                                  input_template="report for {{date}}"), now=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_a_stalled_worker_loses_its_lease_and_its_late_outcome_is_rejected(stack, waiter):
    schedule = slow_schedule("stalled")
    workers = [stack.worker(f"w{i}", extra_env=WORKER_ENV) for i in (1, 2)]
    run = schedule_run_now(schedule, now=timezone.now())
    first = waiter(lambda: Run.objects.filter(pk=run.pk, state=RunState.RUNNING).first(), timeout=60,
                   what="a worker to claim the run")
    stalled = _worker_of(first, workers)
    # Freeze the claiming worker (pool child, heartbeat and time limits alike) mid-call.
    os.killpg(stalled.pid, signal.SIGSTOP)
    try:
        waiter(lambda: Run.objects.filter(pk=run.pk, lease_expires_at__lt=Now()).exists(), timeout=30,
               what="the stalled worker's lease to expire")
        now = timezone.now()
        assert now > first.lease_expires_at
        assert runs_reap_expired_leases(now=now) == 1
        reaped = Run.objects.get(pk=run.pk)
        assert (reaped.state, reaped.fencing_token, reaped.attempt) == (RunState.PENDING, 2, 1)
        assert reaped.error_category == ErrorCategory.CRASHED

        # The agent is fixed meanwhile: the second attempt succeeds at once.
        Agent.objects.filter(pk=schedule.agent_id).update(config={})
        waiter(lambda: runs_sweep_outbox(now=timezone.now()), timeout=30, what="the sweeper to republish")
        done = waiter(lambda: Run.objects.filter(pk=run.pk, state=RunState.SUCCEEDED).first(), timeout=60,
                      what="the other worker to re-claim and finish the run")
    finally:
        os.killpg(stalled.pid, signal.SIGCONT)
    assert (done.attempt, done.fencing_token) == (2, 3)
    assert done.lease_owner != first.lease_owner

    # The stalled worker wakes up past its time limit and tries to record a failure.
    results = waiter(lambda: TASK_DONE.findall(stalled.log.read_text()), timeout=60,
                     what="the stalled worker to finish its attempt")
    assert results == ["None"], "the stale attempt recorded an outcome"
    final = Run.objects.get(pk=run.pk)
    assert (final.state, final.attempt, final.fencing_token) == (RunState.SUCCEEDED, 2, 3)
    assert (final.finished_at, final.output, final.lease_owner) == (done.finished_at, done.output, done.lease_owner)
    assert (final.error_category, final.error_message, final.lease_expires_at) == ("", "", None)
    assert final.output["echo"] == f"report for {final.tick_at.date().isoformat()}"
    assert AgentCall.objects.get(run=run, attempt=2).state == CallState.SUCCEEDED


def _worker_of(run: Run, workers):
    """The worker process group whose pool child holds the lease (owner is ``host:pid``)."""
    group = os.getpgid(int(run.lease_owner.rsplit(":", 1)[1]))
    return next(worker for worker in workers if worker.pid == group)


@pytest.mark.django_db
def test_after_a_reap_and_a_second_claim_only_the_new_token_writes():
    t0 = timezone.now()
    schedule = slow_schedule("fenced")
    run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=t0), now=t0)

    stale = run_claim(run.id, owner="stalled", now=t0)
    assert stale is not None and record_intent(stale, "report")
    heartbeat = Heartbeat(run.id, stale.token, lease_for(stale.run))
    heartbeat.renew()
    lease_end = Run.objects.get(pk=run.pk).lease_expires_at
    assert not heartbeat.lost.is_set()

    later = lease_end + timedelta(seconds=1)
    assert runs_reap_expired_leases(now=later) == 1
    fresh = run_claim(run.id, owner="fresh", now=later)
    assert fresh is not None and fresh.token == stale.token + 2 and fresh.run.attempt == 2
    assert record_intent(fresh, "report")

    # Every write of the stale attempt matches no row.
    assert record_success(stale, {"by": "stale"}, cancelled=False) is None
    assert record_failure(stale, message="late", category="", transient=True, now=later) is None
    assert not record_intent(stale, "rewritten")
    heartbeat.renew()
    assert heartbeat.lost.is_set()
    _assert_row(run, RunState.RUNNING, fresh.token, owner="fresh", output=None)

    assert record_success(fresh, {"by": "fresh"}, cancelled=False) == RunState.SUCCEEDED
    assert record_success(stale, {"by": "stale"}, cancelled=False) is None
    _assert_row(run, RunState.SUCCEEDED, fresh.token, owner="fresh", output={"by": "fresh"})
    assert AgentCall.objects.get(run=run, attempt=2).state == CallState.SUCCEEDED
    assert AgentCall.objects.get(run=run, attempt=1).state != CallState.SUCCEEDED


def _assert_row(run: Run, state: str, token: int, *, owner: str, output: object) -> None:
    row = Run.objects.get(pk=run.pk)
    assert (row.state, row.fencing_token, row.attempt, row.lease_owner) == (state, token, 2, owner)
    assert (row.input, row.output) == ("report", output)

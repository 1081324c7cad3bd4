"""The clock's side of waitpoints: the housekeeping pulse resumes due timers and times out expired waits.

Run by a real beat (the ``waits.sweep`` pulse) and worker: the agent always
hears back, ``{"ok": true}`` when its timer fires, ``{"ok": false, "reason":
"timeout"}`` when nothing completed its wait in time.
"""
from __future__ import annotations

import json

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from runs.pulses import ensure_pulses
from waitpoints.models import WaitState

from .conftest import ParkingAgent, http_agent, parked, resumed, start_run

pytestmark = pytest.mark.django_db(transaction=True)


def test_timers_resume_ok_and_expired_waits_resume_with_a_timeout(stack, waiter, api_url, make_caller,
                                                                  agent_server):
    ensure_pulses(IntervalSchedule, PeriodicTask)
    caller = make_caller()
    timer = ParkingAgent(api_url, {"kind": "timer", "seconds": 1, "timeout_seconds": 600})
    token = ParkingAgent(api_url, {"kind": "token", "timeout_seconds": 2})
    timer_run = start_run(http_agent(caller, agent_server(timer), "sleeper"), caller, identity="timer")
    token_run = start_run(http_agent(caller, agent_server(token), "approver"), caller, identity="token")
    stack.worker(concurrency=2)
    stack.beat()
    timer_wait, token_wait = parked(timer_run, waiter), parked(token_run, waiter)

    resumed(timer_wait, waiter)
    done = timer_wait.__class__.objects.get(id=timer_wait.id)
    assert done.state == WaitState.COMPLETED and done.completed_by == "timer"
    assert done.completed_at is not None and done.completed_at >= done.resume_at
    assert json.loads(timer.resumes[0].body["input"])["ok"] is True

    resumed(token_wait, waiter)
    expired = token_wait.__class__.objects.get(id=token_wait.id)
    assert expired.state == WaitState.TIMED_OUT and expired.completed_by == "timeout"
    assert expired.completed_at is not None and expired.completed_at >= expired.timeout_at
    heard = json.loads(token.resumes[0].body["input"])
    assert heard == {"ok": False, "reason": "timeout", "waitpoint": str(token_wait.id), "kind": "token"}

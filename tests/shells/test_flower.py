"""Flower itself, started as docs/operations.md says, shows a failed run as FAILURE.

Flower is an optional extra for users (``pip install -e '.[flower]'``) and part
of the test extra, so this test always runs.
"""
from __future__ import annotations

import sys

import httpx
from django.utils import timezone

from runs.models import Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch
from scheduler_project import cli
from schedules.models import Agent, Schedule
from tests.shells.api.conftest import free_port


def test_flower_shows_a_failed_run_as_failure_and_a_succeeded_one_as_success(stack, waiter):
    port = free_port()
    stack.start([sys.executable, "-m", "celery", "-A", "scheduler_project", "flower", f"--port={port}",
                 "--address=127.0.0.1"], "flower", ready="Visit me at",
                extra_env={"FLOWER_UNAUTHENTICATED_API": "true"})
    stack.start([*cli.worker_command("flower-test"), "--events"], "worker", ready="ready.")
    ok = Schedule.objects.create(agent=Agent.objects.create(name="ok"), name="fine", cron="0 3 * * *")
    bad = Schedule.objects.create(agent=Agent.objects.create(name="bad", config={"fail": "permanent"}),
                                  name="broken", cron="0 3 * * *")
    now = timezone.now()
    runs = {f"[{run_dispatch(s, DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now).id}]": state
            for s, state in ((ok, "SUCCESS"), (bad, "FAILURE"))}

    def states() -> dict[str, str]:
        tasks = httpx.get(f"http://127.0.0.1:{port}/api/tasks", params={"taskname": "runs.execute"}).json()
        return {task["args"]: task["state"] for task in tasks.values() if task["args"] in runs}

    assert waiter(lambda: states() == runs and states(), timeout=60, what=f"Flower to show {runs}") == runs

"""TICKWISE_LOG_FORMAT=json: a real worker logs one JSON object per line, with the run's context."""
from __future__ import annotations

import json

from django.utils import timezone

from runs.models import Run, RunState, Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch
from schedules.models import Agent, Schedule


def test_a_worker_logs_json_lines_that_carry_the_run(stack, waiter, monkeypatch):
    agent = Agent.objects.create(name="retired", is_active=False)  # its run is skipped with a warning line
    schedule = Schedule.objects.create(agent=agent, name="nightly", cron="0 3 * * *")
    # The command is built from this process's environment (its banner is left out with json logs).
    monkeypatch.setenv("TICKWISE_LOG_FORMAT", "json")
    worker = stack.worker(extra_env={"TICKWISE_LOG_FORMAT": "json"})
    now = timezone.now()
    run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now)
    waiter(lambda: Run.objects.get(id=run.id).state == RunState.SKIPPED, timeout=30, what="the run to be skipped")
    waiter(lambda: "inactive" in worker.log.read_text(), timeout=10, what="the run's log line")

    logged = [json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")]
    about_run = [line for line in logged if f"run {run.id}:" in line["message"]]
    assert about_run, worker.log.read_text()[-2000:]
    for line in about_run:
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert (line["run_id"], line["schedule_id"], line["trigger"]) == (run.id, schedule.id, "manual")
        assert line["chain_id"] == Run.objects.get(id=run.id).chain_id
    assert any(line["logger"].startswith("celery") for line in logged), "Celery's own lines are JSON too"
    outside = [line for line in logged if "run_id" not in line]
    assert outside, "lines logged outside a run carry no run context"
    plain = [line for line in worker.log.read_text().splitlines() if " WARNING " in line or " INFO " in line]
    assert plain == []
    assert "[tasks]" not in worker.log.read_text(), "no start-up banner"

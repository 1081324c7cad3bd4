"""/metrics: the counters that every process of a live stack wrote equal the ledger's counts.

A real beat fires one-shot schedules, a real worker (two prefork children)
runs them (succeeded, failed, dead, and one skipped by its overlap policy
while another run of the same agent works), and a real gunicorn answers
/metrics from the same multiprocess directory (``process_env``).
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from runs.models import Run, RunState, Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch
from scheduler_project import cli
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from tests.shells.api.conftest import free_port

TOKEN = "scrape-me"
TERMINAL = [RunState.SUCCEEDED, RunState.FAILED, RunState.DEAD, RunState.SKIPPED, RunState.UNKNOWN,
            RunState.CANCELLED]


def once(agent: Agent, name: str, at, **fields) -> Schedule:
    return schedule_save(Schedule(agent=agent, name=name, kind="once", run_at=at, max_attempts=1, **fields),
                         now=timezone.now())


def samples(text: str) -> dict[str, list]:
    """Each family's samples by sample name (``…_total`` for counters)."""
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def by_labels(found: dict[str, list], name: str, *labels: str) -> Counter:
    return Counter({tuple(s.labels[label] for label in labels): s.value for s in found.get(name, []) if s.value})


def test_the_counters_equal_the_ledger_after_a_known_sequence(stack, waiter):
    start = timezone.now() + timedelta(seconds=4)
    ok = Agent.objects.create(name="ok")
    failing = Agent.objects.create(name="failing", config={"fail": "permanent"})
    dying = Agent.objects.create(name="dying", config={"fail": "transient"})
    slow = Agent.objects.create(name="slow", config={"sleep": 8})
    once(ok, "fine", start)
    once(failing, "broken", start)
    once(dying, "flaky", start)
    # Two runs of one agent, the second while the first works: its overlap policy skips it.
    once(slow, "long", start, concurrency_scope="agent")
    once(slow, "second", start + timedelta(seconds=3), concurrency_scope="agent")

    port = free_port()
    env = {"TICKWISE_METRICS_TOKEN": TOKEN, "TICKWISE_WEB_WORKERS": "1"}
    stack.start(cli.web_command(f"127.0.0.1:{port}"), "web", ready="Booting worker", extra_env=env)
    stack.worker(concurrency=2, extra_env=env)
    stack.beat(extra_env=env)
    waiter(lambda: Run.objects.filter(state__in=TERMINAL).count() == 5, timeout=90, what="five runs to end")

    ledger = Counter(Run.objects.values_list("trigger", "state", "error_category"))
    assert {state for _, state, _ in ledger} == {"succeeded", "failed", "dead", "skipped"}, ledger
    assert Run.objects.get(schedule__name="second").skip_reason == "overlap"

    response = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    found = samples(response.text)
    assert by_labels(found, "tickwise_runs_finished_total", "trigger", "state", "error_category") == ledger
    assert by_labels(found, "tickwise_runs_dispatched_total", "trigger") == Counter({("schedule",): 5})
    assert by_labels(found, "tickwise_overlap_skips_total", "policy") == Counter({("skip",): 1})
    assert by_labels(found, "tickwise_runs_skipped_total", "reason") == Counter({("overlap",): 1})
    assert by_labels(found, "tickwise_dead_letters_total", "trigger") == Counter({("schedule",): 1})
    assert by_labels(found, "tickwise_retries_total", "error_category") == Counter()
    assert sum(s.value for s in found["tickwise_dispatch_lateness_seconds_count"]) == 5
    assert sum(s.value for s in found["tickwise_run_duration_seconds_count"]) == 4  # the skip never ran
    assert [s.value for s in found["tickwise_dead_letter_depth"]] == [1]
    schedules = by_labels(found, "tickwise_schedules", "state")
    assert schedules[("finished",)] == Schedule.objects.finished().count() == 5


def test_scrapes_without_the_token_are_refused(settings, db):
    settings.TICKWISE = {**settings.TICKWISE, "METRICS_TOKEN": ""}
    refused = Client().get("/metrics")
    assert refused.status_code == 403 and b"TICKWISE_METRICS_TOKEN" in refused.content
    settings.TICKWISE = {**settings.TICKWISE, "METRICS_TOKEN": TOKEN}
    assert Client().get("/metrics").status_code == 401
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    served = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert served.status_code == 200
    assert "tickwise_due_lag_seconds" in served.content.decode()


def test_due_lag_is_read_from_the_oldest_due_schedule(settings, db):
    settings.TICKWISE = {**settings.TICKWISE, "METRICS_TOKEN": TOKEN}
    agent = Agent.objects.create(name="late")
    schedule = Schedule.objects.create(agent=agent, name="behind", cron="* * * * *")
    Schedule.objects.filter(id=schedule.id).update(next_fire_at=timezone.now() - timedelta(minutes=10),
                                                   next_tick_at=timezone.now() - timedelta(minutes=10))
    found = samples(Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    (lag,) = found["tickwise_due_lag_seconds"]
    assert 600 <= lag.value < 900
    assert by_labels(found, "tickwise_schedules", "state")[("active",)] == 1


@pytest.mark.parametrize("reason", ["auto-paused after 5 consecutive failures", "maintenance"])
def test_schedules_by_state_tells_auto_paused_from_paused(settings, db, reason):
    settings.TICKWISE = {**settings.TICKWISE, "METRICS_TOKEN": TOKEN}
    agent = Agent.objects.create(name="a")
    Schedule.objects.create(agent=agent, name="s", cron="* * * * *", paused=True, paused_reason=reason)
    found = samples(Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    states = by_labels(found, "tickwise_schedules", "state")
    assert states == Counter({("auto_paused" if reason.startswith("auto") else "paused",): 1})


def test_a_worker_serves_its_hosts_counters_on_a_port_when_asked(stack, waiter):
    """For a worker in a container of its own: ``TICKWISE_METRICS_BIND``."""
    port = free_port()
    stack.worker(extra_env={"TICKWISE_METRICS_BIND": f"127.0.0.1:{port}"})
    schedule = Schedule.objects.create(agent=Agent.objects.create(name="ok"), name="s", cron="0 3 * * *")
    now = timezone.now()
    run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now)
    waiter(lambda: Run.objects.get(id=run.id).state == RunState.SUCCEEDED, timeout=30, what="the run")
    found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    finished = by_labels(found, "tickwise_runs_finished_total", "trigger", "state", "error_category")
    assert finished == Counter({("manual", "succeeded", ""): 1})
    assert "tickwise_due_lag_seconds" not in found, "the database gauges are the web's"


@pytest.mark.parametrize("raw", ["9100", "host:", ":9100", "host:99999"])
def test_a_malformed_metrics_bind_is_refused_by_name(raw):
    from django.core.exceptions import ImproperlyConfigured

    from scheduler_project.metrics_server import bind_address

    with pytest.raises(ImproperlyConfigured, match="TICKWISE_METRICS_BIND must be host:port"):
        bind_address(raw)

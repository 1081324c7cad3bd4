"""What Flower sees: ``runs.execute``'s Celery task state follows the run's outcome, and the message is acked.

A real worker sends task events (``-E``, as Flower turns on); a receiver here
reads them as Flower does. A failed run's task is ``task-failed``; a succeeded
run's is ``task-succeeded``; neither message is left unacknowledged for a
redelivery; the frequent housekeeping pulses send no events at all.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from runs.models import Run, RunState, Trigger
from runs.pulses import ensure_pulses
from runs.services.dispatch import DispatchRequest, run_dispatch
from scheduler_project import cli
from schedules.models import Agent, Schedule


class Events:
    """Task events of one worker (by hostname), captured in a thread as Flower's receiver does."""

    def __init__(self, hostname: str) -> None:
        self.hostname, self.seen, self.ready = hostname, list[dict](), threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture, daemon=True)

    def _capture(self) -> None:
        with current_app.connection_for_read() as connection:
            receiver = current_app.events.Receiver(connection, handlers={"*": self._on_event})
            self.ready.set()
            try:
                for _ in receiver.itercapture(limit=None, timeout=None, wakeup=False):
                    if self._stop.is_set():
                        return
            except RuntimeError as error:  # the handler's StopIteration, as a generator re-raises it (PEP 479)
                if not isinstance(error.__cause__, StopIteration):
                    raise

    def _on_event(self, event: dict) -> None:
        if event.get("hostname") == self.hostname and event["type"].startswith("task-"):
            self.seen.append(event)
        if self._stop.is_set():
            raise StopIteration  # ends itercapture's drain loop

    def of(self, run_id: int) -> dict[str, dict]:
        """The events of the task that carried ``run_id``, by type."""
        ids = {e["uuid"] for e in self.seen if e["type"] == "task-received" and e["args"] == f"[{run_id}]"}
        return {e["type"]: e for e in self.seen if e["uuid"] in ids}

    def names(self) -> set[str]:
        return {e["name"] for e in self.seen if e["type"] == "task-received"}

    def start(self) -> Events:
        self._thread.start()
        self.ready.wait(10)
        return self

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture
def events() -> Iterator[Events]:
    watching = Events(f"flower-{os.getpid()}@{os.uname().nodename}").start()
    yield watching
    watching.stop()


def unacked_for_our_queue(*, besides: frozenset[bytes] = frozenset()) -> list:
    """Messages the broker holds as delivered and not yet acknowledged, for this test run's queue.

    ``besides``: delivery tags held before the test began (an earlier test of the
    run may have killed a worker holding one; Redis gives it back only after the
    visibility timeout), so only this test's messages are looked at.
    """
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    held = [json.loads(raw) for tag, raw in client.hgetall("unacked").items() if tag not in besides]
    return [message for message in held if message[2] == settings.CELERY_TASK_DEFAULT_QUEUE]


def test_a_failed_run_is_a_failed_task_and_its_message_is_acked(stack, waiter, events):
    ensure_pulses(IntervalSchedule, PeriodicTask)
    held_before = frozenset(redis.Redis.from_url(settings.CELERY_BROKER_URL).hkeys("unacked"))
    ok = Schedule.objects.create(agent=Agent.objects.create(name="ok"), name="fine", cron="0 3 * * *")
    bad = Schedule.objects.create(agent=Agent.objects.create(name="bad", config={"fail": "permanent"}),
                                  name="broken", cron="0 3 * * *")
    name = events.hostname.split("@")[0]
    stack.start([*cli.worker_command(name), "--events"], "worker", ready="ready.")
    stack.beat()  # sends the housekeeping pulses, which must not show up as events
    now = timezone.now()
    runs = [run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now)
            for schedule in (ok, bad)]
    waiter(lambda: all("task-succeeded" in events.of(r.id) or "task-failed" in events.of(r.id) for r in runs),
           timeout=60, what="both tasks to finish")

    succeeded, failed = (events.of(run.id) for run in runs)
    assert "task-succeeded" in succeeded and "task-failed" not in succeeded
    assert "task-failed" in failed and "task-succeeded" not in failed
    assert "RunNotSucceeded" in failed["task-failed"]["exception"]
    assert [Run.objects.get(id=run.id).state for run in runs] == [RunState.SUCCEEDED, RunState.FAILED]
    waiter(lambda: unacked_for_our_queue(besides=held_before) == [], timeout=30,
           what="both messages to be acknowledged")
    waiter(lambda: TaskResult.objects.filter(task_name="runs.sweep_outbox").exists(), timeout=60,
           what="the worker to have run a sweep")
    assert "runs.execute" in events.names()
    assert not {"runs.sweep_outbox", "runs.reap_leases"} & events.names(), "the frequent pulses send no events"

"""Publishing after commit: runs dispatched in one transaction go out as one batch."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import Run, Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch
from schedules.models import Agent, Schedule
from tests.broker import queue_clear, queued


@pytest.fixture
def queue():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue_clear(client)
    yield lambda: sorted(json.loads(m)["headers"]["argsrepr"] for m in queued(client))
    queue_clear(client)


@pytest.fixture
def schedules(transactional_db) -> list[Schedule]:
    agent = Agent.objects.create(name="batched", adapter="echo")
    return [Schedule.objects.create(agent=agent, name=f"s{i}", cron="0 * * * *", timeout_seconds=30 + i)
            for i in range(4)]


def dispatch(schedule: Schedule) -> Run:
    now = timezone.now()
    return run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now)


def published(run: Run) -> bool:
    return Run.objects.filter(id=run.id, published_at__isnull=False).exists()


def test_runs_of_one_transaction_are_published_together_after_commit(schedules, queue):
    with CaptureQueriesContext(connection) as queries:
        with transaction.atomic():
            runs = [dispatch(schedule) for schedule in schedules[:3]]
            assert queue() == [] and not any(published(run) for run in runs)  # nothing before the commit
    assert queue() == sorted(f"[{run.id}]" for run in runs)
    assert all(published(run) for run in runs)
    updates = [q["sql"] for q in queries.captured_queries if "tickwise_mark_published" in q["sql"]]
    assert len(updates) == 1  # one (prepared) UPDATE for the whole transaction


def test_a_rolled_back_savepoint_publishes_nothing_of_its_own(schedules, queue):
    with transaction.atomic():
        kept = dispatch(schedules[0])
        try:
            with transaction.atomic():
                dropped = dispatch(schedules[1])
                raise RuntimeError("undo this one")
        except RuntimeError:
            pass
        also_kept = dispatch(schedules[2])
    assert queue() == sorted([f"[{kept.id}]", f"[{also_kept.id}]"])
    assert not Run.objects.filter(id=dropped.id).exists()


def test_a_rolled_back_transaction_publishes_nothing_and_the_next_one_publishes(schedules, queue):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            dispatch(schedules[0])
            raise RuntimeError("undo")
    with transaction.atomic():
        run = dispatch(schedules[1])
    assert queue() == [f"[{run.id}]"]


def test_outside_a_transaction_a_run_is_published_at_once_with_its_time_limits(schedules, queue):
    run = dispatch(schedules[3])
    assert queue() == [f"[{run.id}]"] and published(run)
    (message,) = map(json.loads, queued())
    assert message["headers"]["timelimit"] == [33 + 10, 33]
    assert Run.objects.get(id=run.id).published_at > timezone.now() - timedelta(minutes=1)


@pytest.fixture
def broker_down(unused_port):
    """The app's broker pointed at a port nobody listens on, then restored."""
    from scheduler_project.celery import app

    def drop_connections() -> None:
        from kombu import pools

        pools.reset()  # kombu's process-wide connection and producer pools
        app._after_fork()  # what a forked child does: no pooled connection or producer survives

    saved = app.conf.broker_url
    drop_connections()
    app.conf.broker_url = f"redis://127.0.0.1:{unused_port}/0"
    yield
    drop_connections()
    app.conf.broker_url = saved


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_broker_leaves_committed_runs_to_the_sweeper(schedules, broker_down, caplog):
    with transaction.atomic():
        run = dispatch(schedules[0])  # the commit succeeds; the publish after it cannot
    assert Run.objects.filter(id=run.id, state="pending", published_at__isnull=True).exists()
    assert "could not publish 1 run(s), the outbox sweeper will" in caplog.text

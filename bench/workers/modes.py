"""The three ways the workers benchmark fires N runs: raw Celery, ``run_dispatch``, and the beat."""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.common import chunks, median, queues_purge, redis_bench

QUEUE = "bench-workers"
RAW_QUEUE = "bench-workers-raw"
RAW_KEY_PREFIX = "bench:workers:raw:"
DISPATCH_BATCH = 100


@dataclass
class Sample:
    rate: float
    latencies_ms: list[float]
    note: str = ""
    seconds: float = 0.0
    worker_cpu_ms: float = float("nan")  # per run
    dispatcher_cpu_ms: float = float("nan")  # per run
    database_cpu_ms: float = float("nan")  # per run, the whole PostgreSQL server
    redis_cpu_ms: float = float("nan")  # per run, the whole Redis server
    machine_busy: float = float("nan")  # share of all CPUs busy, anything running included


@dataclass
class Mode:
    title: str
    workers: tuple[str, ...]
    dispatcher: str | None  # a process group, or None for this driver
    burst: Callable[[int, float], Sample]
    samples: list[Sample] = field(default_factory=list)
    idle_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return median(s.rate for s in self.samples) if self.samples else 0.0

    def median(self, value: Callable[[Sample], float]) -> float:
        return median(value(s) for s in self.samples)


def state_reset() -> None:
    """Empty this benchmark's ledger and queues (its own database and Redis database only)."""
    from django.db import connection

    from runs.models import AgentCall, Run

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Run._meta.db_table}, {AgentCall._meta.db_table} CASCADE")
    client = redis_bench()
    queues_purge(client, QUEUE, RAW_QUEUE)
    for key in client.scan_iter(f"{RAW_KEY_PREFIX}*"):
        client.delete(key)


def _wait(count: Callable[[], int], n: int, *, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    poll = 0.005 if n == 1 else 0.05
    while (done := count()) < n and time.monotonic() < deadline:
        time.sleep(poll)
    return done


# --- raw Celery -----------------------------------------------------------------

class Raw:
    """The floor: bare Celery workers (``bench.workers.raw_app``) consuming no-op tasks."""

    def __init__(self) -> None:
        import redis

        from bench.workers.raw_app import noop

        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        self.noop = noop

    def burst(self, n: int, timeout: float) -> Sample:
        key = f"{RAW_KEY_PREFIX}{uuid.uuid4().hex}"
        start = time.time()
        for _ in range(n):
            self.noop.apply_async(args=[key, time.time()])
        done = _wait(lambda: self.redis.llen(key), n, timeout=timeout)
        pairs = [tuple(map(float, v.decode().split(","))) for v in self.redis.lrange(key, 0, -1)]
        self.redis.delete(key)
        end = max(d for _, d in pairs) if pairs else time.time()
        return Sample(rate=len(pairs) / (end - start), latencies_ms=[(d - s) * 1000 for s, d in pairs],
                      note="" if done >= n else f"timed out at {done}/{n}")


# --- Tickwise -------------------------------------------------------------------

class Ledger:
    """Runs of the benchmark's ``echo`` schedules: one per schedule per repetition."""

    def __init__(self, pool_size: int) -> None:
        self.schedules = _schedule_pool(pool_size)

    def dispatch_burst(self, n: int, timeout: float) -> Sample:
        from django.db import transaction
        from django.utils import timezone

        from runs.models import Trigger
        from runs.services.dispatch import DispatchRequest, run_dispatch

        tick = timezone.now()
        start = time.time()
        for chunk in chunks(self.schedules[:n], DISPATCH_BATCH):
            now = timezone.now()
            with transaction.atomic():  # the batch is published when it commits
                for schedule in chunk:
                    run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=tick), now=now)
        return self._outcome(tick, n, start=start, timeout=timeout, since="created_at")

    def beat_burst(self, n: int, timeout: float) -> Sample:
        from django.utils import timezone

        from schedules.models import Schedule
        from schedules.notify import beat_wake_now

        tick = timezone.now()
        start = time.time()
        # Fixture shortcut: N one-shot schedules made due now in one statement
        # (``schedule_save``, the admin's path, costs a transaction per schedule).
        Schedule.objects.filter(id__in=[s.id for s in self.schedules[:n]]).update(
            run_at=tick, next_tick_at=tick, next_fire_at=tick)
        beat_wake_now()
        return self._outcome(tick, n, start=start, timeout=timeout, since="tick_at")

    def _outcome(self, tick: datetime, n: int, *, start: float, timeout: float, since: str) -> Sample:
        from runs.models import TERMINAL_STATES, Run, RunState

        runs = Run.objects.filter(tick_at=tick)
        done = _wait(lambda: runs.filter(state__in=TERMINAL_STATES).count(), n, timeout=timeout)
        rows = list(runs.filter(state=RunState.SUCCEEDED).values_list(since, "finished_at"))
        end = max(f for _, f in rows).timestamp() if rows else time.time()
        notes = [f"{done - len(rows)} not succeeded"] if len(rows) < done else []
        notes += [f"timed out at {done}/{n}"] if done < n else []
        return Sample(rate=len(rows) / (end - start), note=", ".join(notes),
                      latencies_ms=[(f - s).total_seconds() * 1000 for s, f in rows])


def _schedule_pool(size: int) -> list:
    """``size`` one-shot ``echo`` schedules, parked far in the future, kept across invocations."""
    from schedules.models import Agent, Schedule

    agent, _ = Agent.objects.get_or_create(name="bench-echo", defaults={"adapter": "echo", "config": {}})
    parked = datetime(2100, 1, 1, tzinfo=UTC)
    existing = Schedule.objects.filter(agent=agent).count()
    Schedule.objects.bulk_create(
        Schedule(agent=agent, name=f"w{i}", kind="once", run_at=parked,
                 input_template="{{schedule}} at {{tick_at}} (#{{run_number}})")
        for i in range(existing, size))
    Schedule.objects.filter(agent=agent).update(next_tick_at=None, next_fire_at=None, paused=False)
    return list(Schedule.objects.filter(agent=agent).select_related("agent").order_by("id")[:size])

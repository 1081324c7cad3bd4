"""Wakeup lateness: how late a wakeup's run is dispatched and started, under the beat's usual load.

    .venv/bin/python -m bench.autonomy [--load 1000] [--wakeups 200] [--minutes 3]

A Tickwise beat and two Celery workers (concurrency 1 each) on a fresh
database ``tickwise_bench_autonomy``, Redis database 8, queue
``bench-autonomy``. The load is ``--load`` echo schedules firing every minute
(1,000 ticks a minute is what the beat's lateness benchmark sees at 100,000
schedules). Over ``--minutes`` minutes, ``--wakeups`` wakeups come due at
random instants: one-shot schedules with an origin run in its session, as the
``schedule`` tool makes them (made through the same model, not through HTTP:
asking is not what is measured). For each wakeup's run:

- dispatch lateness: ``lateness_ms`` (the beat's clock when it began the batch
  minus the tick), as the ledger records it;
- start lateness: ``started_at`` (the worker's claim, database clock) minus the tick.

p50 and p99 by nearest rank.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import bench_stores, machine, percentile, process_env, queues_purge, redis_bench
from bench.workers.cpu import Processes

DATABASE = "tickwise_bench_autonomy"
REDIS_DB = 8
QUEUE = "bench-autonomy"


def _fixture(load: int) -> int:
    """The echo agent, its every-minute load and the origin run; returns the origin run's id."""
    from runs.models import Run, RunState, Trigger
    from schedules.models import Agent, Schedule

    agent = Agent.objects.create(name="bench-waker", adapter="echo")
    Schedule.objects.bulk_create([Schedule(agent=agent, name=f"load-{n}", cron="* * * * *", max_attempts=1)
                                  for n in range(load)])
    origin = Run.objects.create(agent=agent, trigger=Trigger.MANUAL, tick_at=datetime.now(UTC),
                                state=RunState.SUCCEEDED, idempotency_key="bench-origin", session_id="bench-session",
                                chain_id="benchchain")
    return origin.pk


def _plan_load() -> None:
    """Point the load at its next minute (bulk_create skips the service's planning)."""
    from core import timing
    from schedules.models import Schedule

    now = datetime.now(UTC)
    tick = timing.next_tick(Schedule.objects.filter(name__startswith="load-").first().plan(), after=now)
    Schedule.objects.filter(name__startswith="load-").update(next_tick_at=tick.at, next_fire_at=tick.at)


def _wakeups(origin_id: int, count: int, *, start: datetime, minutes: int) -> list[int]:
    """``count`` wakeups due at random instants in the window; their schedule ids."""
    from runs.models import Run
    from schedules.models import CreatorKind, Schedule, SessionMode
    from schedules.services import schedule_save

    origin = Run.objects.select_related("agent").get(pk=origin_id)
    ids, span = [], minutes * 60.0
    for n in range(count):
        at = start + timedelta(seconds=random.uniform(0, span))
        schedule = schedule_save(Schedule(
            agent=origin.agent, name=f"wakeup-{n}", kind="once", run_at=at, max_attempts=1,
            session_mode=SessionMode.PERSISTENT, session_id=origin.session_id, input_template="look again",
            creator_kind=CreatorKind.AGENT_RUN, origin_run_id=origin.pk, origin_agent=origin.agent,
            origin_session_id=origin.session_id, origin_chain_id=origin.chain_id,
            origin_chain_started_at=origin.created_at, reason="bench"), now=datetime.now(UTC))
        ids.append(schedule.pk)
    return ids


def _measure(schedule_ids: list[int]) -> tuple[list[float], list[float], int]:
    from runs.models import Run, Trigger

    rows = list(Run.objects.filter(schedule_id__in=schedule_ids, trigger=Trigger.WAKEUP)
                .values_list("lateness_ms", "started_at", "tick_at"))
    dispatch = [float(late) for late, _, _ in rows if late is not None]
    start = [(started - tick).total_seconds() * 1000 for _, started, tick in rows if started is not None]
    return dispatch, start, len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.autonomy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=int, default=1000, help="echo schedules firing every minute")
    parser.add_argument("--wakeups", type=int, default=200, help="wakeups due over the window")
    parser.add_argument("--minutes", type=int, default=3, help="the window the wakeups fall in")
    args = parser.parse_args(argv)
    from scheduler_project import cli

    with bench_stores(DATABASE, REDIS_DB, fresh=True, TICKWISE_QUEUE=QUEUE):
        queues_purge(redis_bench(), QUEUE)
        origin_id = _fixture(args.load)
        logs = Path(tempfile.mkdtemp(prefix="bench-autonomy-"))
        procs = Processes(process_env(), logs)
        try:
            for i in (1, 2):
                procs.start(f"worker{i}", cli.worker_command(f"bench-autonomy-worker{i}"), ready="ready.")
            _plan_load()
            procs.start("beat", cli.beat_command(), ready="beat: Starting")
            start = datetime.now(UTC) + timedelta(seconds=20)
            schedule_ids = _wakeups(origin_id, args.wakeups, start=start, minutes=args.minutes)
            time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + args.minutes * 60 + 30)
        finally:
            procs.stop_all()
            print(f"logs: {logs}", flush=True)
        dispatch, started, fired = _measure(schedule_ids)
    print("\n".join([
        f"machine: {machine('Django', 'celery', 'psycopg')}",
        f"a beat, 2 Celery workers (concurrency 1), {args.load} echo schedules every minute, "
        f"{args.wakeups} wakeups over {args.minutes} min",
        "", "| wakeup | p50 ms | p99 ms | runs |", "|---|---:|---:|---:|",
        f"| dispatch lateness (beat) | {percentile(dispatch, 0.5):.0f} | {percentile(dispatch, 0.99):.0f} | "
        f"{len(dispatch)}/{args.wakeups} |",
        f"| start lateness (worker claim) | {percentile(started, 0.5):.0f} | {percentile(started, 0.99):.0f} | "
        f"{len(started)}/{fired} |",
    ]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

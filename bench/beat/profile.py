"""Where a Tickwise beat loop's time goes, at one size (evidence for bench/README.md "Beat").

    .venv/bin/python -m bench.beat.profile [--size 100000] [--loops 40]

Loads the benchmark's schedules into ``tickwise_bench`` and prints medians of
the idle loop and of its parts (its one statement, the housekeeping tick, a bare
query), then the statements of one 1% loop by kind.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bench.beat.stores import DATABASE, REDIS_DB, queue_purge, quiet
from bench.common import bench_stores, median


def _median_ms(call: Callable[[], object], loops: int) -> float:
    times = []
    for _ in range(loops):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return median(times) * 1000


def _idle_parts(scheduler, now: datetime, loops: int) -> dict[str, float]:
    from django.db import connection
    from django_celery_beat.schedulers import DatabaseScheduler

    from bench.beat.tickwise import tickwise_loop
    from triggers.beat import BEAT_PROBE_SQL

    def execute(sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            cursor.fetchall()

    return {
        "idle loop (TickwiseScheduler.loop: tick() without its sleep)": _median_ms(
            lambda: tickwise_loop(scheduler, now=now), loops),
        "  the probe statement (next agent tick + pulse change stamp)": _median_ms(
            lambda: execute(BEAT_PROBE_SQL), loops),
        "  housekeeping: DatabaseScheduler.tick": _median_ms(lambda: DatabaseScheduler.tick(scheduler), loops),
        "SELECT 1 on an open connection": _median_ms(lambda: execute("SELECT 1"), loops),
    }


def _due_statements(scheduler, now: datetime) -> tuple[int, float, Counter]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.beat.tickwise import tickwise_loop

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        runs = tickwise_loop(scheduler, now=now)
        seconds = time.perf_counter() - started
    kinds = Counter(" ".join(q["sql"].split()[:3 if q["sql"].startswith(("UPDATE", "INSERT")) else 1])
                    for q in captured.captured_queries)
    return runs, seconds, kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.beat.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--loops", type=int, default=40)
    args = parser.parse_args(argv)
    with bench_stores(DATABASE, REDIS_DB, fresh=True, TICKWISE_LOG_LEVEL="WARNING"):
        quiet()
        _profile(args.size, args.loops)
    return 0


def _profile(size: int, loops: int) -> None:
    from bench.beat.celeryapp import app
    from bench.beat.data import specs_generate, tickwise_load
    from bench.beat.tickwise import tickwise_scheduler

    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=31)
    tickwise_load(specs_generate(size, seed=4), after=base)
    scheduler = tickwise_scheduler(app)
    print(f"{size:,} schedules; medians of {loops} calls, ms")
    for label, ms in _idle_parts(scheduler, base + timedelta(seconds=30), loops).items():
        print(f"  {label}: {ms:.2f}")
    runs, seconds, kinds = _due_statements(scheduler, base + timedelta(minutes=1, seconds=0.25))
    print(f"one 1% loop: {runs} runs in {seconds * 1000:.0f} ms, {sum(kinds.values())} statements: "
          + ", ".join(f"{kind} ×{count}" for kind, count in kinds.most_common()))
    queue_purge()


if __name__ == "__main__":
    sys.exit(main())

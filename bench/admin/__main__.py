"""The admin's run pages and dashboard on a large registry and ledger.

    .venv/bin/python -m bench.admin [--schedules 10000] [--runs 1000000] [--repeat 5] [--keep]

Database ``tickwise_bench_admin`` (dropped and refilled unless ``--keep``
finds it already filled to the asked size), Redis database 6 (nobody
listens: the dashboard's worker ping waits out its timeout, reported apart).
Pages are rendered in this process through Django's test client, signed in
as a superuser, ``--repeat`` times after one warm-up; the table gives the
median and the worst time and the number of SQL queries of each page, then
each dashboard figure's own time, and the plans of the dashboard's
aggregates (``EXPLAIN (ANALYZE, BUFFERS)``).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.common import bench_stores, machine, median

DATABASE = "tickwise_bench_admin"
REDIS_DB = 6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.admin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse the database when it already has the sizes asked")
    args = parser.parse_args()
    with bench_stores(DATABASE, REDIS_DB, fresh=not args.keep, ALLOWED_HOSTS="testserver"):
        run(args)


def run(args: argparse.Namespace) -> None:
    from django.utils import timezone

    from bench.admin.data import ledger_create, registry_create
    from runs.models import Run
    from schedules.models import Schedule

    now = timezone.now()
    if (Schedule.objects.count(), Run.objects.count()) != (args.schedules, args.runs):
        if Schedule.objects.exists() or Run.objects.exists():
            raise SystemExit("the database holds another size; run without --keep to refill it")
        started = time.perf_counter()
        registry_create(args.schedules, now=now)
        ledger_create(args.runs, now=now)
        print(f"filled {args.schedules:,} schedules and {args.runs:,} runs in {time.perf_counter() - started:.0f} s")
    analyze()
    print(machine("django", "psycopg"))
    pages(args.repeat)
    figures(args.repeat)
    plans()


def analyze() -> None:
    """Fresh statistics after the bulk fill, as autovacuum would give a real ledger."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runs_run")


def pages(repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from runs.models import Run, RunState
    from schedules.models import Schedule

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True,
                                                                                  "is_superuser": True})
    client = Client()
    client.force_login(user)
    schedule = Schedule.objects.order_by("id").first()
    dead = Run.objects.filter(state=RunState.DEAD).order_by("-tick_at").first()
    assert schedule is not None and dead is not None
    urls = [("dashboard /admin/", "/admin/"),
            ("schedule list", "/admin/schedules/schedule/"),
            ("schedule page (next fires, health, runs)", f"/admin/schedules/schedule/{schedule.pk}/change/"),
            ("agent page", f"/admin/schedules/agent/{schedule.agent_id}/change/"),
            ("run list", "/admin/runs/run/"),
            ("run list, one schedule", f"/admin/runs/run/?schedule={schedule.pk}"),
            ("run list, dead-letter queue", "/admin/runs/run/?state__exact=dead"),
            ("run list, a day (date hierarchy)", f"/admin/runs/run/?tick_at__day={dead.tick_at.day}"
                                                 f"&tick_at__month={dead.tick_at.month}&tick_at__year={dead.tick_at.year}"),
            ("run page (dead run)", f"/admin/runs/run/{dead.pk}/change/")]
    print(f"\n{'page':<42} {'median ms':>10} {'worst ms':>10} {'queries':>8}")
    for title, url in urls:
        times, queries = [], 0
        for attempt in range(repeat + 1):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - started
            assert response.status_code == 200, (url, response.status_code)
            if attempt:  # the first is the warm-up
                times.append(elapsed * 1000)
            queries = len(captured.captured_queries)
        print(f"{title:<42} {median(times):>10.0f} {max(times):>10.0f} {queries:>8}")


def figures(repeat: int) -> None:
    from django.utils import timezone

    from runs import selectors
    from shells.admin import dashboard

    now = timezone.now()
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("ledger_overview (runs, two queries)", lambda: selectors.ledger_overview(now=now)),
        ("schedule_overview (schedules, one query)", lambda: selectors.schedule_overview(now=now)),
        ("schedules_due_soon", lambda: list(selectors.schedules_due_soon(now=now))),
        ("schedules_in_trouble", lambda: list(selectors.schedules_in_trouble())),
        ("pulses_last_seen (two queries)", dashboard.pulses_last_seen),
        ("ping_workers (Celery ping, uncached)", dashboard.ping_workers),
    ]
    print(f"\n{'dashboard part':<42} {'median ms':>10}")
    for title, part in parts:
        part()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            part()
            times.append((time.perf_counter() - started) * 1000)
        print(f"{title:<42} {median(times):>10.1f}")


def plans() -> None:
    """Each dashboard selector's SQL, as it was sent (captured), explained with its actual run."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from runs import selectors

    now = timezone.now()
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("ledger_overview", lambda: selectors.ledger_overview(now=now)),
        ("schedule_overview", lambda: selectors.schedule_overview(now=now)),
        ("schedules_due_soon", lambda: list(selectors.schedules_due_soon(now=now))),
        ("schedules_in_trouble", lambda: list(selectors.schedules_in_trouble())),
    ]
    for title, part in parts:
        with CaptureQueriesContext(connection) as captured:
            part()
        for query in captured.captured_queries:
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {query['sql']}")
                print(f"\n-- {title}\n" + "\n".join(row[0] for row in cursor.fetchall()))


if __name__ == "__main__":
    main()

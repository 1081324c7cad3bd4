"""A large registry and ledger, written fast: schedules through the ORM, runs by one INSERT … SELECT generate_series.

Every run column is written: the ones the pages read from expressions over
the series, the rest from each field's own default (taken from the model, so
a new column cannot be left NULL).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Field

from runs.models import Run
from schedules.models import Agent, Schedule

AGENTS = 100
HOURS_BETWEEN_RUNS = 7  # each schedule's runs go back this far apart: ~3-4 per schedule in any 24 hours

# The run's columns that vary, as SQL over ``n`` (the series) and ``s`` (the schedule row).
# States by share: 96.4% succeeded, 3% failed, 0.4% dead, 0.1% unknown, 0.1% skipped (overlap).
VARYING = {
    "schedule_id": "s.id",
    "agent_id": "s.agent_id",
    "trigger": "'schedule'",
    "tick_at": "%(now)s - make_interval(hours => (n / %(schedules)s)::int * " + str(HOURS_BETWEEN_RUNS) + ")",
    "state": "CASE WHEN mod(n, 1000) = 1 THEN 'unknown' WHEN mod(n, 1000) = 2 THEN 'skipped' "
             "WHEN mod(n, 250) = 3 THEN 'dead' WHEN mod(n, 100) < 3 THEN 'failed' ELSE 'succeeded' END",
    "skip_reason": "CASE WHEN mod(n, 1000) = 2 THEN 'overlap' ELSE '' END",
    "error_category": "CASE WHEN mod(n, 1000) IN (1, 3) OR mod(n, 250) = 3 OR mod(n, 100) < 3 "
                      "THEN 'agent_error' ELSE '' END",
    "idempotency_key": "'bench-' || n",
    "run_number": "n / %(schedules)s + 1",
    "attempt": "1",
    "lateness_ms": "mod(n::bigint * 7919, 2000)",
    "created_at": "%(now)s - make_interval(hours => (n / %(schedules)s)::int * " + str(HOURS_BETWEEN_RUNS) + ")",
    "started_at": "%(now)s - make_interval(hours => (n / %(schedules)s)::int * " + str(HOURS_BETWEEN_RUNS) + ")",
    "finished_at": "%(now)s - make_interval(hours => (n / %(schedules)s)::int * " + str(HOURS_BETWEEN_RUNS)
                   + ", secs => 1 + (mod(n, 30)))",
    "output": "'{\"summary\": \"done\"}'::jsonb",
}


def registry_create(schedules: int, *, now: datetime) -> None:
    agents = Agent.objects.bulk_create([Agent(name=f"bench-{n}") for n in range(AGENTS)])
    Schedule.objects.bulk_create(
        [Schedule(agent=agents[n % AGENTS], name=f"s{n}", cron="*/5 * * * *",
                  timezone=("UTC", "America/New_York", "Europe/Berlin")[n % 3],
                  next_fire_at=now + timedelta(seconds=n % 7200), next_tick_at=now + timedelta(seconds=n % 7200),
                  consecutive_failures=1 if n % 97 == 0 else 0,
                  paused=n % 211 == 0, paused_reason="auto-paused after 5 consecutive failures" if n % 211 == 0 else "")
         for n in range(schedules)], batch_size=2000)


def ledger_create(runs: int, *, now: datetime, batch: int = 200_000) -> None:
    """``runs`` rows spread evenly over the schedules, newest first, in batches of one statement each."""
    columns = [field for field in Run._meta.concrete_fields if not field.primary_key]
    schedules = Schedule.objects.count()
    table = Run._meta.db_table
    for first in range(0, runs, batch):
        select, params = _select(columns, now=now, schedules=schedules)
        sql = (f"INSERT INTO {table} ({', '.join(field.column for field in columns)}) "
               f"SELECT {select} FROM generate_series({first}, {min(first + batch, runs) - 1}) AS n "
               f"JOIN (SELECT id, agent_id, row_number() OVER (ORDER BY id) - 1 AS k FROM {Schedule._meta.db_table}) "
               f"AS s ON s.k = mod(n, {schedules})")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute(f"VACUUM ANALYZE {Schedule._meta.db_table}")


def _select(columns: list[Any], *, now: datetime, schedules: int) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"now": now, "schedules": schedules}
    parts = []
    for field in columns:
        if field.attname in VARYING:
            parts.append(VARYING[field.attname])
        else:
            params[field.attname] = _default(field)
            parts.append(f"%({field.attname})s")
    return ", ".join(parts), params


def _default(field: Field) -> Any:
    value = field.get_default()
    if value is None:
        return None
    return field.get_db_prep_save(value, connection)

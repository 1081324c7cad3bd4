"""Tickwise's side of the beat benchmark."""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from schedules.firing import next_due_at, schedules_fire_due
from schedules.models import Schedule, ScheduleKind
from schedules.services import schedule_save


def tickwise_scheduler(app):
    from schedules.beat import TickwiseScheduler

    return TickwiseScheduler(app=app)


# ``tickwise_loop`` mirrors these two methods of ``schedules/beat.py`` (a hash
# of each one's source): when either changes, the benchmark says so.
MIRRORED = {"tick": "3230dce06c7a212c", "fire_agent_schedules": "7253462f7e9b935e"}


def mirror_drift() -> list[str]:
    """Names of the mirrored beat methods whose source changed since ``tickwise_loop`` was written."""
    import ast
    import hashlib
    import inspect

    from schedules import beat

    source = inspect.getsource(beat)
    found = {node.name: hashlib.sha256(ast.get_source_segment(source, node).encode()).hexdigest()[:16]
             for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)}
    return [name for name, digest in MIRRORED.items() if found.get(name) != digest]


def tickwise_loop(scheduler, *, now: datetime) -> int:
    """One ``TickwiseScheduler.tick()`` without its sleep, with the clock passed in.

    The housekeeping pulses are served on the real clock, as in the beat; agent
    schedules fire at ``now`` (the benchmark walks a virtual clock minute by
    minute, so that 1% of the schedules are due without waiting for real
    minutes). Step for step ``fire_agent_schedules``, which reads the clock itself.
    """
    DatabaseScheduler.tick(scheduler)
    close_old_connections()
    next_due = next_due_at()
    if next_due is not None and next_due > now:
        return 0
    batch, runs = settings.TICKWISE["BEAT_BATCH"], 0
    while True:
        report = schedules_fire_due(now=now, batch=batch)
        runs += report.runs
        if report.schedules < batch:
            return runs


def tickwise_fired_names(*, tick_at: datetime) -> list[str]:
    from runs.models import Run

    return list(Run.objects.filter(tick_at=tick_at).values_list("schedule__name", flat=True))


def tickwise_edit_due_now(name: str, *, now: datetime) -> None:
    """Turn a cron schedule into a one-shot at ``now``, through the registry service."""
    schedule = Schedule.objects.get(name=name)
    schedule.kind, schedule.cron, schedule.run_at = ScheduleKind.ONCE, "", now
    schedule_save(schedule, now=now)


def tickwise_run_schedule(run_id: int) -> str | None:
    from runs.models import Run

    run = Run.objects.filter(id=run_id).select_related("schedule").first()
    return run.schedule.name if run and run.schedule else None


def tickwise_explain(scheduler, *, now: datetime) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements an idle loop runs on the schedule table.

    The statements are captured from a real loop, so the plans are those of
    whatever the beat runs; they are explained in a transaction rolled back.
    """
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        tickwise_loop(scheduler, now=now)
    statements = [q["sql"] for q in captured.captured_queries if 'FROM "schedules_schedule"' in q["sql"]]
    plans = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in statements:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plans[sql] = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return plans

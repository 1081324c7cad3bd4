"""Tickwise's side of the beat benchmark."""
from __future__ import annotations

from datetime import datetime, timedelta

from schedules.models import Schedule, ScheduleKind
from schedules.services import schedule_save


def tickwise_scheduler(app):
    from triggers.beat import TickwiseScheduler

    return TickwiseScheduler(app=app)


def tickwise_loop(scheduler, *, now: datetime) -> int:
    """One ``TickwiseScheduler.tick()`` without its sleep (``loop``), with the agent schedules' clock passed in.

    The housekeeping pulses are served on the real clock, as in the beat; the
    benchmark walks a virtual clock minute by minute, so that 1% of the
    schedules are due without waiting for real minutes. Returns the rows inserted.
    """
    return scheduler.loop(now=now).runs


def tickwise_pulses_as_restarted(*, now: datetime) -> None:
    """The housekeeping pulses as a restarted beat finds them: last sent a minute ago.

    A beat writes the pulses' ``last_run_at`` every 3 minutes, so the outbox
    sweeper (every 5 s) and the lease reaper (every 15 s) are due as it
    starts, and its first loop sends one of them (celery beat sends one task
    per tick). ``update()`` sends no change signal.
    """
    from django_celery_beat.models import PeriodicTask

    from runs.pulses import PULSES

    PeriodicTask.objects.filter(name__in=[name for name, *_ in PULSES]).update(last_run_at=now - timedelta(minutes=1))


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
    table = Schedule._meta.db_table
    statements = [q["sql"] for q in captured.captured_queries if f"FROM {table}" in q["sql"].replace('"', "")]
    plans = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in statements:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plans[sql] = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return plans

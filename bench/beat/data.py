"""The benchmark's schedules: one seeded list, loaded into each scheduler's own store.

Every cron has five fields on the local wall clock of one of 20 IANA zones. The
four shapes use random minutes and hours (ranges wrap past midnight), so that
in every minute of the day about 1% of the schedules are due, not just on
average (the exact count per minute is reported):

=======  ===================================  ==========================
weight   shape                                share of minutes it fires
=======  ===================================  ==========================
50%      ``M H1-H2 * * *`` (14-15 hours)      14.5 / 1440
25%      ``M1,M2 H,H,H,H,H,H,H * * *``        14 / 1440
15%      ``M1,M2,M3 H,H,H,H,H * * *``         15 / 1440
10%      ``O-59/4 H * * *`` (one hour)        15 / 1440
=======  ===================================  ==========================
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

ZONES = (
    "UTC", "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/Sao_Paulo", "America/St_Johns", "Europe/London", "Europe/Berlin", "Europe/Moscow",
    "Africa/Lagos", "Africa/Johannesburg", "Asia/Dubai", "Asia/Kolkata", "Asia/Kathmandu",
    "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland",
)
TASK = "bench.agent_run"  # what the incumbents' entries send (no worker consumes it)
AGENT = "bench-agent"


@dataclass(frozen=True)
class Spec:
    name: str
    cron: str
    zone: str

    @property
    def fields(self) -> list[str]:
        return self.cron.split()


def _sample(rng: random.Random, population: int, count: int) -> str:
    return ",".join(str(value) for value in sorted(rng.sample(range(population), count)))


def _hour_range(rng: random.Random) -> str:
    span, first = rng.choice((14, 15)), rng.randrange(24)
    last = first + span - 1
    return f"{first}-{last}" if last < 24 else f"{first}-23,0-{last - 24}"


def _cron(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.50:
        return f"{rng.randrange(60)} {_hour_range(rng)} * * *"
    if shape < 0.75:
        return f"{_sample(rng, 60, 2)} {_sample(rng, 24, 7)} * * *"
    if shape < 0.90:
        return f"{_sample(rng, 60, 3)} {_sample(rng, 24, 5)} * * *"
    return f"{rng.randrange(4)}-59/4 {rng.randrange(24)} * * *"


def specs_generate(count: int, *, seed: int) -> list[Spec]:
    rng = random.Random(seed)
    return [Spec(f"s{index:06d}", _cron(rng), rng.choice(ZONES)) for index in range(count)]


# --- Tickwise: Schedule rows -----------------------------------------------------

def tickwise_load(specs: list[Spec], *, after: datetime) -> None:
    """Insert one cron schedule per spec, planned to its first tick after ``after``.

    Jitter is 0, so the plan does not depend on the primary key and
    ``next_fire_at`` can be computed before the bulk insert.
    """
    from core import timing
    from schedules.models import Agent, Schedule

    agent = Agent.objects.create(name=AGENT, adapter="echo")
    rows = []
    for spec in specs:
        schedule = Schedule(agent=agent, name=spec.name, kind="cron", cron=spec.cron, timezone=spec.zone)
        tick = timing.next_tick(schedule.plan(), after=after)
        schedule.next_tick_at = schedule.next_fire_at = tick.at if tick else None
        rows.append(schedule)
    Schedule.objects.bulk_create(rows, batch_size=5000)
    _analyze("schedules_schedule")


def tickwise_unload() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE runs_run, schedules_schedule, schedules_agent RESTART IDENTITY CASCADE")


def _analyze(*tables: str) -> None:
    # Fresh statistics, as autovacuum would give a table of this size in production.
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


# --- django-celery-beat: PeriodicTask + CrontabSchedule rows ----------------------

def dcb_load(specs: list[Spec], *, last_run_at: datetime) -> None:
    """One enabled PeriodicTask per spec; identical (cron, zone) pairs share a CrontabSchedule."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

    keys = sorted({(spec.cron, spec.zone) for spec in specs})
    crontabs = CrontabSchedule.objects.bulk_create(
        [_crontab(cron, zone) for cron, zone in keys], batch_size=5000)
    ids = {key: row.id for key, row in zip(keys, crontabs)}
    PeriodicTask.objects.bulk_create(
        [PeriodicTask(name=spec.name, task=TASK, crontab_id=ids[(spec.cron, spec.zone)],
                      kwargs=json.dumps({"schedule": spec.name}), last_run_at=last_run_at)
         for spec in specs], batch_size=5000)
    PeriodicTasks.update_changed()  # what a save() through the ORM would have signalled
    _analyze("django_celery_beat_periodictask", "django_celery_beat_crontabschedule")


def _crontab(cron: str, zone: str):
    from django_celery_beat.models import CrontabSchedule

    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    return CrontabSchedule(minute=minute, hour=hour, day_of_month=day_of_month,
                           month_of_year=month_of_year, day_of_week=day_of_week, timezone=zone)


def dcb_unload() -> None:
    """Delete the bench's tasks in SQL: through the ORM each deletion signals a change."""
    from django.db import connection
    from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask, PeriodicTasks

    tasks = PeriodicTask._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {tasks} WHERE task = %s", [TASK])
        for model, column in ((CrontabSchedule, "crontab_id"), (ClockedSchedule, "clocked_id")):
            cursor.execute(f"DELETE FROM {model._meta.db_table} s WHERE NOT EXISTS "
                           f"(SELECT 1 FROM {tasks} t WHERE t.{column} = s.id)")
    PeriodicTasks.update_changed()


# --- celery-redbeat: hashes and one sorted set in Redis ---------------------------

def redbeat_entry(app, spec: Spec, *, last_run_at: datetime | None):
    """A RedBeat entry for the spec.

    RedBeat's crontab has no per-entry zone (fields are read on the app's
    clock, UTC here): the cron fields are kept, the zone is dropped.
    """
    from celery.schedules import crontab
    from redbeat.schedulers import RedBeatSchedulerEntry

    minute, hour, day_of_month, month_of_year, day_of_week = spec.fields
    schedule = crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month_of_year, day_of_week=day_of_week, app=app)
    entry = RedBeatSchedulerEntry(spec.name, TASK, schedule, kwargs={"schedule": spec.name}, app=app)
    entry.last_run_at = last_run_at
    return entry


def redbeat_load(app, specs: list[Spec], *, last_run_at: datetime, chunk: int = 2000) -> None:
    """Write what ``RedBeatSchedulerEntry.save()`` writes, pipelined in chunks."""
    from redbeat.schedulers import get_redis

    client = get_redis(app)
    for start in range(0, len(specs), chunk):
        with client.pipeline(transaction=False) as pipe:
            for spec in specs[start:start + chunk]:
                _redbeat_write(pipe, app, redbeat_entry(app, spec, last_run_at=last_run_at))
            pipe.execute()


def redbeat_pulses_as_restarted(app, *, now: datetime) -> None:
    """Tickwise's housekeeping pulses as RedBeat entries, last sent a minute ago.

    Every scheduler serves the same pulses in the same state: Tickwise and
    django-celery-beat read them from the ``PeriodicTask`` rows, RedBeat from
    its own store, so its start-up sends a due pulse too and its idle loops
    look at them as theirs do. They are stored entries (as an admin or a
    deployment script would save them), not ``beat_schedule`` statics, which
    RedBeat would re-save on every start.
    """
    from celery.schedules import schedule
    from redbeat.schedulers import RedBeatSchedulerEntry, get_redis

    from runs.pulses import PULSES

    with get_redis(app).pipeline(transaction=False) as pipe:
        for name, task, every, period in PULSES:
            entry = RedBeatSchedulerEntry(name, task, schedule(timedelta(**{period: every}), app=app), app=app)
            entry.last_run_at = now - timedelta(minutes=1)
            _redbeat_write(pipe, app, entry)
        pipe.execute()


def _redbeat_write(pipe, app, entry) -> None:
    from redbeat.decoder import RedBeatJSONEncoder

    definition = {"name": entry.name, "task": entry.task, "args": entry.args, "kwargs": entry.kwargs,
                  "options": entry.options, "schedule": entry.schedule, "enabled": entry.enabled}
    meta = {"last_run_at": entry.last_run_at}
    pipe.hset(entry.key, "definition", json.dumps(definition, cls=RedBeatJSONEncoder))
    pipe.hset(entry.key, "meta", json.dumps(meta, cls=RedBeatJSONEncoder))
    pipe.zadd(app.redbeat_conf.schedule_key, {entry.key: entry.score})


def long_ago(now: datetime) -> datetime:
    """A last run old enough that every benchmark cron has fired since (all have ``dom=* mon=*``)."""
    return now - timedelta(days=8)

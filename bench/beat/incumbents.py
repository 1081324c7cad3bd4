"""The incumbents' side of the beat benchmark: django-celery-beat and celery-redbeat.

Neither takes the clock as an argument, so a "1% due" loop is set up by making
the chosen entries due *now* in the scheduler's own state, outside the timed
part: django-celery-beat's entries get an old ``last_run_at`` and go to the top
of its heap (the state its heap reaches when their minute arrives); RedBeat's
get an old ``last_run_at`` in their meta and a score of now in the sorted set
(what ``RedBeatSchedulerEntry.reschedule`` writes). The timed part is the
scheduler's own unmodified code.
"""
from __future__ import annotations

import heapq
import json
import time
from datetime import datetime
from types import SimpleNamespace

from bench.beat.data import TASK, long_ago

# --- django-celery-beat -------------------------------------------------------------


def dcb_scheduler(app):
    from django_celery_beat.schedulers import DatabaseScheduler

    return DatabaseScheduler(app=app)


def dcb_arm(scheduler, names: list[str], *, now: datetime) -> int:
    """Make the named entries due now; returns how many the scheduler has loaded.

    django-celery-beat leaves out crontabs whose single hour is more than two
    hours from the server's: those are not in its heap and cannot fire now.
    """
    from celery.beat import event_t

    wanted, armed, heap = set(names), 0, scheduler._heap
    for index, event in enumerate(heap):
        entry = event[2]
        if entry.name in wanted:
            entry.last_run_at = entry.model.last_run_at = long_ago(now)
            heap[index] = event_t(scheduler._when(entry, 0), event[1], entry)
            armed += 1
    heapq.heapify(heap)
    return armed


def dcb_drain(scheduler, *, limit: int, seconds: float) -> dict[str, float]:
    """Tick until nothing is due (one task per tick, as celery beat does), then sync.

    ``sync()`` writes the fired entries' ``last_run_at`` back; the beat service
    does it every 3 minutes rather than per loop, but the writes are the same.
    Bounded by ``limit`` sends and ``seconds``.
    """
    deadline, sent = time.monotonic() + seconds, 0
    while sent < limit and time.monotonic() < deadline:
        if scheduler.tick() > 0:
            break
        sent += 1
    scheduler.sync()
    return {"sent": sent}


def dcb_edit_due_now(name: str, *, now: datetime) -> None:
    """Make the task a one-off at ``now`` (a ClockedSchedule), saved through the ORM."""
    from django_celery_beat.models import ClockedSchedule, PeriodicTask

    task = PeriodicTask.objects.get(name=name)
    task.crontab, task.one_off = None, True
    task.clocked = ClockedSchedule.objects.create(clocked_time=now)
    task.save()


# --- celery-redbeat -----------------------------------------------------------------


def redbeat_scheduler(app, *, client=None):
    """A RedBeat scheduler holding the beat lock, as ``celery beat`` would after ``beat_init``."""
    from redbeat.schedulers import REDBEAT_REDIS_KEY, RedBeatScheduler, acquire_distributed_beat_lock, ensure_conf

    ensure_conf(app)
    if client is not None:
        setattr(app, REDBEAT_REDIS_KEY, client)
    scheduler = RedBeatScheduler(app=app)
    acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=scheduler))
    return scheduler


def redbeat_arm(app, names: list[str], *, now: datetime) -> int:
    from redbeat.decoder import RedBeatJSONEncoder, to_timestamp
    from redbeat.schedulers import RedBeatSchedulerEntry, get_redis

    meta = json.dumps({"last_run_at": long_ago(now)}, cls=RedBeatJSONEncoder)
    with get_redis(app).pipeline(transaction=False) as pipe:
        for name in names:
            key = RedBeatSchedulerEntry.generate_key(app, name)
            pipe.hset(key, "meta", meta)
            pipe.zadd(app.redbeat_conf.schedule_key, {key: to_timestamp(now) - 1})
        pipe.execute()
    return len(names)


def redbeat_edit_due_now(app, name: str, *, now: datetime) -> None:
    """Replace the entry with a one-shot rrule at ``now`` (RedBeat's one-off)."""
    from redbeat.schedulers import RedBeatSchedulerEntry
    from redbeat.schedules import rrule

    entry = RedBeatSchedulerEntry(name, TASK, rrule("SECONDLY", dtstart=now, count=1, app=app),
                                  kwargs={"schedule": name}, app=app)
    entry.last_run_at = None  # never run: due at dtstart (celery's entry would say "ran now")
    entry.delete()
    entry.save()

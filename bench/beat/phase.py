"""One scheduler's in-process measurements, in a fresh process.

Run by ``python -m bench.beat`` as::

    python -m bench.beat.phase tickwise|dcb|redbeat --loops N --base ISO [--due FILE]

with the bench's DATABASE_URL and REDIS_URL. Prints JSON lines as it goes (so
a phase stopped at its time limit still reports what it measured):

- ``startup``: construction plus first tick: seconds, SQL statements, Redis
  commands, and the resident set size the process gained (``VmRSS`` after
  minus before). Before the baseline comes what ``celery beat`` does before it
  builds the scheduler it runs (``preamble``): imports, ``django.setup()``,
  loading and finalizing the app, and its banner, which imports the
  scheduler class and resolves the broker's transport;
- ``idle`` and ``due``: one line per loop with nothing due (three times
  ``--loops``, before any 1% loop) / with 1% due;
- ``due_sets`` (Tickwise only): which schedules each 1% loop fired, so the
  incumbents are handed exactly the same ones.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

MINUTE = timedelta(minutes=1)
IDLE_LOOPS = 3  # idle loops are cheap: three times as many samples for their median


def emit(kind: str, **values) -> None:
    print(json.dumps({"kind": kind, **values}, default=str), flush=True)


def emit_sample(kind: str, sample, **extra) -> None:
    emit(kind, seconds=sample.seconds, ops=sample.queries + sample.commands, **extra)


SCHEDULERS = {"tickwise": "triggers.beat:TickwiseScheduler",
              "dcb": "django_celery_beat.schedulers:DatabaseScheduler",
              "redbeat": "redbeat.RedBeatScheduler"}


def preamble(app, system: str) -> None:
    """What ``celery beat`` does before building its scheduler (``celery.apps.beat.Beat.run``)."""
    from celery.apps.beat import Beat

    beat = Beat(app=app, scheduler=SCHEDULERS[system], quiet=True)
    beat.init_loader()  # the app's task modules, then app.finalize()
    # The banner: a lazy scheduler (the class imported, no set-up) and the broker URL.
    beat.startup_info(beat.Service(app=app, scheduler_cls=beat.scheduler_cls))


def startup(construct, counter) -> object:
    from bench.beat.measure import measure, rss_kib

    gc.collect()
    rss_before, hwm_before = rss_kib()
    sample = measure(construct, counter=counter)
    rss_after, hwm_after = rss_kib()
    emit_sample("startup", sample, rss_mib=(rss_after - rss_before) / 1024,
                peak_mib=(hwm_after - hwm_before) / 1024)
    return sample.result


def tickwise_phase(app, args) -> None:
    from bench.beat.measure import measure
    from bench.beat.stores import queue_purge
    from bench.beat.tickwise import tickwise_explain, tickwise_fired_names, tickwise_loop, tickwise_scheduler

    def construct():
        scheduler = tickwise_scheduler(app)
        scheduler.loop()  # TickwiseScheduler.tick() without its sleep, on the real clock: nothing is due yet
        return scheduler

    scheduler, due_sets = startup(construct, None), []
    # Every schedule's first tick is a whole minute after ``base``: half a minute in, none is due.
    for _ in range(IDLE_LOOPS * args.loops):
        emit_sample("idle", measure(lambda: tickwise_loop(scheduler, now=args.base + MINUTE / 2)))
    for k in range(1, args.loops + 1):
        minute = args.base + k * MINUTE
        sample = measure(lambda: tickwise_loop(scheduler, now=minute + timedelta(seconds=0.25)))
        due_sets.append(tickwise_fired_names(tick_at=minute))
        emit_sample("due", sample, due=len(due_sets[-1]), sent=sample.result)
        queue_purge()
    emit("explain", plans=tickwise_explain(scheduler, now=args.base + (args.loops + 0.5) * MINUTE))
    emit("due_sets", sets=due_sets)


def dcb_phase(app, args) -> None:
    from bench.beat.incumbents import dcb_arm, dcb_drain, dcb_scheduler
    from bench.beat.measure import measure
    from bench.beat.stores import queue_purge

    def construct():
        scheduler = dcb_scheduler(app)
        scheduler.tick()
        return scheduler

    scheduler = startup(construct, None)
    for _ in range(IDLE_LOOPS * args.loops):
        emit_sample("idle", measure(scheduler.tick))
    for names in args.due_sets:
        armed = dcb_arm(scheduler, names, now=datetime.now(UTC))
        sample = measure(lambda: dcb_drain(scheduler, limit=armed + 1, seconds=args.drain_seconds))
        emit_sample("due", sample, due=len(names), armed=armed, sent=sample.result["sent"])
        queue_purge()


def redbeat_phase(app, args) -> None:
    from bench.beat.incumbents import redbeat_arm, redbeat_scheduler
    from bench.beat.measure import CommandCounter, measure
    from bench.beat.stores import queue_purge

    counter = CommandCounter()

    def construct():
        scheduler = redbeat_scheduler(app, client=counter.client(app.conf.redbeat_redis_url))
        scheduler.tick()
        return scheduler

    scheduler = startup(construct, counter)
    try:
        for _ in range(IDLE_LOOPS * args.loops):
            emit_sample("idle", measure(scheduler.tick, counter=counter))
        for names in args.due_sets:
            redbeat_arm(app, names, now=datetime.now(UTC))
            emit_sample("due", measure(scheduler.tick, counter=counter), due=len(names), sent=len(names))
            queue_purge()
    finally:
        scheduler.lock.release()  # the beat process measured next takes it at once


PHASES = {"tickwise": tickwise_phase, "dcb": dcb_phase, "redbeat": redbeat_phase}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.beat.phase")
    parser.add_argument("system", choices=sorted(PHASES))
    parser.add_argument("--loops", type=int, default=5)
    parser.add_argument("--base", type=datetime.fromisoformat, required=True)
    parser.add_argument("--due", type=Path, help="JSON list of name lists (the Tickwise due sets)")
    parser.add_argument("--drain-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    args.due_sets = json.loads(args.due.read_text()) if args.due else []

    import django

    django.setup()
    from bench.beat import incumbents, tickwise  # noqa: F401  (imported before the memory baseline)
    from bench.beat.celeryapp import app
    from bench.beat.stores import quiet

    quiet()
    preamble(app, args.system)
    PHASES[args.system](app, args)


if __name__ == "__main__":
    main(sys.argv[1:])

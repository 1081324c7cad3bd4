"""Start-up of one scheduler in a fresh process: construction plus its first tick.

Run by ``bench_beat.py`` as ``python bench/beat_startup.py tickwise|dcb|redbeat``
with the bench's DATABASE_URL and REDIS_URL. Prints one JSON line: seconds,
SQL statements, Redis commands, and the resident set size the process gained
(``VmRSS`` after minus before, and the peak ``VmHWM`` over that baseline).
Imports and ``django.setup()`` happen before the baseline: every beat pays them.
"""
from __future__ import annotations

import gc
import json
import sys


def _first_tick(system: str, app, counter) -> None:
    if system == "tickwise":
        from beat_tickwise import tickwise_scheduler
        from django_celery_beat.schedulers import DatabaseScheduler

        scheduler = tickwise_scheduler(app)
        DatabaseScheduler.tick(scheduler)  # TickwiseScheduler.tick() without its sleep
        scheduler.fire_agent_schedules()
    elif system == "dcb":
        from beat_incumbents import dcb_scheduler

        dcb_scheduler(app).tick()
    else:
        from beat_incumbents import redbeat_scheduler

        scheduler = redbeat_scheduler(app, client=counter.client(app.conf.redbeat_redis_url))
        scheduler.tick()
        scheduler.lock.release()  # the next process (or benchmark phase) takes it at once


def main(system: str) -> None:
    import django

    django.setup()
    import beat_incumbents  # noqa: F401  (imports count towards the baseline)
    import beat_tickwise  # noqa: F401
    from beat_celeryapp import app
    from beat_measure import CommandCounter, measure, rss_kib

    app.loader.import_default_modules()
    counter = CommandCounter()
    gc.collect()
    rss_before, hwm_before = rss_kib()
    sample = measure(lambda: _first_tick(system, app, counter), counter=counter)
    rss_after, hwm_after = rss_kib()
    print(json.dumps({"seconds": sample.seconds, "queries": sample.queries, "commands": sample.commands,
                      "rss_delta_kib": rss_after - rss_before, "peak_delta_kib": hwm_after - hwm_before}))


if __name__ == "__main__":
    main(sys.argv[1])

"""The Celery app the benchmark's beat processes run with: Tickwise's, plus incumbent settings.

``celery -A bench.beat.celeryapp beat -S <scheduler>`` (from the repository root)
starts django-celery-beat's or RedBeat's beat against the same broker. Every
scheduler wakes at least every 5 seconds, Tickwise's default
``TICKWISE_BEAT_MAX_SLEEP`` and django-celery-beat's own default, so the three
are compared on the same longest sleep.
"""
from __future__ import annotations

from scheduler_project.celery import app

MAX_INTERVAL = 5

app.conf.beat_max_loop_interval = MAX_INTERVAL
# RedBeat keeps its entries and its lock in the broker's Redis database (the bench's, 2).
app.conf.redbeat_redis_url = app.conf.broker_url
app.conf.redbeat_redis_options = {}

__all__ = ["app", "MAX_INTERVAL"]

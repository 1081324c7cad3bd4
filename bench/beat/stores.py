"""Where the beat benchmark runs: database ``tickwise_bench`` (dropped and recreated each run) and Redis database 2."""
from __future__ import annotations

import logging

from kombu.transport.redis import PRIORITY_STEPS, Channel

from bench.common import queues_purge, redis_bench

DATABASE = "tickwise_bench"
REDIS_DB = 2
QUEUE = "tickwise"  # CELERY_TASK_DEFAULT_QUEUE: where every benchmark message lands
# Its lists, one per kombu priority step, in the order a worker pops them: a Tickwise
# scheduled tick is sent at the routine priority (runs.publish), the incumbents' at none.
QUEUE_KEYS = [QUEUE, *(f"{QUEUE}{Channel.sep}{step}" for step in PRIORITY_STEPS if step)]


def redis_flush() -> None:
    redis_bench().flushdb()


def queue_purge() -> None:
    """Drop every message the benchmark published (nothing consumes this queue)."""
    queues_purge(redis_bench(), QUEUE)


def quiet() -> None:
    """Each incumbent logs every send at INFO; thousands of lines would drown the tables."""
    for name in ("celery", "django_celery_beat", "redbeat", "tickwise"):
        logging.getLogger(name).setLevel(logging.WARNING)

"""This test run's queue as Redis holds it: one list per message priority (kombu's Redis transport).

A run's message goes to the plain list (priority 0, the urgent lane) or to
``<queue>\\x06\\x163`` (the routine lane, ``runs.publish``); a worker pops the
lists in that order. Tests that look at or empty the queue look at all of them.
"""
from __future__ import annotations

import redis
from django.conf import settings
from kombu.transport.redis import PRIORITY_STEPS as STEPS
from kombu.transport.redis import Channel

SEPARATOR = Channel.sep  # between a queue's name and a priority step, in its lists' keys


def queue_keys(queue: str | None = None) -> list[str]:
    """The lists of ``queue`` (this run's by default), in the order a worker pops them."""
    name = queue or settings.CELERY_TASK_DEFAULT_QUEUE
    return [name if step == 0 else f"{name}{SEPARATOR}{step}" for step in STEPS]


def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def queue_clear(client: redis.Redis | None = None) -> None:
    (client or broker()).delete(*queue_keys())


def queued(client: redis.Redis | None = None) -> list[bytes]:
    """Every waiting message, the next a worker takes first (each list is consumed from its right end)."""
    client = client or broker()
    return [raw for key in queue_keys() for raw in reversed(client.lrange(key, 0, -1))]

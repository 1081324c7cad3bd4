"""Wake sleeping beats when a schedule changes.

A notice is only a hint: beats re-read ``next_fire_at`` from PostgreSQL, and
without notices they still wake every ``TICKWISE_BEAT_MAX_SLEEP`` seconds.
Pub/sub reaches every beat; a notice sent while a beat is busy waits in its
subscription buffer. Pub/sub channels ignore Redis database numbers, so the
channel is named after the broker's database and queue: stacks sharing one
Redis server (test runs, the benchmark, several deployments) do not wake each
other's beats.
"""
from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import transaction
from redis.client import PubSub

log = logging.getLogger("tickwise.notify")

CHANNEL_PREFIX = "tickwise:beat:wake"


def wake_channel() -> str:
    db = redis.connection.parse_url(settings.CELERY_BROKER_URL).get("db", 0)
    return f"{CHANNEL_PREFIX}:{db}:{settings.CELERY_TASK_DEFAULT_QUEUE}"


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)


def beat_wake_now() -> None:
    try:
        _client().publish(wake_channel(), b"1")
    except redis.RedisError:
        log.warning("could not notify beats; they pick the change up within their max sleep")


def beat_wake_on_commit() -> None:
    transaction.on_commit(beat_wake_now)


class WakeListener:
    """A beat's subscription: ``wait(seconds)`` returns early when a notice arrives."""

    def __init__(self) -> None:
        self._pubsub: PubSub | None = None

    def wait(self, seconds: float) -> bool:
        try:
            pubsub = self._subscription()
            message = pubsub.get_message(timeout=seconds)
            while pubsub.get_message(timeout=0) is not None:
                pass  # drain: one wake-up stands for any number of notices
            return message is not None
        except redis.RedisError:
            self._pubsub = None  # reconnect next time; the database stays the clock
            return False

    def _subscription(self) -> PubSub:
        if self._pubsub is None:
            self._pubsub = _client().pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(wake_channel())
        return self._pubsub

"""The floor for ``python -m bench.workers``: a bare Celery app with one no-op task.

Same broker and the same delivery settings as Tickwise's workers (``acks_late``
with ``reject_on_worker_lost``, prefetch 1, JSON, the same time limits), but no
Django, no database and no result backend. The task records its completion
with one ``RPUSH`` so the driver can count completions and compute latency
without polling a result store.

    python -m celery -A bench.workers.raw_app worker --queues bench-workers-raw
"""
from __future__ import annotations

import os
import time

import redis
from celery import Celery

QUEUE = os.environ.get("BENCH_RAW_QUEUE", "bench-workers-raw")
REDIS_URL = os.environ["REDIS_URL"]

# Not the current app: the benchmark driver also loads Tickwise's app.
app = Celery("bench_raw", broker=REDIS_URL, set_as_current=False)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    timezone="UTC",
    enable_utc=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": 7200},
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
)

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    # One client per pool child, created after the fork.
    global _client
    if _client is None:
        _client = redis.Redis.from_url(REDIS_URL)
    return _client


@app.task(name="bench.noop", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
          soft_time_limit=3600, time_limit=3660)
def noop(key: str, sent_at: float) -> None:
    """Record ``sent_at,done_at`` under ``key``: one round trip, no other work."""
    _redis().rpush(key, f"{sent_at},{time.time()}")

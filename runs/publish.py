"""Send ``runs.execute`` messages for committed runs.

Every path publishes after commit; a run committed but never published (the
process died in between) is found by the outbox sweeper through
``published_at IS NULL``.

Each message goes in its run's lane (``runs.lanes``).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, NamedTuple

from celery import current_app
from celery.utils import uuid
from django.conf import settings
from django.db import connection, transaction
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from core import internals
from core.faults import fault_point

from . import sql
from .lanes import lane_of
from .models import Run, Trigger

log = logging.getLogger("tickwise.publish")

EXECUTE_TASK = "runs.execute"
BROKER_ERRORS = (KombuError, RedisError, OSError)
HARD_LIMIT_GRACE = 10  # seconds between the soft and the hard time limit
# Messages per Redis round trip: a beat batch reaches the queue in a few
# pipelines instead of one round trip (and one client) per message.
PIPELINE_MESSAGES = 100


class Send(NamedTuple):
    """What a run's message carries besides its id: its time limit and its lane."""
    timeout: int
    priority: int

    @classmethod
    def of(cls, trigger: str, timeout: int | None) -> Send:
        return cls(timeout or settings.CELERY_TASK_SOFT_TIME_LIMIT, lane_of(trigger))


def publish_runs_now(run_ids: Sequence[int], *, sends: Mapping[int, Send] | None = None) -> int:
    """Publish immediately (callers outside a transaction, or the sweeper); returns the runs sent.

    ``sends`` maps run id to its message's time limit and lane when the
    caller knows them (the dispatch path); otherwise they are read here.

    A broker that cannot be reached is logged, not raised: the runs are
    committed, so they will run; they stay unpublished and the outbox sweeper
    sends them once the broker is back. Raising would fail a caller (an API
    request, the beat's loop) whose work is already done.
    """
    if not run_ids:
        return 0
    fault_point("publish.before_send")  # committed, not yet published: the outbox case
    if sends is None:
        sends = {pk: Send.of(trigger, timeout) for pk, trigger, timeout in
                 Run.objects.filter(id__in=list(run_ids)).values_list("id", "trigger", "timeout_seconds")}
    try:
        _send(run_ids, sends)
    except BROKER_ERRORS as error:
        log.warning("could not publish %s run(s), the outbox sweeper will: %s: %s",
                    len(run_ids), type(error).__name__, error)
        return 0
    with connection.cursor() as cursor:
        sql.MARK_PUBLISHED.execute(cursor, {"ids": list(run_ids)})
    return len(run_ids)


def queued_by_lane() -> dict[int, int] | None:
    """How many messages wait in each lane of the execute queue (``runs.lanes``); None when it cannot say.

    The length of each of the Redis transport's priority lists
    (``core.internals``). The outbox sweeper uses it to tell a lost message
    from one waiting its turn.
    """
    app = current_app
    queue = app.amqp.router.route({}, EXECUTE_TASK, None, None)["queue"]
    try:
        with app.connection_for_read() as broker:
            return internals.queued_by_priority(broker.default_channel, queue.name)
    except BROKER_ERRORS as error:
        log.warning("could not count the queued messages: %s: %s", type(error).__name__, error)
        return None


def publish_runs_on_commit(run_ids: Sequence[int], *, sends: Mapping[int, Send] | None = None) -> None:
    """Publish once the current transaction commits; at once outside one.

    Runs dispatched one by one in one transaction go out together: one batch
    of messages and one ``published_at`` UPDATE, not one of each per run.
    """
    ids = list(run_ids)
    if not ids:
        return
    if not transaction.get_connection().in_atomic_block:
        publish_runs_now(ids, sends=sends)
        return
    _open_batch().add(ids, sends)


class _Batch:
    """The runs waiting for one transaction (at one savepoint depth) to commit."""

    def __init__(self, depth: tuple) -> None:
        self.depth = depth
        self.ids: list[int] = []
        self.sends: dict[int, Send] | None = {}

    def add(self, ids: list[int], sends: Mapping[int, Send] | None) -> None:
        self.ids += ids
        if sends is None or self.sends is None:
            self.sends = None  # read them all at publish time
        else:
            self.sends.update(sends)

    def publish(self) -> None:
        publish_runs_now(self.ids, sends=self.sends)

    def waiting(self) -> bool:
        # A rolled-back savepoint drops its callbacks, and the batch with them.
        waiting = internals.on_commit_callbacks(transaction.get_connection())
        return any(callback == self.publish for _, callback, _ in waiting)


_batches = threading.local()


def _open_batch() -> _Batch:
    depth = internals.savepoint_depth(transaction.get_connection())
    batch = getattr(_batches, "current", None)
    if batch is None or batch.depth != depth or not batch.waiting():
        batch = _batches.current = _Batch(depth)
        transaction.on_commit(batch.publish)
    return batch


def _send(run_ids: Sequence[int], sends: Mapping[int, Send]) -> None:
    # A pipeline that fails mid-way leaves published_at unset: the sweeper
    # publishes those runs again, and a run delivered twice is claimed once.
    with current_app.producer_or_acquire() as producer, _pipelined(producer):
        send = _execute_sender(producer)
        for run_id in run_ids:
            # Soft limit: the attempt is recorded failed (timeout). Hard limit: the
            # pool child is killed, and the reaper settles the run after its lease.
            send(run_id, sends.get(run_id) or Send.of(Trigger.SCHEDULE, None))


def _execute_sender(producer: Any) -> Callable[[int, Send], None]:
    """``app.send_task(EXECUTE_TASK, …)`` for a batch, with the per-batch work done once.

    ``send_task`` looks up the task's options, routes it and reads half a
    dozen settings for every message, which costs more than building and
    sending the message. Here Celery's own router runs once per batch, then
    each message is built and sent by Celery's own ``amqp`` functions (so
    publish signals and the protocol are Celery's; ``core.internals``). The
    task ignores its result, so there is no result backend to notify.
    """
    sender = internals.task_message_sender(current_app, EXECUTE_TASK)

    def send(run_id: int, how: Send) -> None:
        sender(producer, uuid(), [run_id], time_limit=how.timeout + HARD_LIMIT_GRACE,
               soft_time_limit=how.timeout, priority=how.priority)
    return send


def _pipelined(producer):
    """kombu 5.7's publish batch where the transport has one; one send per message before it."""
    batch = getattr(producer, "batch", None)
    return batch(max_size=PIPELINE_MESSAGES) if batch else nullcontext()

"""Every private internal of Django, Celery, kombu and django-celery-beat that Tickwise uses, in one place.

Each one buys speed on a hot path or a hook the public API lacks; each call
site goes through a function here (or, for the beat scheduler's inherited
state, is named in ``BEAT_SCHEDULER_STATE``). They were checked against the
versions in ``VERIFIED``, which ``pyproject.toml`` pins. ``missing_internals()``
names any that an upgrade removed or reshaped: the system check
``tickwise.E003`` and ``tests/core/test_internals.py`` call it, so such an
upgrade fails loudly at start-up and in CI instead of misbehaving at run time.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

# The ranges every internal below was read and tested against (see pyproject.toml).
VERIFIED = {"django": "5.2", "celery": "5.5-5.7", "kombu": "5.5-5.7", "django-celery-beat": "2.9"}


# --- Django ------------------------------------------------------------------------

def on_commit_callbacks(connection: BaseDatabaseWrapper) -> list[tuple[Any, ...]]:
    """``connection.run_on_commit``: the callbacks waiting for the current transaction.

    ``runs.publish`` batches the runs of one transaction into one publish; a
    rolled-back savepoint drops its callbacks, and this is how it notices.
    """
    return list(connection.run_on_commit)


def savepoint_depth(connection: BaseDatabaseWrapper) -> tuple[str, ...]:
    """``connection.savepoint_ids``: the open savepoints, outermost first."""
    return tuple(connection.savepoint_ids)


def connection_expired(connection: BaseDatabaseWrapper, *, monotonic_now: float) -> bool:
    """Whether Django would close the connection: it errored, or outlived ``CONN_MAX_AGE`` (``close_at``).

    The beat checks this itself instead of calling ``close_old_connections()``
    every loop, which re-arms a ``SELECT 1`` health check round trip.
    """
    close_at = connection.close_at
    return bool(connection.errors_occurred) or (close_at is not None and monotonic_now >= close_at)


def mark_saved(instance: Model, pk: int, alias: str) -> None:
    """What ``Model.save()`` records on an instance it inserted (``_state``), for rows inserted in bulk."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = alias


# --- Celery and kombu ---------------------------------------------------------------

def task_message_sender(app: Any, name: str) -> Callable[..., None]:
    """Build and send ``name`` messages with Celery's own protocol, routed once.

    ``app.send_task`` reads the task's options, routes and reads settings for
    every message; a beat batch sends hundreds. ``amqp.create_task_message``
    (protocol 2), ``amqp.send_task_message`` and ``amqp.router.route`` are
    what it calls, undocumented. The returned function takes
    ``(producer, task_id, args, *, time_limit, soft_time_limit, priority=0)``
    (the message's priority property, as ``apply_async(priority=…)`` sets it).
    """
    amqp = app.amqp
    route = amqp.router.route({}, name, None, None)
    sent_event, reply_to = app.conf.task_send_sent_event, app.thread_oid

    def send(producer: Any, task_id: str, args: list[Any], *, time_limit: int, soft_time_limit: int,
             priority: int = 0) -> None:
        message = amqp.create_task_message(
            task_id, name, args, {}, reply_to=reply_to, time_limit=time_limit, soft_time_limit=soft_time_limit,
            create_sent_event=sent_event, ignore_result=True)
        amqp.send_task_message(producer, name, message, **{**route, "priority": priority})
    return send


def queued_by_priority(channel: Any, queue: str) -> dict[int, int]:
    """The length of each of ``queue``'s lists in kombu's Redis transport, by priority step.

    It keeps one list per step of ``Channel.priority_steps``, named by
    ``Channel._q_for_pri``; its public ``queue_declare`` answers only their sum.
    """
    with channel.conn_or_acquire() as client, client.pipeline() as pipe:
        for step in channel.priority_steps:
            pipe.llen(channel._q_for_pri(queue, step))
        return dict(zip(channel.priority_steps, map(int, pipe.execute())))


def connection_detach_default_channel(connection: Any) -> Any | None:
    """Take ``connection._default_channel`` (kombu) off the connection and return it.

    On a lost broker connection Celery 5.7's worker collects the connection,
    then closes it again; a channel whose first close failed is closed a second
    time after kombu dropped the transport's settings, and the worker dies
    (``scheduler_project.celery.Consumer``). A detached channel is closed once,
    by the caller.
    """
    channel, connection._default_channel = connection._default_channel, None
    return channel


# Worker consumer hooks ``scheduler_project.celery.Consumer`` relies on.
CONSUMER_BROKER_LOSS = ("on_connection_error_after_connected",)


# --- django-celery-beat ---------------------------------------------------------------

# ``DatabaseScheduler`` state the Tickwise beat (``triggers.beat``) reads and
# writes in its overrides of ``schedule_changed`` and ``sync``: the last change
# stamp seen, the entries sent since the last sync, and the entries by name.
BEAT_SCHEDULER_STATE = ("_last_timestamp", "_dirty", "_schedule")
# Methods the Tickwise beat overrides, so their contract must still be the parent's.
BEAT_SCHEDULER_OVERRIDES = ("schedule_changed", "sync", "enabled_models_qs", "install_default_entries", "tick")
# ``ModelEntry.save()`` writes these back; ``triggers.beat.PulseEntry`` writes them in one UPDATE.
BEAT_ENTRY_SAVED = ("last_run_at", "total_run_count")


# --- the check -----------------------------------------------------------------------

def missing_internals() -> list[str]:
    """Each internal above that the installed versions no longer have, named; empty when all are there."""
    return [*_missing_django(), *_missing_celery(), *_missing_beat()]


def _missing_django() -> list[str]:
    from django.db import connection

    names = ("run_on_commit", "savepoint_ids", "close_at", "errors_occurred")
    missing = [f"django: DatabaseWrapper.{name}" for name in names if not hasattr(connection, name)]
    from django.db.models.base import ModelState

    if not all(hasattr(ModelState(), name) for name in ("adding", "db")):
        missing.append("django: ModelState.adding/db")
    return missing


def _missing_celery() -> list[str]:
    from celery import current_app

    amqp = current_app.amqp
    missing = [f"celery: app.amqp.{name}" for name in ("create_task_message", "send_task_message", "router")
               if not hasattr(amqp, name)]
    if not hasattr(current_app, "thread_oid"):
        missing.append("celery: app.thread_oid")
    missing += _missing_broker_loss()
    if not missing:
        wanted = {"reply_to", "time_limit", "soft_time_limit", "create_sent_event", "ignore_result"}
        accepted = set(inspect.signature(amqp.create_task_message).parameters)
        missing += [f"celery: create_task_message({name}=)" for name in sorted(wanted - accepted)]
    return missing


def _missing_broker_loss() -> list[str]:
    from celery.utils import threads
    from celery.worker.consumer import Consumer
    from kombu import Connection

    missing = [f"celery: Consumer.{name}()" for name in CONSUMER_BROKER_LOSS
               if not callable(getattr(Consumer, name, None))]
    if not callable(getattr(threads, "bound_open_broker_sockets", None)):
        missing.append("celery: celery.utils.threads.bound_open_broker_sockets()")
    if "_default_channel" not in vars(Connection):
        missing.append("kombu: Connection._default_channel")
    from kombu.transport.redis import Channel

    missing += [f"kombu: redis Channel.{name}" for name in ("priority_steps", "_q_for_pri", "conn_or_acquire")
                if not hasattr(Channel, name)]
    return missing


def _missing_beat() -> list[str]:
    from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

    source = inspect.getsource(DatabaseScheduler)
    missing = [f"django-celery-beat: DatabaseScheduler.{name}" for name in BEAT_SCHEDULER_STATE
               if f"self.{name}" not in source]
    missing += [f"django-celery-beat: DatabaseScheduler.{name}()" for name in BEAT_SCHEDULER_OVERRIDES
                if not callable(getattr(DatabaseScheduler, name, None))]
    missing += [f"django-celery-beat: ModelEntry.save_fields {name}" for name in BEAT_ENTRY_SAVED
                if name not in getattr(ModelEntry, "save_fields", ())]
    return missing

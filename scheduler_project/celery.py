"""The Celery app: configured from Django settings (namespace CELERY_)."""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from celery import Celery, signals
from celery.utils.threads import bound_open_broker_sockets
from celery.worker import consumer

from . import logs, metrics_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler_project.settings")

app = Celery("tickwise")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logs.connect_celery(signals)  # json logs: Django's LOGGING, not Celery's text handlers
metrics_server.connect_celery(signals)  # TICKWISE_METRICS_BIND: this host's counters on a port

logger = logging.getLogger("tickwise.worker")


@signals.beat_init.connect
def _stop_without_syncing_in_the_handler(**_: Any) -> None:
    """SIGTERM and SIGINT end the beat by unwinding first, then syncing.

    Celery's beat syncs its schedule *inside* the signal handler. When the
    signal lands while the beat is in the middle of a query, that sync waits
    for the database connection's own lock, held by the interrupted query
    below it on the same stack, and the beat never exits (a supervisor's
    SIGKILL ends it). Raising ``SystemExit`` at once unwinds the query;
    Celery's service loop then syncs in its ``finally``, on a free connection.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # an embedded beat: its host process owns the signals

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit()

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)

# As long as Celery's own cleanup of a broken connection may block on a socket.
CLOSE_TIMEOUT = 5.0


class Consumer(consumer.Consumer):
    """Celery's worker consumer, made to ride out a broker restart (``CELERY_WORKER_CONSUMER``).

    On a lost connection Celery 5.7 collects the connection, then closes it
    (celery#10242). When the worker holds an unacknowledged message and waits
    on BRPOP as Redis goes away, the task channel's first close fails at the
    BRPOP read; collect() then drops the transport's settings (kombu 5.7), and
    the second close, restoring the message, rebuilds a Redis pool from them:
    ``Unrecoverable error: AttributeError('NoneType' object has no attribute
    'hostname')``, and the worker exits 1. Closing that channel first, once,
    and detaching it leaves the second close nothing to redo.
    """

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        _close_task_channel(self.connection)
        super().on_connection_error_after_connected(exc)


def _close_task_channel(connection: Any) -> None:
    """Close the channel the task consumer reads from, once; a failure is logged, never raised.

    When Redis answers, closing puts unacknowledged messages back on the queue;
    when it does not, they wait in Redis for the visibility timeout, and their
    runs for the outbox sweeper, which republishes pending runs.
    """
    from core import internals  # here, not at the top: it loads django.db, which web and CLI imports need not

    if connection is None:
        return
    bound_open_broker_sockets(connection, CLOSE_TIMEOUT)  # a silent peer must not hang the close
    channel = internals.connection_detach_default_channel(connection)
    if channel is None:
        return
    try:
        channel.close()
    except Exception as error:  # a teardown of a broken connection: any error here would kill the worker
        logger.warning("closing the task channel of a lost broker connection failed: %r", error)


@signals.worker_process_init.connect
def _no_ping_per_task(**kwargs) -> None:
    """A worker's first read of each run is its connection check.

    Django's health check would add a ``SELECT 1`` round trip to every task;
    instead ``runs.services.claim.run_load`` reconnects once when a kept
    connection turns out to be broken (server restart, idle timeout).
    """
    from django.db import connections

    for alias in connections:
        connections[alias].settings_dict["CONN_HEALTH_CHECKS"] = False


@signals.task_prerun.connect
def _connections_like_a_request(**kwargs) -> None:
    """Close connections that broke or outlived CONN_MAX_AGE; keep the rest.

    The same rule Django applies around a web request. The fixup no longer
    closes them around every task (``CELERY_DB_REUSE_MAX``).
    """
    from django.db import close_old_connections

    close_old_connections()

"""The Celery app: configured from Django settings (namespace CELERY_)."""
from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler_project.settings")

app = Celery("tickwise")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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

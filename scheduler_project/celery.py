"""The Celery app: configured from Django settings (namespace CELERY_)."""
from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler_project.settings")

app = Celery("tickwise")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
def _connections_like_a_request(**kwargs) -> None:
    """Close connections that broke or outlived CONN_MAX_AGE; keep the rest.

    The same rule Django applies around a web request. The fixup no longer
    closes them around every task (``CELERY_DB_REUSE_MAX``).
    """
    from django.db import close_old_connections

    close_old_connections()

"""Tickwise's settings with persistent database connections: the what-if row of ``bench_workers.py``.

Production settings use ``CONN_MAX_AGE = 0``, and Celery's Django fixup closes
a connection that has reached its age before and after every task, so each run
opens a new PostgreSQL connection. This module keeps everything else as is and
lets a worker keep its connection, to show what that costs per run.
"""
from __future__ import annotations

from scheduler_project.settings import *  # noqa: F403

DATABASES["default"]["CONN_MAX_AGE"] = None  # noqa: F405

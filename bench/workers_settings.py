"""Tickwise's settings with workers keeping their database connection: the what-if of ``bench_workers.py``.

Celery's Django fixup closes every database connection before and after each
task (whatever ``CONN_MAX_AGE`` says), so each run of a production worker opens
a new PostgreSQL connection. ``CELERY_DB_REUSE_MAX`` is Celery's own knob to
keep it for that many tasks; this module changes nothing else.
"""
from __future__ import annotations

from scheduler_project.settings import *  # noqa: F403

CELERY_DB_REUSE_MAX = 1000

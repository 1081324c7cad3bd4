"""Celery tasks, one module per area; Celery's autodiscovery imports this package.

Each task is a thin shell over a service. The task names (``runs.execute``, …)
are the wire contract with the broker and django-celery-beat rows: a module
move never renames one.
"""
from __future__ import annotations

from . import alerts, events, ingress, outbound, runs, waits  # noqa: F401  (registers the tasks)
from .runs import execute, purge_finished, reap_leases, sweep_outbox

__all__ = ["execute", "purge_finished", "reap_leases", "sweep_outbox"]

"""Celery tasks: thin shells over services.

``runs.execute`` ignores its result: the ledger is the record of a run. The
housekeeping pulses keep theirs (django-celery-results, ``CELERY_RESULT_EXTENDED``):
each pulse's last outcome, what it settled, or the error that stopped it, is
in the admin under "Celery Results", so an operator can see that housekeeping
runs. Celery's ``celery.backend_cleanup`` pulse deletes results older than
``result_expires`` (a day).
"""
from __future__ import annotations

import os
import socket

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from runs.services import housekeeping
from runs.services.execute import run_execute


@shared_task(name="runs.execute", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=3600, time_limit=3660)
def execute(run_id: int) -> str | None:
    return run_execute(int(run_id), owner=f"{socket.gethostname()}:{os.getpid()}", now=timezone.now())


@shared_task(name="runs.sweep_outbox", ignore_result=False, soft_time_limit=60, time_limit=90)
def sweep_outbox() -> int:
    return housekeeping.runs_sweep_outbox(now=timezone.now())


@shared_task(name="runs.reap_leases", ignore_result=False, soft_time_limit=60, time_limit=90)
def reap_leases() -> int:
    now = timezone.now()
    reaped = housekeeping.runs_reap_expired_leases(now=now)
    housekeeping.runs_check_dead_letters(now=now)  # reaping is one way runs become dead
    return reaped


@shared_task(name="runs.purge_finished", ignore_result=False, soft_time_limit=600, time_limit=660)
def purge_finished() -> int:
    return housekeeping.runs_purge_finished(now=timezone.now(), keep_days=settings.TICKWISE["RETENTION_DAYS"])

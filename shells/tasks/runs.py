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

from runs.models import RunState
from runs.services import housekeeping
from runs.services.execute import run_execute


class RunNotSucceeded(Exception):
    """Raised by ``runs.execute`` after the ledger recorded a failed, dead or unknown run.

    Only so that Celery's task state (what Flower shows) says FAILURE for a
    run that failed: the outcome is already written. The message is still
    acknowledged (``acks_on_failure``; ``reject_on_worker_lost`` requeues only
    when the worker process dies), so it is never delivered again because of
    this, and ``throws`` makes Celery log it as one line, without a traceback.
    """


NOT_SUCCEEDED = frozenset({RunState.FAILED, RunState.DEAD, RunState.UNKNOWN})


@shared_task(name="runs.execute", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             acks_on_failure=True, throws=(RunNotSucceeded,), soft_time_limit=3600, time_limit=3660)
def execute(run_id: int) -> str | None:
    state = run_execute(int(run_id), owner=f"{socket.gethostname()}:{os.getpid()}", now=timezone.now())
    if state in NOT_SUCCEEDED:
        raise RunNotSucceeded(f"run {run_id} ended {state}")
    return state


# The two frequent pulses send no task events: they would drown what Flower
# shows (17,000 sweeps a day). Their results and the beat's watchdog say whether they run.
@shared_task(name="runs.sweep_outbox", ignore_result=False, send_events=False, soft_time_limit=60, time_limit=90)
def sweep_outbox() -> int:
    return housekeeping.runs_sweep_outbox(now=timezone.now())


@shared_task(name="runs.reap_leases", ignore_result=False, send_events=False, soft_time_limit=60, time_limit=90)
def reap_leases() -> int:
    now = timezone.now()
    reaped = housekeeping.runs_reap_expired_leases(now=now)
    housekeeping.runs_check_dead_letters(now=now)  # reaping is one way runs become dead
    return reaped


@shared_task(name="runs.purge_finished", ignore_result=False, soft_time_limit=600, time_limit=660)
def purge_finished() -> int:
    return housekeeping.runs_purge_finished(now=timezone.now(), keep_days=settings.TICKWISE["RETENTION_DAYS"])

"""Celery tasks: thin shells over services."""
from __future__ import annotations

import os
import socket

from celery import shared_task
from django.utils import timezone

from .services.execute import run_execute



@shared_task(name="runs.execute", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=3600, time_limit=3660)
def execute(run_id: int) -> str | None:
    return run_execute(int(run_id), owner=f"{socket.gethostname()}:{os.getpid()}", now=timezone.now())
